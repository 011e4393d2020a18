# llmflash_find_libraries([REQUIRED]): imported targets llmflash::uring,
# llmflash::pcre2 and llmflash::utf8proc for the C libraries llmflash links
# (Debian: liburing-dev, libpcre2-dev, libutf8proc-dev). Used by the build
# and by the installed package config, so an app's find_package(llmflash)
# finds what a static libllmflash needs. Sets LLMFLASH_MISSING_LIBRARIES to
# the Debian packages not found.
function(llmflash_find_libraries)
  set(missing "")
  foreach(spec "uring;uring;liburing.h;liburing-dev" "pcre2;pcre2-8;pcre2.h;libpcre2-dev"
               "utf8proc;utf8proc;utf8proc.h;libutf8proc-dev")
    list(GET spec 0 name)
    list(GET spec 1 lib)
    list(GET spec 2 header)
    list(GET spec 3 package)
    if(TARGET llmflash::${name})
      continue()
    endif()
    string(TOUPPER ${name} upper)
    find_library(LLMFLASH_${upper}_LIBRARY ${lib})
    find_path(LLMFLASH_${upper}_INCLUDE_DIR ${header})
    if(NOT LLMFLASH_${upper}_LIBRARY OR NOT LLMFLASH_${upper}_INCLUDE_DIR)
      list(APPEND missing ${package})
      continue()
    endif()
    add_library(llmflash::${name} UNKNOWN IMPORTED GLOBAL)
    set_target_properties(llmflash::${name} PROPERTIES
      IMPORTED_LOCATION "${LLMFLASH_${upper}_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${LLMFLASH_${upper}_INCLUDE_DIR}")
  endforeach()
  set(LLMFLASH_MISSING_LIBRARIES "${missing}" PARENT_SCOPE)
  if(missing AND "REQUIRED" IN_LIST ARGN)
    message(FATAL_ERROR "llmflash needs these Debian packages: ${missing}")
  endif()
endfunction()
