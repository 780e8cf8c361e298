#include "sqlite.hpp"

namespace fieldsync::client::detail {
namespace {

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
    std::string msg = "local store: ";
    msg += what;
    msg += ": ";
    msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw failure(errc::storage, std::move(msg));
}

}  // namespace

void statement::check(int rc) {
    if (rc != SQLITE_OK) fail(db_, rc, "bind");
}

statement& statement::bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
}
statement& statement::bind(int i, double v) {
    check(sqlite3_bind_double(s_, i, v));
    return *this;
}
statement& statement::bind(int i, std::string_view v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
}
statement& statement::bind(int i, const std::optional<std::string>& v) {
    return v ? bind(i, std::string_view(*v)) : bind_null(i);
}
statement& statement::bind_null(int i) {
    check(sqlite3_bind_null(s_, i));
    return *this;
}

bool statement::step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, rc, "step");
}

void statement::run() {
    while (step()) {
    }
    reset();
}

void statement::reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
}

std::string statement::text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
}

std::optional<std::string> statement::opt_text(int col) const {
    if (is_null(col)) return std::nullopt;
    return text(col);
}

connection::connection(const std::string& path) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = "local store: cannot open '" + path + "': " +
                          (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
        if (db_) sqlite3_close(db_);
        db_ = nullptr;
        throw failure(errc::storage, std::move(msg));
    }
    sqlite3_extended_result_codes(db_, 1);
}

connection::~connection() {
    cache_.clear();  // statements must be finalized before the connection closes
    if (db_) sqlite3_close(db_);
}

void connection::exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = "local store: " + std::string(err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        throw failure(errc::storage, std::move(msg));
    }
}

statement_ref connection::prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
        sqlite3_stmt* s = nullptr;
        const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                          &s, nullptr);
        if (rc != SQLITE_OK) fail(db_, rc, "prepare");
        it = cache_.emplace(sql, std::make_unique<statement>(db_, s)).first;
    }
    return statement_ref(*it->second);
}

transaction::transaction(connection& c) : c_(c) { c_.exec("BEGIN IMMEDIATE"); }

transaction::~transaction() {
    if (!done_) sqlite3_exec(c_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void transaction::commit() {
    c_.exec("COMMIT");
    done_ = true;
}

}  // namespace fieldsync::client::detail
