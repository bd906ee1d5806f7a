#include "platform.h"

#include <cstring>
#include <ctime>
#include <fstream>
#include <thread>

#if defined(__APPLE__)
#include <TargetConditionals.h>
#include <sys/sysctl.h>
#elif defined(__ANDROID__)
#include <sys/system_properties.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <sys/utsname.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace mfbench {
namespace {

#if defined(__APPLE__)
std::string sysctl_string(const char* name) {
  char value[256];
  size_t size = sizeof(value);
  if (sysctlbyname(name, value, &size, nullptr, 0) != 0 || size == 0) return "";
  return std::string(value, strnlen(value, size));
}
#elif defined(__ANDROID__)
std::string property(const char* name) {
  char value[PROP_VALUE_MAX] = {0};
  return __system_property_get(name, value) > 0 ? value : "";
}
#endif

#if !defined(__APPLE__)
// First "key : value" line of /proc/cpuinfo whose key is one of `keys`.
std::string cpuinfo_field(std::initializer_list<const char*> keys) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    for (const char* k : keys) {
      if (key == k) {
        auto start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? "" : line.substr(start);
      }
    }
  }
  return "";
}
#endif

// The AArch64 features that decide which XNNPACK kernels run, as the kernel (or
// qemu-user's -cpu model) reports them in the hwcaps that cpuinfo reads.
std::vector<std::string> isa_features() {
  std::vector<std::string> f;
#if defined(__aarch64__) && defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  if (hw & HWCAP_ASIMDDP) f.push_back("dotprod");
  if ((hw & HWCAP_FPHP) && (hw & HWCAP_ASIMDHP)) f.push_back("fp16");
#if defined(HWCAP2_I8MM)
  if (hw2 & HWCAP2_I8MM) f.push_back("i8mm");
#endif
#if defined(HWCAP2_BF16)
  if (hw2 & HWCAP2_BF16) f.push_back("bf16");
#endif
  if (hw & HWCAP_SVE) f.push_back("sve");
#if defined(HWCAP2_SVE2)
  if (hw2 & HWCAP2_SVE2) f.push_back("sve2");
#endif
#if defined(HWCAP2_SME)
  if (hw2 & HWCAP2_SME) f.push_back("sme");
#endif
  (void)hw2;
#endif
  return f;
}

}  // namespace

Device device_info(const std::string& kind) {
  Device d;
  d.kind = kind;
  d.cores = static_cast<int>(std::thread::hardware_concurrency());
  d.features = isa_features();
#if defined(__APPLE__)
#if TARGET_OS_IPHONE
  d.name = sysctl_string("hw.machine");  // e.g. "iPhone16,1"
  d.os = "iOS " + sysctl_string("kern.osproductversion");
#else
  d.name = sysctl_string("hw.model");  // e.g. "Mac14,2"
  d.os = "macOS " + sysctl_string("kern.osproductversion");
#endif
  d.cpu = sysctl_string("machdep.cpu.brand_string");  // absent on iOS
  if (d.cpu.empty()) d.cpu = sysctl_string("hw.machine");
#elif defined(__ANDROID__)
  d.name = property("ro.product.manufacturer") + " " + property("ro.product.model");
  d.os = "Android " + property("ro.build.version.release");
  d.cpu = property("ro.soc.model");  // Android 12+
  if (d.cpu.empty()) d.cpu = property("ro.board.platform");
  if (d.cpu.empty()) d.cpu = cpuinfo_field({"Hardware"});
#elif defined(__unix__)
  utsname u{};
  if (uname(&u) == 0) {
    d.name = std::string(u.machine) + " " + u.sysname;  // e.g. "x86_64 Linux"
    d.os = std::string(u.sysname) + " " + u.release;
  }
  d.cpu = cpuinfo_field({"model name", "Hardware", "Processor"});
  if (d.cpu.empty()) d.cpu = u.machine;
#endif
  return d;
}

std::string utc_now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
#if defined(_WIN32)
  gmtime_s(&tm, &now);
#else
  gmtime_r(&now, &tm);
#endif
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace mfbench
