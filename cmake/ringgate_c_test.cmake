# ringgate_c_cases(PREFIX PROGRAM CASES case... [TIMEOUT seconds] [LABELS label...])
#
# One CTest test PREFIX.CASE per case of a C test program built on
# common/tests/check.h (CHECK, TEST_MAIN: `PROGRAM CASE` runs one case),
# whose include directory it adds to PROGRAM. Exit code 77 is a skip.
function(ringgate_c_cases prefix program)
  cmake_parse_arguments(T "" "TIMEOUT" "CASES;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 30)
  endif()
  target_include_directories(${program} PRIVATE ${PROJECT_SOURCE_DIR}/common/tests)
  foreach(case ${T_CASES})
    add_test(NAME ${prefix}.${case} COMMAND ${program} ${case})
    set_tests_properties(${prefix}.${case} PROPERTIES TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77)
    if(T_LABELS)
      set_tests_properties(${prefix}.${case} PROPERTIES LABELS "${T_LABELS}")
    endif()
  endforeach()
endfunction()
