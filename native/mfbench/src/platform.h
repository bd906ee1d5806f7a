// The little that differs per platform: what the device calls itself and the
// wall clock. Everything else in mfbench is portable C++17.
#pragma once

#include <string>

#include "mfbench/bench.h"

namespace mfbench {

// Name, OS, CPU and logical cores as the platform reports them. Cheap: a few
// sysctl / system-property / uname calls, no JNI or Objective-C.
Device device_info(const std::string& kind);

// Current UTC time as ISO 8601 with a Z, second resolution.
std::string utc_now_iso8601();

}  // namespace mfbench
