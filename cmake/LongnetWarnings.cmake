# One INTERFACE target carries the project's warnings and sanitizer flags, so that
# they apply to our targets only (never to imported ones) and are set in one place.
add_library(longnet_warnings INTERFACE)
target_compile_options(longnet_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion>)

# -fno-sanitize-recover: an undefined-behaviour report ends the process (a failed test)
# instead of printing and going on.
if(LONGNET_SANITIZE)
  target_compile_options(longnet_warnings INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer>)
  target_link_options(longnet_warnings INTERFACE -fsanitize=address,undefined)
endif()
