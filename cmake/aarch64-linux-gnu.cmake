# Cross-compiling for aarch64 Linux with Debian's g++-aarch64-linux-gnu and
# arm64 multiarch -dev packages (tools/cross-aarch64.sh); test binaries run
# under qemu-user.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# The loader and libc must be the arm64 multiarch ones (libc6:arm64, which
# the arm64 -dev packages' libraries were built against): -L / takes
# /lib/ld-linux-aarch64.so.1. With -L /usr/aarch64-linux-gnu (the cross
# toolchain's own libc6-arm64-cross, another glibc build) the two glibcs mix
# and the first pthread_create spins forever: every command that started a
# thread hung under qemu, a real device never does.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L /)
