# Optional dependencies. The core (worker, the tcp backend, sweep, pareto,
# report) needs none of them: each one missing switches its feature off, with
# a message saying what to install, and the build goes on. Sets, each 0 or 1,
# and passed to the code as a compile definition of the same name where it is
# needed:
#   PARETOPIPE_HAVE_GRPC           the grpc backend: gRPC, protobuf, protoc and its gRPC plugin
#   PARETOPIPE_HAVE_TORCH_BACKEND  the torch backend: c10d's ProcessGroupGloo inside LibTorch
#   PARETOPIPE_HAVE_JPEG           JPEG input images (--images): libjpeg
#   PARETOPIPE_HAVE_PNG            PNG input images: libpng
#   PARETOPIPE_WITH_CUDA           stages on CUDA devices: a LibTorch built with CUDA
# and paretopipe_feature_summary(), the one line that lists them.
# REQUIRES: find_package(Torch) done.
include_guard(GLOBAL)

# Feature names and states, in the order the summary lists them.
set(_pp_features "")
macro(_pp_feature name on)
  if(${on})
    list(APPEND _pp_features "${name} on")
  else()
    list(APPEND _pp_features "${name} off")
  endif()
endmacro()

# ---- grpc backend ----
# QUIET: a missing package is reported once, below, with what to install.
find_package(Protobuf QUIET)
find_package(gRPC CONFIG QUIET)
if(gRPC_FOUND AND Protobuf_FOUND AND TARGET protobuf::protoc AND TARGET gRPC::grpc_cpp_plugin)
  set(PARETOPIPE_HAVE_GRPC 1)
else()
  set(PARETOPIPE_HAVE_GRPC 0)
  message(STATUS "ParetoPipe: grpc backend off: CMake found no gRPC C++ library with protoc and "
                 "its gRPC plugin (Debian/Ubuntu: apt install libgrpc++-dev "
                 "protobuf-compiler-grpc, then reconfigure)")
endif()
_pp_feature("grpc backend" PARETOPIPE_HAVE_GRPC)

# ---- torch backend ----
# Built when this LibTorch has c10d's ProcessGroupGloo and a program making
# the c10d calls gloo_link.cc makes compiles and links against it
# (check_c10d_gloo.cc): c10d's C++ API is not a stable one, and Debian splits
# Gloo's headers into libgloo-dev, so the header alone does not settle it.
option(PARETOPIPE_TORCH_BACKEND
       "Build the torch backend (c10d ProcessGroupGloo) when this LibTorch has a usable one" ON)
set(PARETOPIPE_HAVE_TORCH_BACKEND 0)
if(NOT PARETOPIPE_TORCH_BACKEND)
  message(STATUS "ParetoPipe: torch backend off: PARETOPIPE_TORCH_BACKEND is OFF")
else()
  find_path(_pp_c10d_gloo_dir
            NAMES torch/csrc/distributed/c10d/ProcessGroupGloo.hpp
                  torch/csrc/distributed/c10d/ProcessGroupGloo.h
            PATHS ${TORCH_INCLUDE_DIRS} NO_DEFAULT_PATH NO_CACHE)
  if(NOT _pp_c10d_gloo_dir)
    message(STATUS "ParetoPipe: torch backend off: this LibTorch (${TORCH_INSTALL_PREFIX}) has "
                   "no c10d ProcessGroupGloo header")
  else()
    # The check compiles LibTorch's heavy headers (tens of seconds): its
    # result is kept until LibTorch, the compiler, its flags or the check
    # changes.
    file(MD5 ${CMAKE_CURRENT_LIST_DIR}/check_c10d_gloo.cc _pp_check_md5)
    file(MD5 ${PROJECT_SOURCE_DIR}/src/transport/gloo_c10d.h _pp_header_md5)
    set(_pp_key "${TORCH_INSTALL_PREFIX}" "${Torch_VERSION}" "${CMAKE_CXX_COMPILER}"
                "${CMAKE_CXX_FLAGS}" "${_pp_check_md5}" "${_pp_header_md5}")
    set(_pp_log ${CMAKE_BINARY_DIR}/c10d_gloo_check.log)
    if(NOT PARETOPIPE_C10D_GLOO_CHECKED STREQUAL "${_pp_key}")
      message(STATUS "ParetoPipe: checking that c10d's Gloo API compiles against "
                     "LibTorch ${Torch_VERSION}")
      try_compile(_pp_c10d_gloo_ok ${CMAKE_BINARY_DIR}/c10d_gloo_check
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/check_c10d_gloo.cc
                  CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${PROJECT_SOURCE_DIR}/src"
                  COMPILE_DEFINITIONS -DUSE_DISTRIBUTED -DUSE_C10D_GLOO
                  LINK_LIBRARIES ${TORCH_LIBRARIES}
                  CXX_STANDARD 17
                  NO_CACHE
                  OUTPUT_VARIABLE _pp_output)
      file(WRITE ${_pp_log} "${_pp_output}")
      set(PARETOPIPE_C10D_GLOO_OK ${_pp_c10d_gloo_ok} CACHE INTERNAL
          "check_c10d_gloo.cc compiled and linked")
      set(PARETOPIPE_C10D_GLOO_CHECKED "${_pp_key}" CACHE INTERNAL
          "What PARETOPIPE_C10D_GLOO_OK was checked against")
    endif()
    if(PARETOPIPE_C10D_GLOO_OK)
      set(PARETOPIPE_HAVE_TORCH_BACKEND 1)
      # Debian's LibTorch uses the system's Gloo (libgloo-dev); another
      # LibTorch without Gloo's headers of its own then compiles against
      # headers that may not be the Gloo it was built with.
      find_path(_pp_gloo_dir gloo/context.h PATHS ${TORCH_INCLUDE_DIRS} NO_DEFAULT_PATH NO_CACHE)
      if(NOT _pp_gloo_dir AND NOT TORCH_INSTALL_PREFIX MATCHES "^/usr/?$")
        message(STATUS "ParetoPipe: note: LibTorch in ${TORCH_INSTALL_PREFIX} has no Gloo "
                       "headers of its own; the torch backend uses the system's, which must "
                       "be the Gloo this LibTorch was built with")
      endif()
    else()
      message(STATUS "ParetoPipe: torch backend off: the c10d calls of "
                     "src/transport/gloo_link.cc do not compile or link against LibTorch "
                     "${Torch_VERSION} (cmake/check_c10d_gloo.cc; compiler output in ${_pp_log}; "
                     "on Debian, Gloo's headers are in libgloo-dev)")
    endif()
  endif()
endif()
_pp_feature("torch backend" PARETOPIPE_HAVE_TORCH_BACKEND)

# ---- JPEG and PNG input images ----
find_package(JPEG QUIET)
find_package(PNG QUIET)
set(PARETOPIPE_HAVE_JPEG 0)
set(PARETOPIPE_HAVE_PNG 0)
if(JPEG_FOUND)
  set(PARETOPIPE_HAVE_JPEG 1)
else()
  message(STATUS "ParetoPipe: JPEG input off: CMake found no libjpeg (Debian/Ubuntu: apt install "
                 "libjpeg-dev, then reconfigure); --images refuses JPEG files")
endif()
if(PNG_FOUND)
  set(PARETOPIPE_HAVE_PNG 1)
else()
  message(STATUS "ParetoPipe: PNG input off: CMake found no libpng (Debian/Ubuntu: apt install "
                 "libpng-dev, then reconfigure); --images refuses PNG files")
endif()
_pp_feature("JPEG input" PARETOPIPE_HAVE_JPEG)
_pp_feature("PNG input" PARETOPIPE_HAVE_PNG)

# ---- CUDA stages ----
# A CUDA LibTorch brings the torch_cuda target (Caffe2Targets.cmake) and sets
# CAFFE2_USE_CUDA (Caffe2Config.cmake); a CPU-only one has neither.
string(REGEX MATCH "^[0-9]+\\.[0-9]+" _pp_torch_version "${Torch_VERSION}")
if(TARGET torch_cuda OR CAFFE2_USE_CUDA)
  set(PARETOPIPE_WITH_CUDA 1)
  message(STATUS "ParetoPipe: CUDA stages on (LibTorch ${_pp_torch_version} with CUDA)")
else()
  set(PARETOPIPE_WITH_CUDA 0)
  message(STATUS "ParetoPipe: CUDA stages off (this LibTorch has no CUDA)")
endif()
_pp_feature("CUDA stages" PARETOPIPE_WITH_CUDA)

# Prints the one line listing the optional features and whether each is on.
function(paretopipe_feature_summary)
  list(JOIN _pp_features ", " line)
  message(STATUS "ParetoPipe: optional features: ${line}")
endfunction()
