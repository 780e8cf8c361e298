#pragma once
// The lock a serving process holds on its store file (ARCHITECTURE.md, "Backup and restore"):
// fieldsync-server takes it for its whole life, restore_sqlite_store for the time it replaces
// the file, so a restore never swaps a store under a running server and two servers never
// serve one file. Private to the server: fieldsync-server (main.cpp) and store/backup.cpp.

#include <fieldsync/protocol/error.hpp>

#include <string>

namespace fieldsync::server {

namespace proto = fieldsync::protocol;

/// An flock(2) held on `<store>.server-lock` (not on the store file: SQLite's own POSIX locks
/// live there, and on some network file systems flock is emulated with them). The kernel
/// releases it when the holder exits, however it exits. Move-only; released on destruction.
class serve_lock {
public:
    serve_lock() = default;
    explicit serve_lock(int fd) : fd_(fd) {}
    serve_lock(serve_lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    serve_lock& operator=(serve_lock&& o) noexcept;
    serve_lock(const serve_lock&) = delete;
    serve_lock& operator=(const serve_lock&) = delete;
    ~serve_lock();

private:
    int fd_ = -1;
};

/// The lock file's path for the store at `store_path`.
std::string serve_lock_path(const std::string& store_path);

/// Takes the lock without waiting. `unavailable` when another process holds it (the message
/// names that process's pid, which the holder writes into the lock file), storage_error when
/// the lock file cannot be made. The lock file is created 0600 and left in place afterwards.
proto::expected<serve_lock> lock_store(const std::string& store_path);

}  // namespace fieldsync::server
