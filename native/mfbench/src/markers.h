// Marker syscalls that let an instruction counter outside the process see
// where inferences and delegate calls begin (native/arm64/icount.c, a qemu-user
// plugin; quant.arm64 reads its log). Off unless enabled: a real kernel
// answers the unused syscall number with ENOSYS, so they are harmless, but
// they cost a syscall each.
#pragma once

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace mfbench::markers {

// Not a Linux syscall number on any architecture; quant.arm64 passes the same
// number to the plugin.
constexpr long kSyscall = 0x4d46;

enum Kind : long {
  kInferenceBegin = 1,   // argument: run index within the pass
  kInferenceEnd = 2,     // argument: run index within the pass
  kDelegateBegin = 3,    // argument: delegate call index within the inference
  kOperatorsLogged = 4,  // the delegate's operator events are being logged (its graph has run)
  kPassBegin = 5,        // argument: 0 untraced pass, 1 traced pass
};

inline bool enabled = false;

inline void emit(Kind kind, long argument) {
#if defined(__linux__)
  if (enabled) syscall(kSyscall, static_cast<long>(kind), argument);
#else
  (void)kind, (void)argument;
#endif
}

}  // namespace mfbench::markers
