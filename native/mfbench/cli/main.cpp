// mfbench: the host CLI over mfbench::run. Exit codes: 0 ok, 2 bad input or a
// failed run (message on stderr, no output file written), 1 anything else.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mfbench/bench.h"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace {

const char* kUsage =
    "usage: mfbench --model X.pte [--iterations N] [--warmup N] [--threads N]\n"
    "               [--etdump out.etdp] [--out result.json] [--label S] [--device-name S]\n"
    "               [--no-operators] [--instruction-markers]\n"
    "\n"
    "Runs an ExecuTorch program's forward method N times after warm-up and writes a\n"
    "mobileformer-latency/1 JSON result (docs/latency-format.md) with whole-model\n"
    "latency and XNNPACK per-operator times. Latency comes from an untraced pass;\n"
    "per-operator times and the ETDump from a second, traced pass of the same runs\n"
    "(only in a build with ExecuTorch's event tracer; see native/README.md).\n"
    "\n"
    "  --model PATH        the .pte to measure (required)\n"
    "  --iterations N      timed runs, >= 1 (default 100)\n"
    "  --warmup N          untimed runs first, >= 0 (default 10)\n"
    "  --threads N         XNNPACK worker threads, 0 = runtime default (default 0)\n"
    "  --etdump PATH       also write the ETDump (for executorch.devtools.Inspector)\n"
    "  --out PATH          write the JSON here (atomically); without it, JSON goes to\n"
    "                      stdout and the summary to stderr\n"
    "  --label S           row label for reports (default: the model file name)\n"
    "  --device-name S     device name to record (default: what the OS reports)\n"
    "  --no-operators      skip the traced pass (no per-operator times) unless --etdump\n"
    "  --instruction-markers  marker syscalls around each measured inference and delegate\n"
    "                      call, for the instruction counter of native/arm64 (Linux)\n"
    "  -h, --help          this help\n";

struct UsageError {
  std::string message;
};

int parse_int(const std::string& flag, const std::string& text, int min) {
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < min || v > INT_MAX) {
    throw UsageError{flag + " needs an integer >= " + std::to_string(min) + ", got '" + text + "'"};
  }
  return static_cast<int>(v);
}

// Fail before the (possibly minutes-long) run if an output cannot be created.
void check_writable(const std::string& flag, const std::string& path) {
  if (path.empty()) throw UsageError{flag + " needs a path"};
#if defined(__unix__) || defined(__APPLE__)
  auto slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    throw UsageError{"cannot write " + flag + " " + path + ": directory " + dir + ": " +
                     std::strerror(errno)};
  }
#endif
}

}  // namespace

int main(int argc, char** argv) {
  mfbench::Options opt;
  std::string out_path;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "-h" || arg == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
      }
      if (arg == "--no-operators") {
        opt.operators = false;
        continue;
      }
      if (arg == "--instruction-markers") {
        opt.instruction_markers = true;
        continue;
      }
      if (i + 1 >= argc) throw UsageError{"unknown option or missing value: " + arg};
      const std::string value = argv[++i];
      if (arg == "--model") opt.model_path = value;
      else if (arg == "--iterations") opt.iterations = parse_int(arg, value, 1);
      else if (arg == "--warmup") opt.warmup = parse_int(arg, value, 0);
      else if (arg == "--threads") opt.threads = parse_int(arg, value, 0);
      else if (arg == "--etdump") opt.etdump_path = value;
      else if (arg == "--out") out_path = value;
      else if (arg == "--label") opt.label = value;
      else if (arg == "--device-name") opt.device_name = value;
      else throw UsageError{"unknown option: " + arg};
    }
    if (opt.model_path.empty()) throw UsageError{"--model is required"};
    if (!out_path.empty()) check_writable("--out", out_path);
    if (!opt.etdump_path.empty()) check_writable("--etdump", opt.etdump_path);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "mfbench: %s\n(see mfbench --help)\n", e.message.c_str());
    return 2;
  }

  try {
    const mfbench::Result r = mfbench::run(opt);
    const std::string json = mfbench::to_json(r);
    if (!out_path.empty()) mfbench::write_file_atomic(out_path, json);

    int delegates = 0;
    for (const auto& op : r.operators) delegates = std::max(delegates, op.delegate_index + 1);
    std::FILE* summary = out_path.empty() ? stderr : stdout;
    std::fprintf(summary,
                 "mfbench: %s p50 %.3f ms, p90 %.3f ms (%d runs, threads %d, %zu ops in %d "
                 "delegate calls%s)%s%s\n",
                 r.artifact_file.c_str(), r.latency_ms.p50, r.latency_ms.p90, r.iterations,
                 r.threads, r.operators.size(), delegates,
                 mfbench::has_event_tracer() ? "" : "; built without the event tracer",
                 out_path.empty() ? "" : " -> ", out_path.c_str());
    if (out_path.empty()) std::fputs(json.c_str(), stdout);
    return 0;
  } catch (const mfbench::Error& e) {
    std::fprintf(stderr, "mfbench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mfbench: unexpected error: %s\n", e.what());
    return 1;
  }
}
