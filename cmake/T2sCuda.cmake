# Decides whether the CUDA backend is built. AUTO looks for nvcc on the PATH and in the
# standard toolkit location (it is not always on the PATH on our machines).
set(T2S_HAVE_CUDA OFF)
if(NOT T2S_CUDA STREQUAL "OFF")
  find_program(T2S_NVCC nvcc HINTS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
  if(T2S_NVCC)
    set(CMAKE_CUDA_COMPILER "${T2S_NVCC}" CACHE FILEPATH "nvcc" FORCE)
    set(T2S_HAVE_CUDA ON)
  elseif(T2S_CUDA STREQUAL "ON")
    message(FATAL_ERROR "T2S_CUDA=ON but nvcc was not found (looked on PATH and in /usr/local/cuda/bin)")
  endif()
endif()
if(T2S_HAVE_CUDA)
  # SASS for A100 (80) and L40S/4090 (89); SASS + PTX for Hopper (90), so each arch is compiled once and newer
  # parts can JIT the PTX.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "80-real;89-real;90" CACHE STRING "CUDA architectures")
  endif()
  set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no CUDA20 flags for nvcc; the kernels need only C++17
  set(CMAKE_CUDA_EXTENSIONS OFF)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  # Targets link CUDA::cudart (the shared runtime, by full path) themselves; CMake's default static runtime would add
  # -lcudadevrt -lcudart_static without their directory to every executable the C++ driver links.
  set(CMAKE_CUDA_RUNTIME_LIBRARY None)
  if(T2S_CCACHE)
    set(CMAKE_CUDA_COMPILER_LAUNCHER "${T2S_CCACHE}")
  endif()
  message(STATUS "t2s: CUDA backend on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
else()
  message(STATUS "t2s: CUDA off; CPU backend only")
endif()
