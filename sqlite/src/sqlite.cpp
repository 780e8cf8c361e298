#include <fieldsync/sqlite/sqlite.hpp>

namespace fieldsync::sqlite {

bool error::transient() const noexcept {
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
    throw error(rc, msg);
}

namespace {
// A failed bind or step names its statement: "bind: bad parameter ... (in: SELECT ...)".
void check_in(sqlite3* db, sqlite3_stmt* s, int rc, std::string_view what) {
    if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
    std::string msg(what);
    msg += ": ";
    msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (const char* sql = s ? sqlite3_sql(s) : nullptr) {
        msg += " (in: ";
        msg += sql;
        msg += ")";
    }
    throw error(rc, msg);
}
}  // namespace

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
    check_in(db_, s_, sqlite3_bind_int64(s_, index, v), "bind");
    return *this;
}

stmt& stmt::bind(int index, double v) {
    check_in(db_, s_, sqlite3_bind_double(s_, index, v), "bind");
    return *this;
}

stmt& stmt::bind(int index, std::string_view v) {
    check_in(db_, s_, sqlite3_bind_text(s_, index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), "bind");
    return *this;
}

stmt& stmt::bind_blob(int index, const void* data, std::size_t size) {
    check_in(db_, s_, sqlite3_bind_blob(s_, index, data, static_cast<int>(size), SQLITE_TRANSIENT), "bind");
    return *this;
}

stmt& stmt::bind_null(int index) {
    check_in(db_, s_, sqlite3_bind_null(s_, index), "bind");
    return *this;
}

bool stmt::step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    sqlite3_reset(s_);
    check_in(db_, s_, rc, "step");
    return false;
}

void stmt::run() {
    while (step()) {
    }
    sqlite3_reset(s_);  // done: ready to run again (the bindings stay)
}

std::string stmt::text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
}

std::optional<std::string> stmt::opt_text(int col) const {
    if (is_null(col)) return std::nullopt;
    return text(col);
}

query::~query() { s_.reset(); }

db::db(const std::string& path, mode m) {
    // SQLite counts the memory it holds by default, taking one process-wide mutex around every
    // allocation; nothing here reads the count, and the server's writer spent about 5 % of its
    // time on that mutex (issue 18). It can only be set before SQLite initialises, so once, at
    // the first open; a process where something else initialised SQLite keeps the default.
    static const bool memstatus_off = [] { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK; }();
    (void)memstatus_off;
    const int flags = (m == mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                      SQLITE_OPEN_NOMUTEX;
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = "cannot open '" + path + "': " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
        sqlite3_close(db_);
        db_ = nullptr;
        throw error(rc, msg);
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
        throw error(rc, msg);
    }
}

query db::cached(std::string_view sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) it = cache_.emplace(std::string(sql), std::make_unique<stmt>(db_, sql)).first;
    return query(it->second->reset());
}

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
    } catch (const error&) {
        sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

write_transaction::write_transaction(db& d) : db_(d) { db_.exec("BEGIN IMMEDIATE"); }

write_transaction::~write_transaction() {
    if (!done_ && !sqlite3_get_autocommit(db_.handle())) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void write_transaction::commit() {
    db_.exec("COMMIT");
    done_ = true;
}

}  // namespace fieldsync::sqlite
