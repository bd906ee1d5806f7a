// The JSON writer for `mobileformer-latency/1` and the atomic file write.
// Hand-written (a few dozen lines) so the core has no third-party dependency
// in the NDK and Xcode builds.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "mfbench/bench.h"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace mfbench {
namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof(esc), "\\u%04x", c);
          out += esc;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through unchanged
        }
    }
  }
  return out + "\"";
}

std::string string_or_null(const std::string& s) {
  return s.empty() ? "null" : quote(s);
}

// Milliseconds with nanosecond resolution, always with a decimal point so
// readers see a float; trailing zeros trimmed. Non-finite values become null.
std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  std::string s = buf;
  for (char& c : s) {
    if (c == ',') c = '.';  // a comma-decimal C locale set by a host app
  }
  while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

}  // namespace

std::string to_json(const Result& r) {
  const Device& d = r.device;
  std::string j = "{\n";
  j += "  \"format\": " + quote(kFormat) + ",\n";
  j += "  \"created\": " + quote(r.created) + ",\n";
  j += "  \"tool\": " + quote(r.tool) + ",\n";
  j += "  \"label\": " + quote(r.label) + ",\n";
  j += "  \"device\": {\"kind\": " + quote(d.kind) + ", \"name\": " + quote(d.name) +
       ", \"os\": " + quote(d.os) + ", \"cpu\": " + quote(d.cpu) +
       ", \"cores\": " + std::to_string(d.cores);
  if (!d.features.empty()) {
    j += ", \"features\": [";
    for (size_t i = 0; i < d.features.size(); ++i) j += (i ? ", " : "") + quote(d.features[i]);
    j += "]";
  }
  j += "},\n";
  j += "  \"runtime\": {\"name\": \"executorch\", \"version\": " +
       string_or_null(r.runtime_version) + ", \"compute_units\": null},\n";
  // model/backend/precision come from the export manifest, filled in Python.
  j += "  \"artifact\": {\"file\": " + quote(r.artifact_file) +
       ", \"sha256\": " + quote(r.artifact_sha256) +
       ", \"size_bytes\": " + std::to_string(r.artifact_size_bytes) +
       ", \"model\": null, \"backend\": null, \"precision\": null},\n";
  j += "  \"threads\": " + std::to_string(r.threads) + ",\n";
  j += "  \"warmup\": " + std::to_string(r.warmup) + ",\n";
  j += "  \"iterations\": " + std::to_string(r.iterations) + ",\n";
  j += std::string("  \"traced\": ") + (r.traced ? "true" : "false") + ",\n";
  const Latency& l = r.latency_ms;
  j += "  \"latency_ms\": {\"p50\": " + number(l.p50) + ", \"p90\": " + number(l.p90) +
       ", \"mean\": " + number(l.mean) + ", \"min\": " + number(l.min) +
       ", \"max\": " + number(l.max) + "},\n";
  j += "  \"samples_ms\": [";
  for (size_t i = 0; i < r.samples_ms.size(); ++i) {
    j += (i ? ", " : "") + number(r.samples_ms[i]);
  }
  j += "],\n  \"operators\": [";
  for (size_t i = 0; i < r.operators.size(); ++i) {
    const OperatorTiming& op = r.operators[i];
    j += i ? ",\n    " : "\n    ";
    j += "{\"index\": " + std::to_string(op.index) + ", \"name\": " + quote(op.name) +
         ", \"delegate_index\": " +
         (op.delegate_index < 0 ? std::string("null") : std::to_string(op.delegate_index)) +
         ", \"block\": null, \"mean_ms\": " + number(op.mean_ms) +
         ", \"p50_ms\": " + number(op.p50_ms) + ", \"calls\": " + std::to_string(op.calls) + "}";
  }
  j += r.operators.empty() ? "],\n" : "\n  ],\n";
  j += "  \"blocks\": [],\n";  // derived later from the manifest by quant.report
  j += "  \"etdump\": " + string_or_null(r.etdump) + "\n}\n";
  return j;
}

void write_file_atomic(const std::string& path, const std::string& data) {
  if (path.empty()) throw Error("output path is empty");
#if defined(__unix__) || defined(__APPLE__)
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
#else
  const std::string tmp = path + ".tmp";
#endif
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    throw Error("cannot write " + path + ": " + std::strerror(errno));
  }
  errno = 0;
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size() &&
            std::fflush(f) == 0;
#if defined(__unix__) || defined(__APPLE__)
  ok = ok && fsync(fileno(f)) == 0;  // the rename must not outrun the data
#endif
  int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (ok) return;
  std::remove(tmp.c_str());
  throw Error("cannot write " + path + ": " + std::strerror(err ? err : EIO));
}

}  // namespace mfbench
