# cmake -P script: install LONGNET_BUILD_DIR into WORK_DIR/prefix, then configure, build and
# run the consumer project against that prefix alone. Any failing step fails the test
# with its output.
function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: ${what} failed (exit ${rc})")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
run_step("cmake --install" ${CMAKE_COMMAND} --install "${LONGNET_BUILD_DIR}" --prefix "${prefix}")
foreach(installed bin/longnet include/longnet/model/dilated_attention_layer.hpp)
  if(NOT EXISTS "${prefix}/${installed}")
    message(FATAL_ERROR "install test: ${prefix}/${installed} was not installed")
  endif()
endforeach()

set(launcher)
if(CXX_LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${CXX_LAUNCHER})
endif()
run_step("configuring the consumer" ${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}"
  -B "${WORK_DIR}/consumer" -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER} ${launcher} "-DCMAKE_PREFIX_PATH=${prefix}"
  -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
run_step("building the consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/consumer")
run_step("running the consumer" "${WORK_DIR}/consumer/seeds_example")
