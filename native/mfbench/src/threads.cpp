#include "threads.h"

#include <cstddef>
#include <cstdint>

#if defined(MFBENCH_NO_THREADPOOL)
// A build without ExecuTorch's thread pool (single-threaded runtime).
namespace mfbench {
int set_threads(int) { return 1; }
}  // namespace mfbench
#else

#if __has_include(<executorch/extension/threadpool/threadpool.h>)
#include <executorch/extension/threadpool/threadpool.h>
#else
// The pip wheel ships libexecutorch_threadpool but not this header; these are
// the two members we call, declared as in extension/threadpool/threadpool.h.
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool
#endif

namespace mfbench {

int set_threads(int threads) {
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (pool == nullptr) return 1;  // no pool: XNNPACK runs on the calling thread
  // Remember the pool's own size so threads == 0 restores it after a run
  // that asked for a specific count.
  static const size_t default_count = pool->get_thread_count();
  const size_t want = threads > 0 ? static_cast<size_t>(threads) : default_count;
  if (pool->get_thread_count() != want) {
    // "unsafe" only because it must not race with running work; mfbench calls
    // it before loading the method, with nothing running.
    pool->_unsafe_reset_threadpool(static_cast<uint32_t>(want));
  }
  return static_cast<int>(pool->get_thread_count());
}

}  // namespace mfbench
#endif
