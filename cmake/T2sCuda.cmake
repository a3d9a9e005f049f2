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
  # No CUDA sources exist yet: the engine's Backend interface is ready for one (see docs/engine.md).
  message(STATUS "t2s: nvcc found at ${T2S_NVCC}; this tree has no CUDA backend yet, CPU backend only")
else()
  message(STATUS "t2s: CUDA off; CPU backend only")
endif()
