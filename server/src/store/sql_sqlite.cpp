// The SQLite connection under the central store: sql::db over fieldsync::sqlite.

#include "store/sql_sqlite.hpp"

#include <fieldsync/server/tuning.hpp>
#include <fieldsync/sqlite/sqlite.hpp>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

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

// Runs PASSIVE checkpoints of one database on a connection and a thread of its own, when
// told the WAL has grown. A passive checkpoint takes no lock the writer or the readers wait
// for: it copies what no reader still needs, and the writer starts the WAL over once all of
// it is copied. Crash-safe as SQLite's own: the WAL stays valid until it is restarted.
class checkpointer {
public:
    explicit checkpointer(const std::string& path)
        : conn_(translated([&] { return std::make_unique<sqlite::db>(path, sqlite::db::mode::read_write_create); })),
          thread_([this] { loop(); }) {
        // A connection opens the WAL at its first read; until then a checkpoint does nothing.
        translated([&] { conn_->exec("SELECT count(*) FROM sqlite_master"); });
    }
    ~checkpointer() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    checkpointer(const checkpointer&) = delete;
    checkpointer& operator=(const checkpointer&) = delete;

    void wal_grew() {
        {
            std::lock_guard lock(mutex_);
            due_ = true;
        }
        cv_.notify_one();
    }

private:
    void loop() {
        std::unique_lock lock(mutex_);
        for (;;) {
            cv_.wait(lock, [&] { return stop_ || due_; });
            if (stop_) return;
            due_ = false;
            lock.unlock();
            // A failure (the file gone, I/O) leaves the work to the writer's own threshold.
            sqlite3_wal_checkpoint_v2(conn_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
            lock.lock();
        }
    }

    std::unique_ptr<sqlite::db> conn_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool due_ = false;
    bool stop_ = false;
    std::thread thread_;  // last: started once the rest is made
};

class sqlite_db final : public db {
public:
    explicit sqlite_db(const std::string& path) : path_(path), db_(translated([&] {
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
        if (checkpointer_) sqlite3_wal_hook(db_->handle(), nullptr, nullptr);
        checkpointer_.reset();
        cache_.clear();  // statements before their connection
    }

    void checkpoint_in_background() override {
        if (checkpointer_) return;
        checkpointer_ = std::make_unique<checkpointer>(path_);
        // Replaces SQLite's autocheckpoint, which is a WAL hook of its own.
        sqlite3_wal_hook(db_->handle(), &sqlite_db::wal_committed, this);
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
    // After each commit of the writer, outside its transaction, with the WAL's length.
    static int wal_committed(void* self, sqlite3* handle, const char* name, int pages) {
        if (pages >= tuning::wal_writer_checkpoint_pages)
            sqlite3_wal_checkpoint_v2(handle, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        else if (pages >= tuning::wal_background_checkpoint_pages)
            static_cast<sqlite_db*>(self)->checkpointer_->wal_grew();
        return SQLITE_OK;
    }

    const std::string path_;
    std::unique_ptr<sqlite::db> db_;
    std::unique_ptr<checkpointer> checkpointer_;
    std::map<std::string, std::unique_ptr<sqlite_stmt>, std::less<>> cache_;
};

}  // namespace

std::unique_ptr<db> open_sqlite(const std::string& path) { return std::make_unique<sqlite_db>(path); }

sqlite3* sqlite_handle(db& d) noexcept {
    auto* s = dynamic_cast<sqlite_db*>(&d);
    return s ? s->handle() : nullptr;
}

}  // namespace fieldsync::server::sql
