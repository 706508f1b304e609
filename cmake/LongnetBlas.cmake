# The BLAS of the CPU projections (model/ops) and of the benchmarks' sgemm rate: OpenBLAS
# built with OpenMP, so that its GEMMs run on the same OpenMP thread team as longnet's own
# loops. Debian's default OpenBLAS is the pthread build: it starts a second pool of one
# thread per core beside OpenMP's, and the two pools fight over the cores: the default
# training run in one process with 2 OpenMP threads takes 17.0 s with the pthread build
# and 10.0 s with the OpenMP one (median of 3, same binary, same losses; with one thread
# per rank the two builds are equal). bench/blas_threading.sh measures it;
# bench/results/blas_threading_2026-12-05_xeon-2core.txt holds the figures.
#
# Defines LONGNET_BLAS_LIBRARY and LONGNET_BLAS_INCLUDE_DIR. Found under each system
# prefix's lib/<arch>/openblas-openmp and include/<arch>/openblas-openmp, where Debian's
# libopenblas-openmp-dev puts them; set LONGNET_OPENBLAS_OPENMP_DIR (the library's folder)
# and LONGNET_OPENBLAS_OPENMP_INCLUDE_DIR (cblas.h's) for another OpenMP-threaded OpenBLAS.
set(_longnet_blas_libs "")
set(_longnet_blas_includes "")
foreach(prefix IN LISTS CMAKE_SYSTEM_PREFIX_PATH)
  list(APPEND _longnet_blas_libs ${prefix}/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp)
  list(APPEND _longnet_blas_includes
    ${prefix}/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp)
endforeach()
find_library(LONGNET_BLAS_LIBRARY openblas
  PATHS ${LONGNET_OPENBLAS_OPENMP_DIR} ${_longnet_blas_libs} NO_DEFAULT_PATH)
find_path(LONGNET_BLAS_INCLUDE_DIR cblas.h
  PATHS ${LONGNET_OPENBLAS_OPENMP_INCLUDE_DIR} ${_longnet_blas_includes} NO_DEFAULT_PATH)
if(NOT LONGNET_BLAS_LIBRARY OR NOT LONGNET_BLAS_INCLUDE_DIR)
  message(FATAL_ERROR
    "longnet needs OpenBLAS built with OpenMP (its GEMMs then share longnet's OpenMP "
    "threads instead of starting a second pool): install Debian's libopenblas-openmp-dev "
    "(launch/setup.sh does), or set LONGNET_OPENBLAS_OPENMP_DIR and "
    "LONGNET_OPENBLAS_OPENMP_INCLUDE_DIR to another OpenMP-threaded OpenBLAS")
endif()
message(STATUS "longnet: BLAS ${LONGNET_BLAS_LIBRARY} (OpenBLAS, OpenMP threads)")
# The installed binaries and the Python module load this OpenBLAS, not whichever
# libopenblas.so.0 the system's alternatives select (the pthread build by default).
set(CMAKE_INSTALL_RPATH_USE_LINK_PATH ON)
