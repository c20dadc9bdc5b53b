# ringgate_python_test(NAME SCRIPT [ARGS arg...] [TIMEOUT seconds] [LABELS label...]
#                      [ENV VAR=value...])
#
# One CTest test that runs `python3 SCRIPT BUILD_DIR [ARGS...]` (with the
# ENV variables set, e.g. RINGGATE_TEST_BACKEND=postgres): a Python
# test on the harness in tests/ringgate_test (process wrappers, framed
# connections, bindings generated from proto/ at test time). Exit code 77
# is a skip (a missing prerequisite such as protoc or python3-protobuf).
#
# Debian's python3 has python3-protobuf; a python3 earlier on PATH (pyenv,
# venvs) may not, so /usr/bin/python3 comes first.
find_program(RINGGATE_TEST_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT RINGGATE_TEST_PYTHON)
  find_program(RINGGATE_TEST_PYTHON python3 REQUIRED)
endif()

function(ringgate_python_test name script)
  cmake_parse_arguments(T "" "TIMEOUT" "ARGS;LABELS;ENV" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_test(NAME ${name}
           COMMAND ${RINGGATE_TEST_PYTHON} ${script} ${CMAKE_BINARY_DIR} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES
    TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    ENVIRONMENT "RINGGATE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PYTHONDONTWRITEBYTECODE=1;${T_ENV}")
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

# ringgate_python_cases(PREFIX SCRIPT CASES case... [TIMEOUT seconds] [LABELS label...])
#
# One test PREFIX.CASE per case of a Python test program that runs one
# named case at a time (`python3 SCRIPT BUILD_DIR CASE`; rt.main(cases=...)).
function(ringgate_python_cases prefix script)
  cmake_parse_arguments(T "" "TIMEOUT" "CASES;LABELS" ${ARGN})
  foreach(case ${T_CASES})
    ringgate_python_test(${prefix}.${case} ${script} ARGS ${case}
      TIMEOUT ${T_TIMEOUT} LABELS ${T_LABELS})
  endforeach()
endfunction()
