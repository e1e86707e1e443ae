# Builds llama-server and only what it links, not the other ~25 llama.cpp tools: the embedded
# backend runs nothing else. Passed to llama.cpp's configure by scripts/bootstrap.sh as
# -DCMAKE_PROJECT_INCLUDE=<this file>; CMake includes it after each project() call. Once the whole
# tree is configured, every target but llama-server leaves the default build ("all"); CMake still
# builds whatever llama-server depends on (libllama, ggml, common, mtmd, the server library).
get_property(_im_hooked GLOBAL PROPERTY IM_SERVER_ONLY_HOOKED)
if(NOT _im_hooked)
  set_property(GLOBAL PROPERTY IM_SERVER_ONLY_HOOKED TRUE)

  function(_im_targets_under dir out)
    get_property(found DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
    get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
    foreach(sub IN LISTS subdirs)
      _im_targets_under("${sub}" more)
      list(APPEND found ${more})
    endforeach()
    set(${out} ${found} PARENT_SCOPE)
  endfunction()

  function(_im_server_only)
    if(NOT TARGET llama-server)
      message(WARNING "llama-server-only.cmake: no llama-server target; building everything")
      return()
    endif()
    _im_targets_under("${CMAKE_SOURCE_DIR}" all_targets)
    set(dropped 0)
    foreach(target IN LISTS all_targets)
      if(NOT target STREQUAL "llama-server")
        set_property(TARGET ${target} PROPERTY EXCLUDE_FROM_ALL TRUE)
        math(EXPR dropped "${dropped} + 1")
      endif()
    endforeach()
    # C++ targets with many small files are compiled in batches (a "unity" build): most of their
    # compile time is the shared headers (the server's: nlohmann/json and cpp-httplib), parsed once
    # per batch instead of once per file. The server's two libraries went from 85 to 45 CPU seconds.
    foreach(target IN ITEMS llama llama-common server-context llama-server-impl mtmd)
      if(TARGET ${target})
        set_property(TARGET ${target} PROPERTY UNITY_BUILD ON)
      endif()
    endforeach()
    # mtmd's ~40 image and audio encoders (one small file each) too, 70 -> 34 CPU seconds; its two
    # public helper files refuse to share a unit with its internals, by design, so they stay apart
    if(TARGET mtmd)
      get_target_property(mtmd_dir mtmd SOURCE_DIR)
      set_source_files_properties("${mtmd_dir}/mtmd-helper.cpp" "${mtmd_dir}/mtmd-helper-gen.cpp"
                                  TARGET_DIRECTORY mtmd PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
    endif()
    # Only ggml's kernels are hot (every token's matrix work): they keep the release -O3. The rest
    # (the HTTP server, chat templates, argument parsing, the per-architecture graph builders, run
    # once per batch) is compiled for build time at -O1, about half of -O3's compile time; mtmd,
    # the image encoders, which a text model never runs, at -O0. (Measured on 2 cores: 750 -> see
    # bench/RESULTS.md "first install"; the decode speed is in its "local" section.)
    if(NOT MSVC)
      foreach(target IN ITEMS llama llama-common cpp-httplib server-context llama-server-impl llama-server)
        if(TARGET ${target})
          set_property(TARGET ${target} APPEND PROPERTY COMPILE_OPTIONS -O1)
        endif()
      endforeach()
      if(TARGET mtmd)
        set_property(TARGET mtmd APPEND PROPERTY COMPILE_OPTIONS -O0)
      endif()
    endif()
    message(STATUS "llama-server-only.cmake: the default build is llama-server and its dependencies "
                   "(${dropped} other targets built only if it needs them)")
  endfunction()

  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _im_server_only)
endif()
