# Test helpers. ctest runs everything; labels: unit, integration, e2e, fuzz.
enable_testing()

# Every unit and integration test also runs under valgrind (label `valgrind`, a twin
# named <test>_valgrind) unless this is a sanitizer or fuzzing build.
find_program(STK_VALGRIND valgrind)
if(STK_VALGRIND AND NOT STK_SANITIZE AND NOT STK_FUZZ)
  set(STK_VALGRIND_TESTS ON)
else()
  set(STK_VALGRIND_TESTS OFF)
endif()

# stk_add_valgrind_twin(<test> <target> [args...]): the twin of an existing test.
function(stk_add_valgrind_twin test target)
  if(NOT STK_VALGRIND_TESTS)
    return()
  endif()
  add_test(NAME ${test}_valgrind COMMAND ${STK_VALGRIND} -q --error-exitcode=99
    --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --track-fds=no $<TARGET_FILE:${target}> ${ARGN})
  get_test_property(${test} ENVIRONMENT env)
  get_test_property(${test} FIXTURES_REQUIRED fixtures)
  get_test_property(${test} RUN_SERIAL serial)
  set_tests_properties(${test}_valgrind PROPERTIES LABELS valgrind TIMEOUT 900)
  if(env)
    set_tests_properties(${test}_valgrind PROPERTIES ENVIRONMENT "${env}")
  endif()
  if(fixtures)
    set_tests_properties(${test}_valgrind PROPERTIES FIXTURES_REQUIRED "${fixtures}")
  endif()
  if(serial)
    set_tests_properties(${test}_valgrind PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()

# stk_add_unit_test(<name> SOURCES <files...> LIBS <targets...>)
# One cmocka executable per module, registered with the label `unit`.
function(stk_add_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120)
  stk_add_valgrind_twin(${name} ${name})
endfunction()

# stk_add_fuzzer(<name> SOURCE <file> CORPUS <dir> LIBS <targets...>)
# A libFuzzer target (built only with STK_FUZZ) and, always, a plain executable that
# replays the seed corpus through the same entry point, registered with the label `fuzz`.
function(stk_add_fuzzer name)
  cmake_parse_arguments(F "" "SOURCE;CORPUS" "LIBS" ${ARGN})
  add_executable(${name}_replay ${F_SOURCE} ${PROJECT_SOURCE_DIR}/runtime/tests/replay_corpus.c)
  target_link_libraries(${name}_replay PRIVATE ${F_LIBS})
  set_target_properties(${name}_replay PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name}_corpus COMMAND ${name}_replay ${F_CORPUS})
  set_tests_properties(${name}_corpus PROPERTIES LABELS fuzz TIMEOUT 300)
  if(STK_FUZZ)
    add_executable(${name} ${F_SOURCE})
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
    set_property(GLOBAL APPEND PROPERTY STK_FUZZERS "${name}|${F_CORPUS}")
  endif()
endfunction()

# The e2e cluster of this build tree: one per build directory, so several trees can run
# their suites at once. Integration and e2e tests get its name and the tree's paths.
string(MD5 _stk_bdir_hash "${CMAKE_BINARY_DIR}")
string(SUBSTRING "${_stk_bdir_hash}" 0 8 _stk_bdir_hash)
set(STK_E2E_CLUSTER_NAME "ctest-${_stk_bdir_hash}" CACHE STRING "e2e cluster name")
set(STK_E2E_ENV
  STOKER_CLUSTER_NAME=${STK_E2E_CLUSTER_NAME}
  STOKER_BUILD_DIR=${CMAKE_BINARY_DIR}
  STOKER_SOURCE_DIR=${PROJECT_SOURCE_DIR})

# stk_add_integration(<name> SOURCES <files...> LIBS <targets...> [SERIAL])
# A C test run against the shared e2e cluster (label `integration`), with the cluster's
# environment (KUBECONFIG, STOKER_E2E_*) loaded. SERIAL tests run alone: they may stop
# the API server or compact etcd, which would break other tests' lists and watches.
function(stk_add_integration name)
  cmake_parse_arguments(T "SERIAL" "" "SOURCES;LIBS" ${ARGN})
  if(NOT STK_E2E)
    return()
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND bash -c
    "eval \"$(\"$0\" env)\" && exec \"$1\"" ${PROJECT_SOURCE_DIR}/e2e/cluster $<TARGET_FILE:${name}>)
  set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT 600
    FIXTURES_REQUIRED e2e_cluster ENVIRONMENT "${STK_E2E_ENV}")
  if(T_SERIAL)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
  if(STK_VALGRIND_TESTS)
    # The twin needs the cluster's environment too: wrap valgrind in the same shell.
    add_test(NAME ${name}_valgrind COMMAND bash -c
      "eval \"$(\"$0\" env)\" && exec ${STK_VALGRIND} -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \"$1\""
      ${PROJECT_SOURCE_DIR}/e2e/cluster $<TARGET_FILE:${name}>)
    set_tests_properties(${name}_valgrind PROPERTIES LABELS valgrind TIMEOUT 900
      FIXTURES_REQUIRED e2e_cluster ENVIRONMENT "${STK_E2E_ENV}")
    if(T_SERIAL)
      set_tests_properties(${name}_valgrind PROPERTIES RUN_SERIAL TRUE)
    endif()
  endif()
endfunction()
