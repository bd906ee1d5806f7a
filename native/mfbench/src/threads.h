// Sets the size of ExecuTorch's process-wide thread pool, which XNNPACK
// captures when a delegate is initialised (Module::load_method).
#pragma once

namespace mfbench {

// threads > 0: that many workers; 0: the count the pool started with.
// Returns the worker count now in effect (1 without a thread pool).
int set_threads(int threads);

}  // namespace mfbench
