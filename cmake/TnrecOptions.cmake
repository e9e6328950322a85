# Build switches. TNREC_WITH_* take AUTO, ON or OFF.
set(TNREC_WITH_OPENMP AUTO CACHE STRING "OpenMP parallel ingest (AUTO/ON/OFF)")
set(TNREC_WITH_CURL   AUTO CACHE STRING "libcurl + OpenSSL for mirror and http sources (AUTO/ON/OFF)")
set(TNREC_WITH_MPI    AUTO CACHE STRING "MPI multi-process training and builds (AUTO/ON/OFF)")
set(TNREC_WITH_CAIRO  AUTO CACHE STRING "cairo for tnrec plot (AUTO/ON/OFF)")
set(TNREC_WITH_CUDA   AUTO CACHE STRING "CUDA, cuDNN and NCCL GPU trainer (AUTO/ON/OFF)")
option(TNREC_WERROR   "treat warnings as errors" OFF)
option(TNREC_SANITIZE "build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(TNREC_FUZZ     "build libFuzzer targets (needs clang)" OFF)

function(tnrec_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter>
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wshadow -Wno-unused-parameter>)
  if(TNREC_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:-Werror>)
  endif()
endfunction()

if(TNREC_SANITIZE)
  # C and C++ only: nvcc rejects these flags (the CUDA kernels are not instrumented).
  add_compile_options($<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=address,undefined>
                      $<$<COMPILE_LANGUAGE:C,CXX>:-fno-sanitize-recover=all>
                      $<$<COMPILE_LANGUAGE:C,CXX>:-fno-omit-frame-pointer>)
  add_link_options(-fsanitize=address,undefined)
endif()

# tnrec_feature(NAME FOUND PACKAGE): resolve an AUTO/ON/OFF switch.
# Sets TNREC_HAVE_<NAME> and appends to TNREC_FEATURES.
macro(tnrec_feature name found package)
  if(TNREC_WITH_${name} STREQUAL "OFF")
    set(TNREC_HAVE_${name} 0)
  elseif(${found})
    set(TNREC_HAVE_${name} 1)
  elseif(TNREC_WITH_${name} STREQUAL "ON")
    message(FATAL_ERROR "TNREC_WITH_${name}=ON but it was not found: install the Debian package(s) ${package}")
  else()
    set(TNREC_HAVE_${name} 0)
  endif()
  if(TNREC_HAVE_${name})
    string(TOLOWER "${name}" _lname)
    list(APPEND TNREC_FEATURES ${_lname})
  endif()
endmacro()
