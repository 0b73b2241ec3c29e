# Integration tests of the runtime against the e2e cluster (label `integration`).
set(_itest_dir ${CMAKE_CURRENT_LIST_DIR})
add_library(stk_itest STATIC ${_itest_dir}/itest.c)
target_link_libraries(stk_itest PUBLIC stk_testsupport PkgConfig::CMOCKA)

# Both compact etcd (to see a real 410), which expires every other client's continue
# tokens and watch resume points, its own twin's included: they run alone.
stk_add_integration(test_kube_rest SOURCES ${_itest_dir}/test_kube_rest.c LIBS stk_itest SERIAL)
stk_add_integration(test_informer_watch SOURCES ${_itest_dir}/test_informer_watch.c
  LIBS stk_itest SERIAL)

add_executable(lease_demo ${_itest_dir}/lease_demo.c)
target_link_libraries(lease_demo PRIVATE stoker_runtime)
set_target_properties(lease_demo PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME test_lease_handover COMMAND bash ${_itest_dir}/lease_handover.sh
  $<TARGET_FILE:lease_demo>)
set_tests_properties(test_lease_handover PROPERTIES LABELS integration TIMEOUT 300
  FIXTURES_REQUIRED e2e_cluster ENVIRONMENT "${STK_E2E_ENV}")
stk_add_integration(test_events SOURCES ${_itest_dir}/test_events.c LIBS stk_itest)
