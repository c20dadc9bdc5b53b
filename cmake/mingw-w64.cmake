# Cross-build for 64-bit Windows with mingw-w64 (Debian: gcc-mingw-w64-x86-64).
#
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
#         -DRINGGATE_LIBNET_ONLY=ON
#
# Test programs run through wine64 (CMAKE_CROSSCOMPILING_EMULATOR), so
# `ctest` in the build tree runs the Windows test suite under Wine; see
# tools/wine-test.sh, which also makes a throw-away WINEPREFIX.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(RINGGATE_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${RINGGATE_MINGW_PREFIX}-gcc)
set(CMAKE_RC_COMPILER ${RINGGATE_MINGW_PREFIX}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${RINGGATE_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Windows 8 APIs (GetQueuedCompletionStatusEx is Vista+, CancelIoEx too).
add_compile_definitions(_WIN32_WINNT=0x0602 WIN32_LEAN_AND_MEAN)

# Self-contained .exe files: no libgcc/libwinpthread DLLs to find under Wine.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -static-libgcc")

# Debian installs the 64-bit loader outside PATH.
find_program(RINGGATE_WINE64 NAMES wine64 PATHS /usr/lib/wine /usr/lib/wine64 NO_DEFAULT_PATH)
if(NOT RINGGATE_WINE64)
  find_program(RINGGATE_WINE64 NAMES wine64 wine)
endif()
if(RINGGATE_WINE64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${RINGGATE_WINE64})
endif()
