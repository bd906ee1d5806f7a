// mfbench: the native benchmark core shared by the host CLI, android_demo (JNI)
// and ios_demo (Objective-C++). It runs one ExecuTorch .pte many times and
// returns a `mobileformer-latency/1` result (docs/latency-format.md).
//
// The bridges call exactly: mfbench::run, mfbench::to_json,
// mfbench::write_file_atomic and mfbench::has_event_tracer. Nothing here
// exposes ExecuTorch types, so a bridge includes this header only.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mfbench {

constexpr const char* kFormat = "mobileformer-latency/1";
constexpr const char* kVersion = "0.1.0";

struct Options {
  std::string model_path;     // the .pte to measure
  int warmup = 10;            // untimed runs first (>= 0)
  int iterations = 100;       // timed runs (>= 1)
  int threads = 0;            // XNNPACK worker threads; 0: the runtime default (the result says how many)
  bool operators = true;      // also collect per-operator times (a second, traced pass)
  std::string etdump_path;    // write the ETDump (of the traced pass) here when not empty
  std::string device_kind = "host";  // "host", "android" or "ios"
  std::string device_name;    // empty: what the platform reports
  std::string label;          // empty: the model file name without ".pte"
  std::string tool = std::string("mfbench ") + kVersion;  // name + version
  // Marker syscalls around each measured inference and delegate call, for an
  // instruction counter under qemu-user (native/arm64/icount.c); Linux only.
  bool instruction_markers = false;
};

// One operator position of one inference, aggregated over the timed runs.
struct OperatorTiming {
  int index = 0;            // position in the inference, execution order
  std::string name;         // XNNPACK operator name, e.g. "Convolution (NHWC, F32)"
  int delegate_index = -1;  // which delegate call ran it (0-based); -1: unknown (null)
  double mean_ms = 0;       // over the traced runs that reported it
  double p50_ms = 0;
  int calls = 0;            // how many of the `iterations` traced runs reported it
};

struct Latency {
  double p50 = 0, p90 = 0, mean = 0, min = 0, max = 0;
};

struct Device {
  std::string kind, name, os, cpu;
  int cores = 0;
  // AArch64 Linux/Android: dotprod, fp16, i8mm, bf16, sve, sve2, sme as the
  // hwcaps report them; empty elsewhere (and then left out of the JSON).
  std::vector<std::string> features;
};

// Mirrors the JSON document; empty strings are written as null where the
// format allows null (runtime_version, etdump).
struct Result {
  std::string created;  // UTC ISO 8601, e.g. "2026-11-25T17:30:00Z"
  std::string tool, label;
  Device device;
  std::string runtime_version;
  std::string artifact_file;  // base name
  std::string artifact_sha256;
  std::uint64_t artifact_size_bytes = 0;
  int threads = 0;  // worker threads the runtime ran with (>= 1), never the 0 asked for
  int warmup = 0, iterations = 0;
  // Whole-model figures from a runtime built with the event tracer: its XNNPACK
  // delegate reads the clock around every operator even with no tracer attached,
  // so they are not comparable with a release runtime's (docs/latency-format.md).
  bool traced = false;
  Latency latency_ms;
  std::vector<double> samples_ms;  // every timed run, in order
  std::vector<OperatorTiming> operators;
  std::string etdump;  // base name of the ETDump written, or empty
};

// Every failure the caller can act on (missing or corrupt model, bad option,
// failed run, unwritable file) is thrown as this, with a readable message.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// True when this build collects per-operator times and can write an ETDump:
// it was compiled with ET_EVENT_TRACER_ENABLED (and without
// MFBENCH_NO_EVENT_TRACER) against an ExecuTorch built with the devtools and
// the event tracer. False for app builds against the release Android AAR or
// iOS frameworks: run() then gives whole-model latency and no operators.
bool has_event_tracer();

// Loads the model and runs `warmup` + `iterations` inferences on deterministic
// pseudo-random input, twice: first untraced for latency_ms / samples_ms, then
// (if operators or etdump_path) with the event tracer for operators and the
// ETDump, so tracing overhead stays out of the latency. Without an event
// tracer in the build (has_event_tracer() false) the second pass is skipped
// and an etdump_path is an error. Throws mfbench::Error.
// Not reentrant: the XNNPACK thread pool is process-wide.
Result run(const Options& options);

// The result as a `mobileformer-latency/1` JSON document (UTF-8, one object).
std::string to_json(const Result& result);

// Writes `data` to `path` via a temporary file in the same directory and a
// rename, so readers never see a half-written file. Throws mfbench::Error.
void write_file_atomic(const std::string& path, const std::string& data);

}  // namespace mfbench
