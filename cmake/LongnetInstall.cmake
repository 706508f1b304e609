# `cmake --install build --prefix P`: the `longnet` command, the libraries, the public
# headers under P/include/longnet/ and a CMake package, so another project can write
#
#   find_package(longnet REQUIRED)
#   target_link_libraries(app PRIVATE longnet::model)
#
# and include "model/dilated_attention_layer.hpp" as the sources here do. The libraries
# are static; their dependencies (fmt, OpenMP, HDF5, toml++, MPI, CUDA, NCCL) are found
# again by longnetConfig.cmake. Included last from the top-level CMakeLists.txt, so every
# target exists; tests/install/ checks the package from a separate project.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LONGNET_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/longnet"
    CACHE STRING "Where longnetConfig.cmake is installed, relative to the prefix")
set(_longnet_include_dir "${CMAKE_INSTALL_INCLUDEDIR}/longnet")

# Each library's name in the package (longnet_runtime -> longnet::runtime). The warnings
# target is exported only because the static libraries name it privately (link-only).
set(_longnet_exported
  longnet_warnings longnet_config longnet_runtime longnet_kernels longnet_kernels_cuda
  longnet_attention longnet_model_ops longnet_model_ops_cuda longnet_training longnet_comm
  longnet_model longnet_trainer)
set(_longnet_installed_targets)
foreach(_target IN LISTS _longnet_exported)
  if(NOT TARGET ${_target})
    continue()  # built without CUDA or MPI
  endif()
  string(REPLACE "longnet_" "" _export_name ${_target})
  set_target_properties(${_target} PROPERTIES EXPORT_NAME ${_export_name})
  # The sources include "runtime/tensor.hpp" from the source root; installed, the same
  # paths are found under include/longnet. (Set here, in one place, rather than in every
  # directory: the source root is each target's only include directory.)
  get_target_property(_type ${_target} TYPE)
  if(NOT _type STREQUAL "INTERFACE_LIBRARY")
    get_target_property(_includes ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(_includes)
      list(REMOVE_ITEM _includes "${PROJECT_SOURCE_DIR}")
    else()
      set(_includes)
    endif()
    set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
      "${_includes};$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>;$<INSTALL_INTERFACE:${_longnet_include_dir}>")
  endif()
  list(APPEND _longnet_installed_targets ${_target})
endforeach()

install(TARGETS ${_longnet_installed_targets} EXPORT longnetTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS longnet RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The public headers: every header of the library directories, in the same layout.
foreach(_dir runtime kernels comm model)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${_dir}/
    DESTINATION ${_longnet_include_dir}/${_dir}
    FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")
endforeach()

# The generated configuration header: the build tree's generated/longnet/config.hpp is
# include/longnet/longnet/config.hpp installed, so "longnet/config.hpp" resolves from the
# same include directory as every other header.
set_target_properties(longnet_config PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
  "$<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/generated>;$<INSTALL_INTERFACE:${_longnet_include_dir}>")
install(FILES ${PROJECT_BINARY_DIR}/generated/longnet/config.hpp
  DESTINATION ${_longnet_include_dir}/longnet)

install(EXPORT longnetTargets NAMESPACE longnet:: DESTINATION ${LONGNET_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/longnetConfig.cmake.in
  ${PROJECT_BINARY_DIR}/longnetConfig.cmake
  INSTALL_DESTINATION ${LONGNET_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/longnetConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/longnetConfig.cmake
  ${PROJECT_BINARY_DIR}/longnetConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/FindNCCL.cmake
  DESTINATION ${LONGNET_INSTALL_CMAKEDIR})
