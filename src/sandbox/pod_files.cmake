# berth_pod_files: resolv.conf, hosts, hostname and /dev/shm for a pod (included from
# src/sandbox/CMakeLists.txt).
add_library(berth_pod_files STATIC ${CMAKE_CURRENT_LIST_DIR}/pod_files.cc)
berth_target(berth_pod_files)
target_link_libraries(berth_pod_files PUBLIC berth_common absl::status absl::strings)
