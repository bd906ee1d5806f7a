// Test stub of bionic's <sys/system_properties.h>: just the two names
// native/mfbench/src/platform.cpp uses, as the NDK declares them, so its
// __ANDROID__ branch can be syntax-checked on a Linux host without the NDK.
#pragma once
#define PROP_VALUE_MAX 92
#ifdef __cplusplus
extern "C" {
#endif
int __system_property_get(const char* name, char* value);
#ifdef __cplusplus
}
#endif
