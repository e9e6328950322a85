# Dependencies. Required: zstd, xxhash, jansson, netcdf-c/HDF5, zlib.
# Optional: OpenMP, libcurl+OpenSSL, MPI, cairo, CUDA/cuDNN/NCCL. An optional part
# switched OFF is never looked for, and one that is missing or broken turns
# its feature off under AUTO instead of stopping the configure.
find_package(PkgConfig REQUIRED)
set(TNREC_FEATURES "")
set(TNREC_PRIVATE_LIBS "")

function(tnrec_require_pkg var module package)
  pkg_check_modules(${var} IMPORTED_TARGET ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "${module} not found: install the Debian package ${package}")
  endif()
endfunction()

tnrec_require_pkg(ZSTD libzstd libzstd-dev)
tnrec_require_pkg(XXHASH libxxhash libxxhash-dev)
tnrec_require_pkg(JANSSON jansson libjansson-dev)
tnrec_require_pkg(NETCDF netcdf libnetcdf-dev)
tnrec_require_pkg(HDF5 hdf5 libhdf5-dev)
tnrec_require_pkg(ZLIB zlib zlib1g-dev)
list(APPEND TNREC_PRIVATE_LIBS PkgConfig::ZSTD PkgConfig::XXHASH PkgConfig::JANSSON
     PkgConfig::NETCDF PkgConfig::HDF5 PkgConfig::ZLIB m)
# tnrec build: libdeflate inflates HDF5 chunks outside the HDF5 lock;
# libarchive streams the year tarballs.
tnrec_require_pkg(LIBDEFLATE libdeflate libdeflate-dev)
tnrec_require_pkg(LIBARCHIVE libarchive libarchive-dev)
list(APPEND TNREC_PRIVATE_LIBS PkgConfig::LIBDEFLATE PkgConfig::LIBARCHIVE)
find_package(Threads REQUIRED)
list(APPEND TNREC_PRIVATE_LIBS Threads::Threads)

if(NOT TNREC_WITH_OPENMP STREQUAL "OFF")
  find_package(OpenMP QUIET COMPONENTS C)
endif()
tnrec_feature(OPENMP OpenMP_C_FOUND "libgomp1 (gcc) or libomp-dev (clang)")
if(TNREC_HAVE_OPENMP)
  list(APPEND TNREC_PRIVATE_LIBS OpenMP::OpenMP_C)
endif()

set(_curl_ok FALSE)
if(NOT TNREC_WITH_CURL STREQUAL "OFF")
  find_package(CURL QUIET)
  find_package(OpenSSL QUIET)
  if(CURL_FOUND AND OPENSSL_FOUND)
    set(_curl_ok TRUE)
  endif()
endif()
tnrec_feature(CURL _curl_ok "libcurl4-openssl-dev libssl-dev")
if(TNREC_HAVE_CURL)
  list(APPEND TNREC_PRIVATE_LIBS CURL::libcurl OpenSSL::Crypto OpenSSL::SSL)
endif()

if(NOT TNREC_WITH_MPI STREQUAL "OFF")
  find_package(MPI QUIET COMPONENTS C)
endif()
tnrec_feature(MPI MPI_C_FOUND "libopenmpi-dev openmpi-bin")
if(TNREC_HAVE_MPI)
  list(APPEND TNREC_PRIVATE_LIBS MPI::MPI_C)
endif()

# cairo draws the pictures of tnrec plot (PNG, SVG, PDF surfaces).
set(_cairo_ok FALSE)
if(NOT TNREC_WITH_CAIRO STREQUAL "OFF")
  pkg_check_modules(CAIRO QUIET IMPORTED_TARGET cairo)
  if(CAIRO_FOUND)
    set(_cairo_ok TRUE)
  endif()
endif()
tnrec_feature(CAIRO _cairo_ok "libcairo2-dev")
if(TNREC_HAVE_CAIRO)
  list(APPEND TNREC_PRIVATE_LIBS PkgConfig::CAIRO)
endif()

# CUDA: the toolkit (nvcc), cuBLAS, cuDNN and NCCL all present.
include(CheckLanguage)
set(_cuda_ok FALSE)
if(NOT TNREC_WITH_CUDA STREQUAL "OFF")
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    find_package(CUDAToolkit QUIET)
    find_library(CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu)
    find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include /usr/include/x86_64-linux-gnu)
    find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu)
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include)
    if(CUDAToolkit_FOUND AND CUDNN_LIBRARY AND CUDNN_INCLUDE_DIR AND NCCL_LIBRARY AND NCCL_INCLUDE_DIR)
      set(_cuda_ok TRUE)
    endif()
  endif()
endif()
tnrec_feature(CUDA _cuda_ok "the CUDA toolkit (nvcc), cuDNN 9 and NCCL 2")
if(TNREC_HAVE_CUDA)
  # H100/H200 (sm_90) and A100 (sm_80); override with -DCMAKE_CUDA_ARCHITECTURES.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "80;90" CACHE STRING "GPU architectures to compile the kernels for")
  endif()
  enable_language(CUDA)
  # These link the CUDA module (train/gpu/), never libtnrec: libtnrec
  # loads the module with dlopen on the first GPU call.
  set(TNREC_CUDA_LIBS CUDA::cudart CUDA::cublas ${CUDNN_LIBRARY} ${NCCL_LIBRARY})
  set(TNREC_CUDA_INCLUDE_DIRS ${CUDAToolkit_INCLUDE_DIRS} ${CUDNN_INCLUDE_DIR} ${NCCL_INCLUDE_DIR})
  list(APPEND TNREC_PRIVATE_LIBS ${CMAKE_DL_LIBS})
endif()
# File name of the CUDA module, looked for beside libtnrec (config.h).
set(TNREC_CUDA_MODULE_FILE "${CMAKE_SHARED_MODULE_PREFIX}tnrec_cuda${CMAKE_SHARED_MODULE_SUFFIX}")
