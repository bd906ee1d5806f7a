// Test stub of Apple's <TargetConditionals.h> (an iOS device build), so the
// __APPLE__ branch of native/mfbench/src/platform.cpp can be syntax-checked on
// a Linux host. Values as the iOS SDK sets them for a device.
#pragma once
#define TARGET_OS_MAC 1
#define TARGET_OS_IPHONE 1
#define TARGET_OS_IOS 1
#define TARGET_OS_OSX 0
#define TARGET_OS_SIMULATOR 0
