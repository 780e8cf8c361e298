# What the WebAssembly build (top-level CMakeLists.txt, if(EMSCRIPTEN)) links instead of the
# host's packages. Included before the project's own warnings are set, so SQLite's sources
# are compiled as SQLite ships them.

# Every C++ target of the browser build throws and catches (nlohmann/json, the replica's
# error paths): emscripten disables catching unless asked.
add_compile_options(-fexceptions)
add_link_options(-fexceptions)

# No threads in the browser build: one Web Worker calls the replica, so its mutexes are
# uncontended (emscripten without -pthread makes them no-ops).
add_library(Threads::Threads INTERFACE IMPORTED)

# nlohmann/json: Debian's header-only package, seen through a directory that holds only it
# (the host's /usr/include must not shadow emscripten's libc).
find_path(FIELDSYNC_NLOHMANN_INCLUDE nlohmann/json.hpp PATHS /usr/include NO_CMAKE_FIND_ROOT_PATH REQUIRED)
set(fieldsync_wasm_include ${CMAKE_BINARY_DIR}/wasm-include)
file(MAKE_DIRECTORY ${fieldsync_wasm_include})
file(CREATE_LINK ${FIELDSYNC_NLOHMANN_INCLUDE}/nlohmann ${fieldsync_wasm_include}/nlohmann SYMBOLIC)
add_library(nlohmann_json INTERFACE)
target_include_directories(nlohmann_json SYSTEM INTERFACE ${fieldsync_wasm_include})
add_library(nlohmann_json::nlohmann_json ALIAS nlohmann_json)

# SQLite: the amalgamation from npm (client-lib/wasm/package.json, pinned by its
# package-lock.json), built with no OS layer of its own: its only file system is the VFS of
# client-lib/wasm/opfs_vfs.c (the browser's origin-private file system). No WAL (it needs
# shared memory); the replica's journal_mode=WAL is then ignored and stays DELETE.
set(FIELDSYNC_SQLITE_AMALGAMATION ${PROJECT_SOURCE_DIR}/client-lib/wasm/node_modules/better-sqlite3/deps/sqlite3
    CACHE PATH "The directory holding SQLite's sqlite3.c and sqlite3.h")
if(NOT EXISTS ${FIELDSYNC_SQLITE_AMALGAMATION}/sqlite3.c)
  message(FATAL_ERROR "no sqlite3.c in ${FIELDSYNC_SQLITE_AMALGAMATION}: run `npm ci` in client-lib/wasm")
endif()
add_library(fieldsync_sqlite3 STATIC
  ${FIELDSYNC_SQLITE_AMALGAMATION}/sqlite3.c
  ${PROJECT_SOURCE_DIR}/client-lib/wasm/opfs_vfs.c)
target_include_directories(fieldsync_sqlite3 PUBLIC ${FIELDSYNC_SQLITE_AMALGAMATION})
target_compile_definitions(fieldsync_sqlite3 PRIVATE
  SQLITE_OS_OTHER=1 SQLITE_THREADSAFE=0 SQLITE_OMIT_WAL=1 SQLITE_OMIT_LOAD_EXTENSION=1
  SQLITE_OMIT_DEPRECATED=1 SQLITE_DEFAULT_MEMSTATUS=0 SQLITE_DQS=0 SQLITE_TEMP_STORE=3
  SQLITE_OMIT_SHARED_CACHE=1)
target_compile_options(fieldsync_sqlite3 PRIVATE -O2 -w)
add_library(SQLite::SQLite3 ALIAS fieldsync_sqlite3)
