# Compiler flags shared by every target: the STYLE.md warning set as errors, release
# hardening, and the optional sanitizer and fuzzing instrumentation.

set(STK_WARNINGS
  -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
  -Wimplicit-fallthrough -Wundef -Wwrite-strings -Werror)

add_compile_definitions(_POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
add_compile_options(${STK_WARNINGS} -fno-common -pipe)

# Hardening: fortified libc calls, stack protector and clash protection, PIE, full RELRO,
# non-executable stack. _FORTIFY_SOURCE needs optimisation and is pointless under ASan.
if(NOT STK_SANITIZE AND NOT STK_FUZZ)
  if(NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
    add_compile_definitions(_FORTIFY_SOURCE=2)
  endif()
endif()
add_compile_options(-fstack-protector-strong -fstack-clash-protection)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  add_compile_options(-fcf-protection)
endif()
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
include(CheckPIESupported)
check_pie_supported()
add_link_options(-Wl,-z,relro,-z,now -Wl,-z,noexecstack)

if(STK_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(STK_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "STK_FUZZ needs clang: configure with -DCMAKE_C_COMPILER=clang")
  endif()
  # Libraries get coverage instrumentation; fuzz executables add the libFuzzer main.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
