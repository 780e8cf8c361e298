// The SQLite connection under the central store: sql::db over fieldsync::sqlite.

#include "store/sql_sqlite.hpp"

#include <fieldsync/server/tuning.hpp>
#include <fieldsync/sqlite/sqlite.hpp>

#include <functional>
#include <map>

namespace fieldsync::server::sql {
namespace {

// sqlite::error as the store's error, keeping what it says and whether a retry may succeed.
template <class Fn>
auto translated(Fn&& fn) -> decltype(fn()) {
    try {
        return fn();
    } catch (const sqlite::error& e) {
        // Only a busy store is worth a retry by the client; a full disk or an I/O error is a
        // storage failure the operator must see.
        throw error(e.what(), (e.code() & 0xFF) == SQLITE_BUSY);
    }
}

class sqlite_stmt final : public stmt {
public:
    sqlite_stmt(sqlite3* h, std::string_view sql) : s_(translated([&] { return sqlite::stmt(h, sql); })) {}
    void reset() override { s_.reset(); }
    void bind_int64(int i, std::int64_t v) override { translated([&] { s_.bind(i, v); }); }
    void bind_real(int i, double v) override { translated([&] { s_.bind(i, v); }); }
    void bind_text(int i, std::string_view v) override {
        // An empty view is empty text, never NULL (sqlite3_bind_text binds NULL for a null
        // pointer), as on PostgreSQL: a NOT NULL column refuses it the same way on both.
        translated([&] { s_.bind(i, v.data() ? v : std::string_view("", 0)); });
    }
    void bind_blob(int i, const void* data, std::size_t size) override {
        translated([&] { s_.bind_blob(i, data, size); });
    }
    void bind_null(int i) override { translated([&] { s_.bind_null(i); }); }
    bool step() override { return translated([&] { return s_.step(); }); }
    void run() override { translated([&] { s_.run(); }); }
    std::int64_t int64(int col) const override { return s_.int64(col); }
    double real(int col) const override { return s_.real(col); }
    std::string text(int col) const override { return s_.text(col); }
    bool is_null(int col) const override { return s_.is_null(col); }

private:
    sqlite::stmt s_;
};

class sqlite_db final : public db {
public:
    explicit sqlite_db(const std::string& path) : db_(translated([&] {
        return std::make_unique<sqlite::db>(path, sqlite::db::mode::read_write_create);
    })) {
        translated([&] {
            sqlite3_busy_timeout(db_->handle(), tuning::busy_timeout_ms);
            // WAL lets readers see the last commit while the writer works; synchronous=FULL
            // syncs the WAL at every commit, so an answered change-set survives power loss,
            // not only a crash of the process.
            db_->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
            db_->exec("PRAGMA cache_size=-" + std::to_string(tuning::cache_kib));
        });
    }
    ~sqlite_db() override {
        cache_.clear();  // statements before their connection
    }

    engine kind() const noexcept override { return engine::sqlite; }
    void exec(std::string_view sql) override { translated([&] { db_->exec(sql); }); }
    query cached(std::string_view sql) override {
        auto it = cache_.find(sql);
        if (it == cache_.end())
            it = cache_.emplace(std::string(sql), std::make_unique<sqlite_stmt>(db_->handle(), sql)).first;
        return query(*it->second);
    }
    std::unique_ptr<stmt> prepare(std::string_view sql) override {
        return std::make_unique<sqlite_stmt>(db_->handle(), sql);
    }
    std::int64_t changes() const override { return db_->changes(); }
    std::string held_open() const override { return db_->held_open(); }
    void begin_read() override { exec("BEGIN"); }
    // IMMEDIATE takes the write lock up front, so a transaction never fails half-way with
    // SQLITE_BUSY on upgrade, and writers of every process commit one after another.
    void begin_write() override { exec("BEGIN IMMEDIATE"); }
    void commit() override { exec("COMMIT"); }
    void rollback() noexcept override {
        try {
            db_->exec("ROLLBACK");
        } catch (...) {
        }
    }
    sqlite3* handle() const noexcept { return db_->handle(); }

private:
    std::unique_ptr<sqlite::db> db_;
    std::map<std::string, std::unique_ptr<sqlite_stmt>, std::less<>> cache_;
};

}  // namespace

std::unique_ptr<db> open_sqlite(const std::string& path) { return std::make_unique<sqlite_db>(path); }

sqlite3* sqlite_handle(db& d) noexcept {
    auto* s = dynamic_cast<sqlite_db*>(&d);
    return s ? s->handle() : nullptr;
}

}  // namespace fieldsync::server::sql
