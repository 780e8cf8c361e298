#pragma once
// A thin RAII layer over the SQLite C API: the one the server's store, the client's replica
// and the tools all use. A connection keeps a cache of prepared statements; a statement taken
// from the cache comes as a `query`, which resets it when it goes out of scope, by whatever
// path, so no statement is ever left mid-step (a statement left stepped keeps its
// connection's read transaction, and with it a snapshot of the database, open).
//
// Errors throw sqlite::error (the SQLite result code and a message); each user catches it at
// its own boundary: the server's store answers storage_error or unavailable, the client's
// replica errc::storage. Not thread-safe: one connection per thread, or a lock around it.

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace fieldsync::sqlite {

class error : public std::runtime_error {
public:
    error(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    /// The extended result code, e.g. SQLITE_FULL or SQLITE_IOERR_WRITE.
    int code() const noexcept { return code_; }
    /// BUSY, LOCKED, FULL, IOERR, NOMEM: the operation may succeed later; nothing was applied.
    bool transient() const noexcept;

private:
    int code_;
};

/// Throws sqlite::error when rc is not SQLITE_OK, SQLITE_ROW or SQLITE_DONE.
void check(sqlite3* db, int rc, std::string_view what);

/// A prepared statement. Binds chain; reset() ends a step and clears the bindings.
class stmt {
public:
    stmt(sqlite3* db, std::string_view sql);
    ~stmt();
    stmt(const stmt&) = delete;
    stmt& operator=(const stmt&) = delete;

    stmt& reset();
    stmt& bind(int index, std::int64_t v);
    stmt& bind(int index, int v) { return bind(index, static_cast<std::int64_t>(v)); }
    stmt& bind(int index, bool v) { return bind(index, static_cast<std::int64_t>(v ? 1 : 0)); }
    stmt& bind(int index, double v);
    stmt& bind(int index, std::string_view v);
    stmt& bind(int index, const std::string& v) { return bind(index, std::string_view(v)); }
    stmt& bind(int index, const char* v) { return bind(index, std::string_view(v)); }
    stmt& bind(int index, const std::optional<std::int64_t>& v) { return v ? bind(index, *v) : bind_null(index); }
    stmt& bind(int index, const std::optional<std::string>& v) {
        return v ? bind(index, std::string_view(*v)) : bind_null(index);
    }
    stmt& bind_blob(int index, const void* data, std::size_t size);
    stmt& bind_null(int index);

    /// Steps once: true if a row is available, false when done.
    bool step();
    /// Steps until done (statements without results), then resets, keeping the bindings.
    void run();

    std::int64_t int64(int col) const { return sqlite3_column_int64(s_, col); }
    double real(int col) const { return sqlite3_column_double(s_, col); }
    std::string text(int col) const;
    /// NULL as nullopt.
    std::optional<std::string> opt_text(int col) const;
    bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

private:
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
};

/// A cached statement in use, handed out by db::cached: bind and step through it; when it goes
/// out of scope the statement is reset (its read or write ended, its bindings cleared).
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
    double real(int col) const { return s_.real(col); }
    std::string text(int col) const { return s_.text(col); }
    std::optional<std::string> opt_text(int col) const { return s_.opt_text(col); }
    bool is_null(int col) const { return s_.is_null(col); }
    /// For the row readers that take a statement.
    operator stmt&() noexcept { return s_; }

private:
    stmt& s_;
};

/// One connection.
class db {
public:
    enum class mode { read_write_create, read_only };
    explicit db(const std::string& path, mode m = mode::read_write_create);
    ~db();
    db(const db&) = delete;
    db& operator=(const db&) = delete;

    /// Runs SQL without results (schema, pragmas, BEGIN/COMMIT); several statements may follow
    /// one another.
    void exec(std::string_view sql);
    /// A statement prepared once per connection (keyed by its text) and reused; the query
    /// resets it when it goes out of scope.
    query cached(std::string_view sql);
    /// What this connection still holds open, "" when nothing: a transaction (not in
    /// autocommit mode), and the SQL of each statement stepped but neither finished nor reset.
    /// A pooled connection must hold nothing open when it goes back to the pool.
    std::string held_open() const;
    std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
    /// Rows the last INSERT, UPDATE or DELETE changed.
    std::int64_t changes() const { return sqlite3_changes(db_); }
    sqlite3* handle() const noexcept { return db_; }

private:
    sqlite3* db_ = nullptr;
    std::map<std::string, std::unique_ptr<stmt>, std::less<>> cache_;
};

/// A read transaction: BEGIN at construction, so every statement in the scope reads one
/// snapshot, and COMMIT when the scope ends, by whatever path (ROLLBACK if the COMMIT fails).
class read_transaction {
public:
    explicit read_transaction(db& d);
    ~read_transaction();
    read_transaction(const read_transaction&) = delete;
    read_transaction& operator=(const read_transaction&) = delete;

private:
    db& db_;
};

/// BEGIN IMMEDIATE ... commit(); rolls back if destroyed before commit(). IMMEDIATE takes the
/// write lock up front, so a transaction never fails half-way with SQLITE_BUSY on upgrade.
class write_transaction {
public:
    explicit write_transaction(db& d);
    ~write_transaction();
    write_transaction(const write_transaction&) = delete;
    write_transaction& operator=(const write_transaction&) = delete;
    void commit();

private:
    db& db_;
    bool done_ = false;
};

}  // namespace fieldsync::sqlite
