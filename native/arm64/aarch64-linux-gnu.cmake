# Cross-compile for 64-bit Arm Linux with Debian's GNU toolchain (g++-aarch64-linux-gnu):
#   cmake -S native/mfbench -B B -DCMAKE_TOOLCHAIN_FILE=native/arm64/aarch64-linux-gnu.cmake \
#         -DEXECUTORCH_ROOT=<aarch64 wheel, unzipped>/executorch
# Libraries and headers come from the Debian sysroot; the ExecuTorch SDK is found by path.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
