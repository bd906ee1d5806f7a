// Test stub of Darwin's <sys/sysctl.h>: sysctlbyname as the macOS/iOS SDKs
// declare it. Only for syntax-checking platform.cpp's __APPLE__ branch.
#pragma once
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
int sysctlbyname(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen);
#ifdef __cplusplus
}
#endif
