// mfbench::run: load a .pte, time `forward`, collect XNNPACK per-operator
// timings, write the ETDump. Only this file touches the ExecuTorch API.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <numeric>

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>

#include "mfbench/bench.h"
#include "markers.h"
#include "platform.h"
#include "sha256.h"
#include "threads.h"

// The ExecuTorch version the build links; CMake passes it, app builds may.
#ifndef MFBENCH_EXECUTORCH_VERSION
#define MFBENCH_EXECUTORCH_VERSION ""
#endif

// Per-operator times and the ETDump need a runtime built with the event tracer
// (ET_EVENT_TRACER_ENABLED) and the devtools ETDump headers and library. The
// release Android AAR and iOS frameworks have neither: app builds against them
// leave ET_EVENT_TRACER_ENABLED undefined (or define MFBENCH_NO_EVENT_TRACER),
// and run() then measures whole-model latency only.
#if defined(ET_EVENT_TRACER_ENABLED) && !defined(MFBENCH_NO_EVENT_TRACER)
#define MFBENCH_EVENT_TRACER 1
#include "op_tracer.h"
#else
#define MFBENCH_EVENT_TRACER 0
#endif

// Whether the runtime this core is compiled for was built with the event tracer
// (the core must be compiled with the runtime's ET_EVENT_TRACER_ENABLED): then its
// XNNPACK delegate profiles every operator in every run, traced pass or not.
#if defined(ET_EVENT_TRACER_ENABLED)
#define MFBENCH_TRACED_RUNTIME true
#else
#define MFBENCH_TRACED_RUNTIME false
#endif

namespace mfbench {
namespace {

namespace et = executorch::runtime;
using executorch::extension::Module;

std::string base_name(const std::string& path) {
  auto slash = path.find_last_of("/\\");
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void check(et::Error err, const std::string& what) {
  if (err != et::Error::Ok) {
    char code[16];
    std::snprintf(code, sizeof(code), "0x%x", static_cast<unsigned>(err));
    throw Error(what + " (ExecuTorch error " + code + " " + et::to_string(err) + ")");
  }
}

// Reads the whole file once: its SHA-256 and size, and a clear error if it is
// missing or unreadable before ExecuTorch gets to it.
void fingerprint(const std::string& path, Result& r) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error("cannot open model " + path + ": " + std::strerror(errno));
  }
  Sha256 sha;
  std::vector<char> buf(1 << 16);
  std::uint64_t size = 0;
  while (in.read(buf.data(), buf.size()) || in.gcount() > 0) {
    sha.update(buf.data(), static_cast<size_t>(in.gcount()));
    size += static_cast<std::uint64_t>(in.gcount());
  }
  if (in.bad()) throw Error("cannot read model " + path);
  r.artifact_file = base_name(path);
  r.artifact_sha256 = sha.hex_digest();
  r.artifact_size_bytes = size;
}

// Linear interpolation between closest ranks (numpy's default), q in [0, 1].
double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * (v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}

// One input per tensor argument of `forward`, with the shape and dtype from
// the method meta. Floats get a fixed-seed uniform [-1, 1) pattern so runs are
// reproducible; other dtypes get zeros (valid for every dtype).
std::vector<executorch::extension::TensorPtr> make_inputs(const et::MethodMeta& meta) {
  std::vector<executorch::extension::TensorPtr> inputs;
  std::uint32_t state = 0x2545F491u;
  for (size_t i = 0; i < meta.num_inputs(); ++i) {
    auto tag = meta.input_tag(i);
    if (!tag.ok() || *tag != et::Tag::Tensor) {
      throw Error("input " + std::to_string(i) + " of forward is not a tensor; mfbench feeds tensors only");
    }
    auto info = meta.input_tensor_meta(i);
    if (!info.ok()) check(info.error(), "cannot read the meta of input " + std::to_string(i));
    std::vector<executorch::aten::SizesType> sizes(info->sizes().begin(), info->sizes().end());
    std::vector<uint8_t> bytes(info->nbytes(), 0);
    if (info->scalar_type() == executorch::aten::ScalarType::Float) {
      float* data = reinterpret_cast<float*>(bytes.data());
      for (size_t k = 0; k < bytes.size() / sizeof(float); ++k) {
        state ^= state << 13, state ^= state >> 17, state ^= state << 5;  // xorshift32
        data[k] = static_cast<float>(state >> 8) / 8388608.0f - 1.0f;
      }
    }
    inputs.push_back(executorch::extension::make_tensor_ptr(
        std::move(sizes), std::move(bytes), {}, {}, info->scalar_type()));
  }
  return inputs;
}

#if MFBENCH_EVENT_TRACER
// Per operator position over the traced runs. Positions are stable for a
// static graph; a run that reported fewer operators only lowers `calls`.
std::vector<OperatorTiming> aggregate(const std::vector<std::vector<OpTracer::OpEvent>>& runs) {
  size_t positions = 0;
  for (const auto& run : runs) positions = std::max(positions, run.size());
  std::vector<OperatorTiming> ops(positions);
  for (size_t k = 0; k < positions; ++k) {
    std::vector<double> ms;
    for (const auto& run : runs) {
      if (k >= run.size()) continue;
      if (ms.empty()) {
        ops[k].name = run[k].name;
        ops[k].delegate_index = run[k].delegate_index;
      }
      ms.push_back(run[k].ms);
    }
    ops[k].index = static_cast<int>(k);
    ops[k].mean_ms = mean(ms);
    ops[k].p50_ms = percentile(ms, 0.5);
    ops[k].calls = static_cast<int>(ms.size());
  }
  return ops;
}
#endif

// A loaded `forward` with its inputs set once (they stay set between calls).
struct Loaded {
  std::vector<executorch::extension::TensorPtr> inputs;  // declared first: outlives the module
  std::unique_ptr<Module> module;
};

Loaded load(const std::string& path, const std::string& file,
            std::unique_ptr<et::EventTracer> tracer) {
  Loaded m;
  m.module = std::make_unique<Module>(path, Module::LoadMode::Mmap, std::move(tracer));
  // Full flatbuffer verification: a corrupt file becomes an error, not a crash.
  check(m.module->load(et::Program::Verification::InternalConsistency),
        "cannot load " + file + ": not a valid ExecuTorch program");
  check(m.module->load_forward(), "cannot load method forward of " + file);
  auto meta = m.module->method_meta("forward");
  if (!meta.ok()) check(meta.error(), "cannot read method forward of " + file);
  m.inputs = make_inputs(*meta);
  std::vector<et::EValue> values(m.inputs.begin(), m.inputs.end());
  check(m.module->set_inputs(values), "cannot set the inputs of forward");
  return m;
}

void forward(Module& module, const char* phase) {
  auto out = module.forward();
  if (!out.ok()) check(out.error(), std::string("forward failed during ") + phase);
}

}  // namespace

bool has_event_tracer() { return MFBENCH_EVENT_TRACER != 0; }

Result run(const Options& opt) {
  if (opt.model_path.empty()) throw Error("no model given");
  if (opt.iterations < 1) throw Error("iterations must be at least 1");
  if (opt.warmup < 0) throw Error("warmup must not be negative");
  if (opt.threads < 0) throw Error("threads must not be negative");
  if (!opt.etdump_path.empty() && !has_event_tracer()) {
    throw Error(
        "this build has no event tracer, so it cannot write an ETDump: build ExecuTorch with "
        "EXECUTORCH_BUILD_DEVTOOLS=ON and EXECUTORCH_ENABLE_EVENT_TRACER=ON and compile mfbench "
        "with ET_EVENT_TRACER_ENABLED");
  }

  Result r;
  r.created = utc_now_iso8601();
  r.tool = opt.tool;
  r.device = device_info(opt.device_kind);
  if (!opt.device_name.empty()) r.device.name = opt.device_name;
  r.runtime_version = MFBENCH_EXECUTORCH_VERSION;
  r.traced = MFBENCH_TRACED_RUNTIME;
  r.warmup = opt.warmup;
  r.iterations = opt.iterations;
  fingerprint(opt.model_path, r);
  r.label = opt.label;
  if (r.label.empty()) {
    r.label = r.artifact_file;
    if (r.label.size() > 4 && r.label.compare(r.label.size() - 4, 4, ".pte") == 0) {
      r.label.resize(r.label.size() - 4);
    }
  }

  // XNNPACK takes the thread pool when the delegate initialises, so size it
  // before loading the method.
  r.threads = set_threads(opt.threads);
  markers::enabled = opt.instruction_markers;

  // Pass 1, whole-model latency, with no event tracer attached: tracing costs
  // about 0.5 us per XNNPACK operator (~15% of a 26m inference on x86).
  {
    Loaded m = load(opt.model_path, r.artifact_file, nullptr);
    markers::emit(markers::kPassBegin, 0);
    for (int i = 0; i < opt.warmup; ++i) forward(*m.module, "warm-up");
    r.samples_ms.reserve(opt.iterations);
    for (int i = 0; i < opt.iterations; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      markers::emit(markers::kInferenceBegin, i);
      forward(*m.module, "the timed runs");
      markers::emit(markers::kInferenceEnd, i);
      const auto t1 = std::chrono::steady_clock::now();
      r.samples_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
  }
  const auto& s = r.samples_ms;
  r.latency_ms = {percentile(s, 0.5), percentile(s, 0.9), mean(s),
                  *std::min_element(s.begin(), s.end()), *std::max_element(s.begin(), s.end())};

  // Pass 2, per-operator times and the ETDump: the same runs again, traced.
  // A fresh Module, because the tracer is bound when the method loads.
  // Without an event tracer in the build, `operators` stays empty.
#if MFBENCH_EVENT_TRACER
  if (opt.operators || !opt.etdump_path.empty()) {
    auto tracer_owner = std::make_unique<OpTracer>();
    OpTracer* tracer = tracer_owner.get();
    Loaded m = load(opt.model_path, r.artifact_file, std::move(tracer_owner));
    markers::emit(markers::kPassBegin, 1);
    for (int i = 0; i < opt.warmup; ++i) forward(*m.module, "traced warm-up");
    std::vector<std::vector<OpTracer::OpEvent>> op_runs;
    op_runs.reserve(opt.iterations);
    for (int i = 0; i < opt.iterations; ++i) {
      tracer->begin_inference();
      markers::emit(markers::kInferenceBegin, i);
      forward(*m.module, "the traced runs");
      markers::emit(markers::kInferenceEnd, i);
      op_runs.push_back(tracer->end_inference());
    }
    if (opt.operators) r.operators = aggregate(op_runs);

    if (!opt.etdump_path.empty()) {
      auto dump = tracer->get_etdump_data();
      if (dump.buf == nullptr || dump.size == 0) throw Error("the runtime produced no ETDump");
      std::string bytes(static_cast<const char*>(dump.buf), dump.size);
      std::free(dump.buf);  // flatcc's finalized buffer is malloc'd; ours now
      write_file_atomic(opt.etdump_path, bytes);
      r.etdump = base_name(opt.etdump_path);
    }
  }
#endif
  return r;
}

}  // namespace mfbench
