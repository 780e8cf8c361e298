#include "store/sqlite.hpp"

namespace fieldsync::server::sqlite {

bool sqlite_error::transient() const noexcept {
    switch (code_ & 0xFF) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_FULL:
        case SQLITE_IOERR:
        case SQLITE_NOMEM: return true;
        default: return false;
    }
}

void check(sqlite3* db, int rc, std::string_view what) {
    if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
    std::string msg(what);
    msg += ": ";
    msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw sqlite_error(rc, msg);
}

stmt::stmt(sqlite3* db, std::string_view sql) : db_(db) {
    check(db_, sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s_, nullptr),
          "prepare");
}

stmt::~stmt() { sqlite3_finalize(s_); }

stmt& stmt::reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    return *this;
}

stmt& stmt::bind(int index, std::int64_t v) {
    check(db_, sqlite3_bind_int64(s_, index, v), "bind");
    return *this;
}

stmt& stmt::bind(int index, std::string_view v) {
    check(db_, sqlite3_bind_text(s_, index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), "bind");
    return *this;
}

stmt& stmt::bind_blob(int index, const void* data, std::size_t size) {
    check(db_, sqlite3_bind_blob(s_, index, data, static_cast<int>(size), SQLITE_TRANSIENT), "bind");
    return *this;
}

stmt& stmt::bind_null(int index) {
    check(db_, sqlite3_bind_null(s_, index), "bind");
    return *this;
}

bool stmt::step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    sqlite3_reset(s_);
    check(db_, rc, "step");
    return false;
}

void stmt::run() {
    while (step()) {
    }
}

std::string stmt::text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
}

db::db(const std::string& path, mode m) {
    const int flags = (m == mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                      SQLITE_OPEN_NOMUTEX;
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = "open " + path + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
        sqlite3_close(db_);
        db_ = nullptr;
        throw sqlite_error(rc, msg);
    }
    sqlite3_extended_result_codes(db_, 1);
}

db::~db() {
    cache_.clear();  // statements must be finalized before the connection closes
    sqlite3_close(db_);
}

void db::exec(std::string_view sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        throw sqlite_error(rc, msg);
    }
}

query db::cached(const char* sql) {
    auto& slot = cache_[sql];
    if (!slot) slot = std::make_unique<stmt>(db_, sql);
    return query(slot->reset());
}

query::~query() { s_.reset(); }

std::string db::held_open() const {
    std::string open;
    if (!sqlite3_get_autocommit(db_)) open = "a transaction";
    for (sqlite3_stmt* s = sqlite3_next_stmt(db_, nullptr); s; s = sqlite3_next_stmt(db_, s)) {
        if (!sqlite3_stmt_busy(s)) continue;
        if (!open.empty()) open += "; ";
        open += "a statement mid-step: ";
        open += sqlite3_sql(s);
    }
    return open;
}

read_transaction::read_transaction(db& d) : db_(d) { db_.cached("BEGIN").run(); }

read_transaction::~read_transaction() {
    // A read transaction has nothing to lose: if COMMIT fails, ROLLBACK; if that fails too,
    // the connection is left in a transaction and the pool's check (held_open) drops it.
    if (sqlite3_get_autocommit(db_.handle())) return;
    try {
        db_.cached("COMMIT").run();
    } catch (const sqlite_error&) {
        sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

}  // namespace fieldsync::server::sqlite
