// Bionic's __system_property_get, which glibc has not: a stand-in so the Android
// build of the core links on Debian's aarch64 sysroot (it returns no property).
#include <sys/system_properties.h>

extern "C" int __system_property_get(const char*, char* value) {
  value[0] = '\0';
  return 0;
}
