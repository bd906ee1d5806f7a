# Host stand-in for the NDK's toolchain file, for tests/apps/test_android_cmake.py:
# host clang and lld, __ANDROID__ with tests/apps/stubs/android for the two
# Android headers the core uses, a JDK's jni.h (the NDK sysroot has its own), and
# the NDK's confinement of every find_* to its sysroot (CMAKE_FIND_ROOT_PATH +
# *_MODE_* ONLY), which is what makes an install prefix outside the sysroot
# invisible unless the project adds it. Cache variables set by the test:
# FAKE_SYSROOT (holds usr/lib/liblog.so) and FAKE_CXX_FLAGS.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER clang)
set(CMAKE_CXX_COMPILER clang++)
set(CMAKE_CXX_FLAGS_INIT "-D__ANDROID__ ${FAKE_CXX_FLAGS}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-fuse-ld=lld")
set(ANDROID_ABI arm64-v8a)
set(CMAKE_FIND_ROOT_PATH "${FAKE_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
