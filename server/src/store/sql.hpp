#pragma once
// The SQL engine under the central store, as the store's code sees it: SQLite (sql_sqlite.cpp)
// or PostgreSQL (sql_postgres.cpp, built when libpq is present). One store implementation
// (sql_store) runs the same statements on both (ARCHITECTURE.md, "Central store"); where the
// two dialects differ, the store asks `db::kind()`.
//
// Statements are written in SQLite's form with `?` or `?N` parameters; the PostgreSQL
// connection turns them into `$N`. Portable SQL only otherwise: `INSERT ... ON CONFLICT`, not
// `INSERT OR REPLACE`; CAST where a parameter's type cannot be inferred.
//
// Errors throw sql::error. Not thread-safe: one connection per thread, or a lock around it.
// Private to server/src/store.

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace fieldsync::server::sql {

enum class engine { sqlite, postgres };

/// A storage failure. transient(): the operation may succeed later and nothing of it was
/// applied (SQLite busy, locked or out of disk; PostgreSQL serialization failures, deadlocks,
/// and a lost connection, including during COMMIT, whose outcome is then unknown: the caller
/// answers it as retryable, never as success, and the retry is decided by the change ids).
class error : public std::runtime_error {
public:
    error(const std::string& what, bool transient) : std::runtime_error(what), transient_(transient) {}
    bool transient() const noexcept { return transient_; }

private:
    bool transient_;
};

/// A prepared statement. Binds chain; reset() ends a step and clears the bindings.
/// Parameters are numbered from 1, columns from 0.
class stmt {
public:
    virtual ~stmt() = default;
    virtual void reset() = 0;
    virtual void bind_int64(int index, std::int64_t v) = 0;
    virtual void bind_real(int index, double v) = 0;
    virtual void bind_text(int index, std::string_view v) = 0;
    virtual void bind_blob(int index, const void* data, std::size_t size) = 0;
    virtual void bind_null(int index) = 0;
    /// Steps once: true if a row is available, false when done.
    virtual bool step() = 0;
    /// Steps until done (statements without results), then resets, keeping the bindings.
    virtual void run() = 0;
    /// As run(), but perhaps without waiting for the statement's answer: PostgreSQL sends it in
    /// pipeline mode, so the write path's rows go in one round trip, not one each. Its failure
    /// is thrown by the connection's next call that waits for the server (a read, exec, run,
    /// commit), within the same transaction; changes() does not count it. SQLite runs it now.
    virtual void run_deferred() { run(); }
    virtual std::int64_t int64(int col) const = 0;
    virtual double real(int col) const = 0;
    virtual std::string text(int col) const = 0;
    virtual bool is_null(int col) const = 0;

    stmt& bind(int i, std::int64_t v) { return bind_int64(i, v), *this; }
    stmt& bind(int i, int v) { return bind_int64(i, v), *this; }
    stmt& bind(int i, bool v) { return bind_int64(i, v ? 1 : 0), *this; }
    stmt& bind(int i, double v) { return bind_real(i, v), *this; }
    stmt& bind(int i, std::string_view v) { return bind_text(i, v), *this; }
    stmt& bind(int i, const std::string& v) { return bind_text(i, v), *this; }
    stmt& bind(int i, const char* v) { return bind_text(i, v), *this; }
    stmt& bind(int i, const std::optional<std::int64_t>& v) { return v ? bind(i, *v) : (bind_null(i), *this); }
    stmt& bind(int i, const std::optional<std::string>& v) { return v ? bind(i, *v) : (bind_null(i), *this); }
    /// NULL as nullopt.
    std::optional<std::string> opt_text(int col) const {
        return is_null(col) ? std::nullopt : std::optional<std::string>(text(col));
    }
};

/// A cached statement in use, handed out by db::cached: when it goes out of scope the
/// statement is reset (its read or write ended, its bindings cleared), by whatever path.
class query {
public:
    explicit query(stmt& s) noexcept : s_(s) {}
    ~query() {
        try {
            s_.reset();
        } catch (...) {
        }
    }
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
    void run_deferred() { s_.run_deferred(); }
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
    virtual ~db() = default;
    virtual engine kind() const noexcept = 0;
    /// Runs SQL without results or parameters (schema, BEGIN/COMMIT); several statements may
    /// follow one another.
    virtual void exec(std::string_view sql) = 0;
    /// A statement prepared once per connection (keyed by its text) and reused.
    virtual query cached(std::string_view sql) = 0;
    /// A statement of its own, for reads that step several statements at once.
    virtual std::unique_ptr<stmt> prepare(std::string_view sql) = 0;
    /// Rows the last INSERT, UPDATE or DELETE run on this connection changed.
    virtual std::int64_t changes() const = 0;
    /// What this connection still holds open, "" when nothing: a transaction, and each
    /// statement stepped but neither finished nor reset. A pooled connection must hold
    /// nothing open when it goes back to the pool.
    virtual std::string held_open() const = 0;

    /// A read transaction: every statement until commit() reads one snapshot.
    virtual void begin_read() = 0;
    /// A write transaction that holds the store's one write lock until it ends (SQLite:
    /// BEGIN IMMEDIATE; PostgreSQL: BEGIN and a transaction-level advisory lock), so writers,
    /// in this process or another, on this machine or another, commit one after another, and
    /// the feed's seqs commit in their order.
    virtual void begin_write() = 0;
    /// The line of history the open write transaction writes on, read by begin_write:
    /// PostgreSQL's timeline, which every promotion of a standby starts anew (the old primary's
    /// last commits may not have reached it); "" where history has one line (SQLite).
    virtual std::string timeline() const { return {}; }
    /// The writer's connection, once: SQLite's WAL is copied back into the database file by a
    /// thread of its own rather than by the commit that finds the WAL long (a no-op on
    /// PostgreSQL, whose checkpoints are the server's).
    virtual void checkpoint_in_background() {}
    virtual void commit() = 0;
    /// Never throws: a rollback that fails leaves the connection to be dropped.
    virtual void rollback() noexcept = 0;
};

/// Word of commits made through other connections, on this server or another (PostgreSQL:
/// LISTEN on the channel the store notifies at each commit that moves what pulls read), so a
/// waiting sync on one server hears of a change written through another.
class commit_notifications {
public:
    virtual ~commit_notifications() = default;
    /// Waits up to timeout_ms: true when one or more commits were announced by others than
    /// `own` (the payload the caller announces its own commits with, which it tells of
    /// itself). Throws sql::error (transient) when the connection is lost; the caller opens a
    /// new one.
    virtual bool wait(int timeout_ms, const std::string& own) = 0;
};

/// The channel of a store's notifications: one per store (named from its incarnation), since
/// PostgreSQL's channels are the database's and one database may hold several stores, each in
/// its schema.
inline std::string commit_channel(std::string_view incarnation) {
    std::string out = "fieldsync_";
    for (const char c : incarnation)
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) out += c;
    return out.substr(0, 63);
}

/// A read transaction for a scope: begun at construction, ended when the scope ends, by
/// whatever path.
class read_transaction {
public:
    explicit read_transaction(db& d) : db_(d) { db_.begin_read(); }
    ~read_transaction() {
        try {
            db_.commit();
        } catch (...) {
            db_.rollback();
        }
    }
    read_transaction(const read_transaction&) = delete;
    read_transaction& operator=(const read_transaction&) = delete;

private:
    db& db_;
};

}  // namespace fieldsync::server::sql
