# The optional CUDA kernels (cpp/cuda). LATEFOLD_CUDA=AUTO builds them when CMake finds a CUDA
# compiler, ON requires one, OFF leaves them out; without them cpp/src/cuda_off.cc gives the same
# API, reporting why. Real code for sm_80 (A100) and sm_90 (H100/H200) plus PTX that newer GPUs
# compile when loading; the CUDA runtime is linked statically (it loads the driver when first
# used), so the module imports on machines with no GPU or driver.
include(CheckLanguage)

set(LATEFOLD_CUDA_SOURCES ${PROJECT_SOURCE_DIR}/cpp/src/cuda_off.cc)
set(LATEFOLD_HAS_CUDA OFF)
if(NOT LATEFOLD_CUDA STREQUAL "OFF")
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80-real 90-real 90-virtual)
    endif()
    set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    find_package(CUDAToolkit)
  endif()
  if(CMAKE_CUDA_COMPILER AND TARGET CUDA::cudart_static)
    set(LATEFOLD_CUDA_SOURCES
      ${PROJECT_SOURCE_DIR}/cpp/cuda/device.cu
      ${PROJECT_SOURCE_DIR}/cpp/cuda/maxsim.cu
      ${PROJECT_SOURCE_DIR}/cpp/cuda/fde.cu
      ${PROJECT_SOURCE_DIR}/cpp/cuda/pq.cu
      ${PROJECT_SOURCE_DIR}/cpp/cuda/topk.cu)
    set(LATEFOLD_HAS_CUDA ON)
    message(STATUS "latefold: CUDA kernels for ${CMAKE_CUDA_ARCHITECTURES} (nvcc ${CMAKE_CUDA_COMPILER_VERSION})")
  elseif(LATEFOLD_CUDA STREQUAL "ON")
    message(FATAL_ERROR "LATEFOLD_CUDA=ON but no CUDA compiler and static runtime were found "
                        "(set CUDACXX or put nvcc on PATH)")
  else()
    message(STATUS "latefold: no CUDA compiler (or no static CUDA runtime) found, CUDA kernels left out")
  endif()
endif()

function(latefold_add_cuda target)
  if(LATEFOLD_HAS_CUDA)
    target_link_libraries(${target} PUBLIC CUDA::cudart_static)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcompiler=-Wall>)
  endif()
endfunction()
