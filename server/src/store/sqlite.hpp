#pragma once
// A thin RAII layer over the SQLite C API for the server's store. Private to server/src/store:
// every SQL statement of the server lives behind the store type.
//
// Errors throw sqlite_error; the store catches it at its boundary and answers
// protocol::errc::storage_error, so no exception leaves the store.

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fieldsync::server::sqlite {

class sqlite_error : public std::runtime_error {
public:
    sqlite_error(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const noexcept { return code_; }
    /// SQLITE_BUSY/LOCKED/FULL/IOERR: the operation may succeed later; nothing was applied.
    bool transient() const noexcept;

private:
    int code_;
};

/// A prepared statement; reset and cleared of bindings by reset(). Not thread-safe.
class stmt {
public:
    stmt(sqlite3* db, std::string_view sql);
    ~stmt();
    stmt(const stmt&) = delete;
    stmt& operator=(const stmt&) = delete;

    stmt& reset();
    stmt& bind(int index, std::int64_t v);
    stmt& bind(int index, std::string_view v);
    stmt& bind_blob(int index, const void* data, std::size_t size);
    stmt& bind_null(int index);
    stmt& bind(int index, const std::optional<std::int64_t>& v) { return v ? bind(index, *v) : bind_null(index); }

    /// Steps once: true if a row is available, false when done.
    bool step();
    /// Steps until done (for statements without results).
    void run();

    std::int64_t int64(int col) const { return sqlite3_column_int64(s_, col); }
    std::string text(int col) const;
    bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

private:
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
};

/// One connection. Not thread-safe: each thread (the writer, each reader) owns its own.
class db {
public:
    enum class mode { read_write_create, read_only };
    db(const std::string& path, mode m);
    ~db();
    db(const db&) = delete;
    db& operator=(const db&) = delete;

    void exec(std::string_view sql);
    /// A statement prepared once per connection and reused (reset before it is returned).
    stmt& cached(const char* sql);
    std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
    sqlite3* handle() const noexcept { return db_; }

private:
    sqlite3* db_ = nullptr;
    std::map<const char*, std::unique_ptr<stmt>> cache_;
};

/// Throws sqlite_error when rc is not SQLITE_OK/ROW/DONE.
void check(sqlite3* db, int rc, std::string_view what);

}  // namespace fieldsync::server::sqlite
