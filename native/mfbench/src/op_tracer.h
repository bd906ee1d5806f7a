// An ETDumpGen that also keeps, per inference, the per-operator events the
// XNNPACK delegate reports, tagged with the delegate call that ran them.
//
// How the runtime reports them (ExecuTorch 1.x): Method::execute opens a
// "DELEGATE_CALL" profiling scope (start_profiling / end_profiling) around
// every delegate instruction; inside it, XNNPACK's profiler calls
// log_profiling_delegate once per XNNPACK operator after the graph ran, named
// "<operator name> #<n>". Counting DELEGATE_CALL scopes since the start of
// the inference therefore gives the delegate call an operator belongs to.
//
// Subclassing (not wrapping) ETDumpGen keeps the ETDump complete and lets the
// runtime's set_chain_debug_handle() land in the object that writes events.
#pragma once

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <executorch/devtools/etdump/etdump_flatcc.h>
#include <executorch/runtime/platform/clock.h>

#include "markers.h"

namespace mfbench {

class OpTracer final : public executorch::etdump::ETDumpGen {
 public:
  struct OpEvent {
    std::string name;    // without XNNPACK's " #<n>" suffix
    int delegate_index;  // -1 when it arrived outside a DELEGATE_CALL scope
    double ms;
  };

  // Bracket one inference whose operator events should be kept.
  void begin_inference() {
    events_.clear();
    delegate_calls_ = 0;
    recording_ = true;
  }
  std::vector<OpEvent> end_inference() {
    recording_ = false;
    return std::move(events_);
  }

  executorch::runtime::EventTracerEntry start_profiling(
      const char* name,
      executorch::runtime::ChainID chain_id = -1,
      executorch::runtime::DebugHandle debug_handle = 0) override {
    auto entry = ETDumpGen::start_profiling(name, chain_id, debug_handle);
    if (name != nullptr && std::strcmp(name, "DELEGATE_CALL") == 0) {
      current_delegate_ = delegate_calls_++;
      delegate_entry_ = entry;
      in_delegate_ = true;
      markers::emit(markers::kDelegateBegin, current_delegate_);
    }
    return entry;
  }

  void end_profiling(executorch::runtime::EventTracerEntry entry) override {
    if (in_delegate_ && entry.event_id == delegate_entry_.event_id &&
        entry.start_time == delegate_entry_.start_time) {
      in_delegate_ = false;
    }
    ETDumpGen::end_profiling(entry);
  }

  void log_profiling_delegate(
      const char* name,
      executorch::runtime::DelegateDebugIntId delegate_debug_index,
      et_timestamp_t start_time,
      et_timestamp_t end_time,
      const void* metadata,
      size_t metadata_len) override {
    markers::emit(markers::kOperatorsLogged, in_delegate_ ? current_delegate_ : -1);
    ETDumpGen::log_profiling_delegate(
        name, delegate_debug_index, start_time, end_time, metadata, metadata_len);
    if (!recording_) return;
    std::string op = name != nullptr ? name : "delegate op " + std::to_string(delegate_debug_index);
    auto hash = op.rfind(" #");
    if (hash != std::string::npos &&
        op.find_first_not_of("0123456789", hash + 2) == std::string::npos) {
      op.resize(hash);
    }
    const double ms =
        end_time > start_time
            ? executorch::runtime::ticks_to_ns(end_time - start_time) / 1e6
            : 0.0;
    events_.push_back({std::move(op), in_delegate_ ? current_delegate_ : -1, ms});
  }

 private:
  std::vector<OpEvent> events_;
  bool recording_ = false;
  bool in_delegate_ = false;
  int delegate_calls_ = 0;
  int current_delegate_ = -1;
  executorch::runtime::EventTracerEntry delegate_entry_{};
};

}  // namespace mfbench
