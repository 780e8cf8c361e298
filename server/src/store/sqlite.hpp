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
#include <utility>

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

/// A cached statement in use, handed out by db::cached: bind and step through it; when it goes
/// out of scope, by whatever path, the statement is reset (its read or write ended, its
/// bindings cleared). So no statement of the cache can stay mid-step after the code that
/// stepped it is done: a statement left stepped keeps its connection's read transaction, and
/// with it a snapshot of the store, open.
class query {
public:
    explicit query(stmt& s) noexcept : s_(s) {}
    ~query();
    query(const query&) = delete;
    query& operator=(const query&) = delete;

    template <class... Args>
    query& bind(Args&&... args) {
        s_.bind(std::forward<Args>(args)...);
        return *this;
    }
    query& bind_blob(int index, const void* data, std::size_t size) {
        s_.bind_blob(index, data, size);
        return *this;
    }
    query& bind_null(int index) {
        s_.bind_null(index);
        return *this;
    }
    /// Ends the statement now (before the scope does), so it can be bound and stepped again.
    query& reset() {
        s_.reset();
        return *this;
    }
    bool step() { return s_.step(); }
    void run() { s_.run(); }
    std::int64_t int64(int col) const { return s_.int64(col); }
    std::string text(int col) const { return s_.text(col); }
    bool is_null(int col) const { return s_.is_null(col); }
    /// For the row readers that take a statement.
    operator stmt&() noexcept { return s_; }

private:
    stmt& s_;
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
    /// A statement prepared once per connection and reused; the query resets it when it goes
    /// out of scope. `sql` is the key (by address): pass a literal or a string that outlives
    /// the connection.
    query cached(const char* sql);
    /// What this connection still holds open, "" when nothing: a transaction (not in
    /// autocommit mode), and the SQL of each statement stepped but neither finished nor reset.
    /// A pooled connection must hold nothing open when it goes back to the pool.
    std::string held_open() const;
    std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
    sqlite3* handle() const noexcept { return db_; }

private:
    sqlite3* db_ = nullptr;
    std::map<const char*, std::unique_ptr<stmt>> cache_;
};

/// A read transaction on a connection: BEGIN at construction, so every statement in the scope
/// reads one snapshot of the store, and COMMIT when the scope ends, by whatever path (a
/// ROLLBACK if the COMMIT fails). Reads of a pooled connection run in one, so the connection
/// goes back to the pool with its snapshot let go and the next read sees the store as it is.
class read_transaction {
public:
    explicit read_transaction(db& d);
    ~read_transaction();
    read_transaction(const read_transaction&) = delete;
    read_transaction& operator=(const read_transaction&) = delete;

private:
    db& db_;
};

/// Throws sqlite_error when rc is not SQLITE_OK/ROW/DONE.
void check(sqlite3* db, int rc, std::string_view what);

}  // namespace fieldsync::server::sqlite
