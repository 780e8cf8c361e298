#pragma once
// A thin RAII layer over the SQLite C API: a connection with a cache of prepared statements,
// and statements with typed bind/column helpers. Errors throw detail::failure(errc::storage);
// a transaction guard rolls back on unwind. Not thread-safe: the owner serialises access.

#include "../failure.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fieldsync::client::detail {

class statement {
public:
    statement(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;
    ~statement() { if (s_) sqlite3_finalize(s_); }

    statement& bind(int i, std::int64_t v);
    statement& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
    statement& bind(int i, bool v) { return bind(i, static_cast<std::int64_t>(v ? 1 : 0)); }
    statement& bind(int i, double v);
    statement& bind(int i, std::string_view v);
    statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
    statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
    statement& bind(int i, const std::optional<std::string>& v);
    statement& bind_null(int i);

    /// Steps once: true when a row is available.
    bool step();
    /// Steps to completion (INSERT/UPDATE/DELETE), then resets for reuse.
    void run();
    void reset();

    std::int64_t int64(int col) const { return sqlite3_column_int64(s_, col); }
    bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
    std::string text(int col) const;
    std::optional<std::string> opt_text(int col) const;

private:
    void check(int rc);
    sqlite3* db_;
    sqlite3_stmt* s_;
};

/// Resets a cached statement when the caller is done with it, even on unwind.
class statement_ref {
public:
    explicit statement_ref(statement& s) : s_(&s) {}
    ~statement_ref() { s_->reset(); }
    statement_ref(const statement_ref&) = delete;
    statement_ref& operator=(const statement_ref&) = delete;
    statement* operator->() { return s_; }
    statement& operator*() { return *s_; }

private:
    statement* s_;
};

class connection {
public:
    explicit connection(const std::string& path);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Runs SQL without results (schema, pragmas, BEGIN/COMMIT).
    void exec(const std::string& sql);
    /// A cached prepared statement, reset and with bindings cleared.
    statement_ref prepare(const std::string& sql);
    std::int64_t changes() const { return sqlite3_changes(db_); }
    sqlite3* handle() const { return db_; }

private:
    sqlite3* db_ = nullptr;
    std::map<std::string, std::unique_ptr<statement>, std::less<>> cache_;
};

/// BEGIN IMMEDIATE ... COMMIT; rolls back if destroyed before commit(). IMMEDIATE takes the
/// write lock up front, so a transaction never fails half-way with SQLITE_BUSY on upgrade.
class transaction {
public:
    explicit transaction(connection& c);
    ~transaction();
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    void commit();

private:
    connection& c_;
    bool done_ = false;
};

}  // namespace fieldsync::client::detail
