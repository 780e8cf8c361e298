// The SQLite central store and the sync engine's write path (store.hpp says what it promises;
// ARCHITECTURE.md, "Central store", shows the tables).

#include <fieldsync/protocol/merge.hpp>
#include <fieldsync/protocol/tuning.hpp>
#include <fieldsync/server/store.hpp>

#include "store/sqlite.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

namespace fieldsync::server {
namespace {

namespace tuning {
/// How long a connection waits for a lock held by another connection (the admin tool, a
/// backup) before failing with SQLITE_BUSY. Long enough to ride out another process's
/// short transaction, short enough that a stuck lock surfaces as a 503 the client retries.
constexpr int busy_timeout_ms = 5000;
/// Change-sets committed together in one transaction at most. Group commit shares one fsync
/// among waiting requests; the cap keeps one commit (and the latency of the first request in
/// it) bounded when hundreds of devices push at once.
constexpr std::size_t max_group_jobs = 64;
/// Changes in one group at most (a second bound, for groups of large change-sets).
constexpr std::size_t max_group_changes = 8000;
/// History rows read at open to restore the clock past every stamp already stored.
constexpr int hlc_recovery_rows = 1000;
}  // namespace tuning

using proto::errc;
using proto::error;

// Schema steps in order; PRAGMA user_version holds how many have run.
constexpr const char* k_migrations[] = {
    R"sql(
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE devices(
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        unit_id TEXT NOT NULL,
        role TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        revoked_ms INTEGER);
    -- One row per record: its latest version. seq is the feed position of that version.
    CREATE TABLE heads(
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        unit_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        data TEXT,
        seq INTEGER NOT NULL,
        hlc TEXT NOT NULL,
        writer TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY(collection, id)) WITHOUT ROWID;
    CREATE UNIQUE INDEX heads_by_seq ON heads(seq);
    -- Every accepted version; seq is global and strictly increasing.
    CREATE TABLE history(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        data TEXT,
        unit_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        change_id TEXT NOT NULL,
        hlc TEXT NOT NULL,
        server_ms INTEGER NOT NULL,
        how TEXT NOT NULL,
        lost TEXT);
    CREATE UNIQUE INDEX history_by_record ON history(collection, id, version);
    CREATE TABLE conflicts(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        collection TEXT NOT NULL,
        record_id TEXT NOT NULL,
        unit_id TEXT NOT NULL,
        status TEXT NOT NULL,
        base_version INTEGER NOT NULL,
        head_version INTEGER NOT NULL,
        base TEXT,
        head TEXT,
        head_deleted INTEGER NOT NULL,
        incoming TEXT,
        incoming_deleted INTEGER NOT NULL,
        fields TEXT NOT NULL,
        device_id TEXT NOT NULL,
        change_id TEXT NOT NULL,
        hlc TEXT NOT NULL,
        created_ms INTEGER NOT NULL);
    CREATE INDEX conflicts_by_record ON conflicts(collection, record_id);
    CREATE INDEX conflicts_by_status ON conflicts(status, seq);
    -- Every change a device sent that the store decided, with its answer: a retry gets it again.
    CREATE TABLE decided(
        device_id TEXT NOT NULL,
        change_id TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        result TEXT NOT NULL,
        decided_ms INTEGER NOT NULL,
        PRIMARY KEY(device_id, change_id)) WITHOUT ROWID;
    )sql",
};

std::string hex(const unsigned char* p, std::size_t n) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out += k_digits[p[i] >> 4];
        out += k_digits[p[i] & 0xF];
    }
    return out;
}

std::string random_hex(std::size_t bytes) {
    unsigned char buf[64];
    if (bytes > sizeof buf || RAND_bytes(buf, static_cast<int>(bytes)) != 1)
        throw std::runtime_error("no randomness from the system");
    return hex(buf, bytes);
}

std::string random_uuid() {
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("no randomness from the system");
    b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
    const std::string h = hex(b, sizeof b);
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::string sha256(std::string_view text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    return std::string(reinterpret_cast<const char*>(md), len);
}

json parse_stored(const std::string& text) {
    if (text.empty()) return nullptr;
    return json::parse(text);  // written by us; a failure is a damaged store (caught as storage_error)
}

std::string dump(const json& j) { return j.is_null() ? std::string() : j.dump(); }

error storage_failure(const std::exception& e) {
    if (const auto* s = dynamic_cast<const sqlite::sqlite_error*>(&e); s && (s->code() & 0xFF) == SQLITE_BUSY)
        return error{errc::unavailable, std::string("the store is busy: ") + e.what()};
    return error{errc::storage_error, std::string("the store failed: ") + e.what()};
}

device read_device(sqlite::stmt& s) {
    device d;
    d.id = s.text(0);
    d.name = s.text(1);
    d.unit_id = s.text(2);
    d.role = parse_role(s.text(3)).value_or(device_role::field);
    d.created_ms = s.int64(4);
    if (!s.is_null(5)) d.revoked_ms = s.int64(5);
    return d;
}

class sqlite_store final : public store {
public:
    explicit sqlite_store(const store_options& o)
        : path_(o.path),
          schema_(o.schema ? *o.schema : proto::schema::default_schema()),
          wall_(o.wall),
          clock_(o.wall),
          writer_db_(path_, sqlite::db::mode::read_write_create),
          max_readers_(std::max(1, o.read_connections)) {
        configure(writer_db_);
        migrate();
        recover_clock();
        writer_ = std::thread([this] { writer_loop(); });
    }

    ~sqlite_store() override { close(); }

    void submit(const device& dev, proto::change_set cs, push_done done) override {
        {
            std::lock_guard lock(queue_mutex_);
            if (!closing_) {
                queue_.push_back(job{dev, std::move(cs), std::move(done)});
                queue_cv_.notify_one();
                return;
            }
        }
        done(error{errc::unavailable, "the server is shutting down"});
    }

    void close() override {
        {
            std::lock_guard lock(queue_mutex_);
            if (closing_) return;
            closing_ = true;
            queue_cv_.notify_one();
        }
        if (writer_.joinable()) writer_.join();
    }

    const proto::schema& schema() const override { return schema_; }
    proto::hlc now_hlc() override { return clock_.now(); }

    proto::expected<pull_page> pull(std::int64_t after_seq, std::int64_t limit) override {
        return read([&](sqlite::db& db) {
            pull_page page;
            page.last_seq = after_seq;
            auto& s = db.cached(
                "SELECT collection, id, unit_id, version, deleted, data, seq FROM heads "
                "WHERE seq > ? ORDER BY seq LIMIT ?");
            s.bind(1, after_seq).bind(2, limit + 1);
            while (s.step()) {
                if (static_cast<std::int64_t>(page.changes.size()) == limit) {
                    page.more = true;
                    break;
                }
                proto::pulled_change p;
                p.collection = s.text(0);
                p.id = s.text(1);
                p.unit_id = s.text(2);
                p.version = s.int64(3);
                p.deleted = s.int64(4) != 0;
                p.data = parse_stored(s.text(5));
                page.last_seq = s.int64(6);
                page.changes.push_back(std::move(p));
            }
            s.reset();
            return page;
        });
    }

    proto::expected<std::optional<record_view>> get(const std::string& collection, const std::string& id) override {
        return read([&](sqlite::db& db) -> std::optional<record_view> {
            auto& s = db.cached(
                "SELECT unit_id, version, deleted, data, seq, hlc, updated_ms FROM heads "
                "WHERE collection = ? AND id = ?");
            s.bind(1, collection).bind(2, id);
            if (!s.step()) return std::nullopt;
            record_view r;
            r.collection = collection;
            r.id = id;
            r.unit_id = s.text(0);
            r.version = s.int64(1);
            r.deleted = s.int64(2) != 0;
            r.data = parse_stored(s.text(3));
            r.seq = s.int64(4);
            r.hlc = s.text(5);
            r.updated_ms = s.int64(6);
            s.reset();
            return r;
        });
    }

    proto::expected<std::vector<history_entry>> history(const std::string& collection,
                                                        const std::string& id) override {
        return read([&](sqlite::db& db) {
            std::vector<history_entry> out;
            auto& s = db.cached(
                "SELECT version, seq, deleted, data, unit_id, device_id, change_id, hlc, server_ms, how, lost "
                "FROM history WHERE collection = ? AND id = ? ORDER BY version");
            s.bind(1, collection).bind(2, id);
            while (s.step()) {
                history_entry h;
                h.version = s.int64(0);
                h.seq = s.int64(1);
                h.deleted = s.int64(2) != 0;
                h.data = parse_stored(s.text(3));
                h.unit_id = s.text(4);
                h.device_id = s.text(5);
                h.change_id = s.text(6);
                h.hlc = s.text(7);
                h.server_ms = s.int64(8);
                h.how = s.text(9);
                h.lost = s.is_null(10) ? json::object() : parse_stored(s.text(10));
                out.push_back(std::move(h));
            }
            return out;
        });
    }

    proto::expected<std::vector<conflict_view>> conflicts(const std::string& status, std::int64_t limit,
                                                          std::int64_t offset) override {
        return read([&](sqlite::db& db) {
            std::vector<conflict_view> out;
            auto& s = db.cached(
                "SELECT id, collection, record_id, unit_id, status, base_version, head_version, base, head, "
                "head_deleted, incoming, incoming_deleted, fields, device_id, change_id, hlc, created_ms "
                "FROM conflicts WHERE (?1 = '' OR status = ?1) ORDER BY seq DESC LIMIT ?2 OFFSET ?3");
            s.bind(1, status).bind(2, limit).bind(3, offset);
            while (s.step()) out.push_back(read_conflict(s));
            return out;
        });
    }

    proto::expected<std::optional<conflict_view>> conflict(const std::string& id) override {
        return read([&](sqlite::db& db) -> std::optional<conflict_view> {
            auto& s = db.cached(
                "SELECT id, collection, record_id, unit_id, status, base_version, head_version, base, head, "
                "head_deleted, incoming, incoming_deleted, fields, device_id, change_id, hlc, created_ms "
                "FROM conflicts WHERE id = ?");
            s.bind(1, id);
            if (!s.step()) return std::nullopt;
            auto c = read_conflict(s);
            s.reset();
            return c;
        });
    }

    proto::expected<std::pair<device, std::string>> add_device(const std::string& name, const std::string& unit_id,
                                                               device_role role) override {
        // Devices are added from the admin tool while the server runs: a short transaction of
        // its own on a fresh connection, not through the writer queue of this process.
        try {
            device d;
            d.id = random_uuid();
            d.name = name;
            d.unit_id = unit_id;
            d.role = role;
            d.created_ms = wall_();
            // The token names no device; only its SHA-256 is stored, so a copy of the store
            // does not let anyone sign in.
            std::string token = "fs1_" + random_hex(32);
            const std::string hash = sha256(token);
            sqlite::db db(path_, sqlite::db::mode::read_write_create);
            configure(db);
            auto& s = db.cached(
                "INSERT INTO devices(id, name, unit_id, role, token_hash, created_ms) VALUES (?, ?, ?, ?, ?, ?)");
            s.bind(1, d.id).bind(2, d.name).bind(3, d.unit_id).bind(4, role_name(role));
            s.bind_blob(5, hash.data(), hash.size()).bind(6, d.created_ms);
            s.run();
            return std::pair{std::move(d), std::move(token)};
        } catch (const std::exception& e) {
            return storage_failure(e);
        }
    }

    proto::expected<std::optional<device>> authenticate(const std::string& token) override {
        const std::string hash = sha256(token);
        return read([&](sqlite::db& db) -> std::optional<device> {
            auto& s = db.cached(
                "SELECT id, name, unit_id, role, created_ms, revoked_ms FROM devices "
                "WHERE token_hash = ? AND revoked_ms IS NULL");
            s.bind_blob(1, hash.data(), hash.size());
            if (!s.step()) return std::nullopt;
            auto d = read_device(s);
            s.reset();
            return d;
        });
    }

    proto::expected<std::vector<device>> devices() override {
        return read([&](sqlite::db& db) {
            std::vector<device> out;
            auto& s = db.cached("SELECT id, name, unit_id, role, created_ms, revoked_ms FROM devices ORDER BY created_ms");
            while (s.step()) out.push_back(read_device(s));
            return out;
        });
    }

private:
    struct job {
        device dev;
        proto::change_set cs;
        push_done done;
    };

    static void configure(sqlite::db& db) {
        sqlite3_busy_timeout(db.handle(), tuning::busy_timeout_ms);
        // WAL lets readers see the last commit while the writer works; synchronous=FULL syncs
        // the WAL at every commit, so an answered change-set survives power loss, not only a
        // crash of the process.
        db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    }

    void migrate() {
        auto& db = writer_db_;
        auto& v = db.cached("PRAGMA user_version");
        v.step();
        const auto current = v.int64(0);
        v.reset();
        constexpr auto steps = static_cast<std::int64_t>(std::size(k_migrations));
        if (current > steps)
            throw sqlite::sqlite_error(SQLITE_ERROR, "the store's schema version " + std::to_string(current) +
                                                         " is newer than this server knows (" +
                                                         std::to_string(steps) + ")");
        for (auto step = current; step < steps; ++step) {
            db.exec("BEGIN IMMEDIATE");
            try {
                db.exec(k_migrations[step]);
                db.exec("PRAGMA user_version = " + std::to_string(step + 1));
                db.exec("COMMIT");
            } catch (...) {
                db.exec("ROLLBACK");
                throw;
            }
        }
    }

    void recover_clock() {
        auto& s = writer_db_.cached("SELECT hlc FROM history ORDER BY seq DESC LIMIT ?");
        s.bind(1, tuning::hlc_recovery_rows);
        while (s.step())
            if (auto h = proto::hlc::parse(s.text(0))) clock_.observe(*h);
        s.reset();
    }

    // Runs `fn` on a read connection from the pool; storage exceptions become errors.
    template <class Fn>
    auto read(Fn&& fn) -> proto::expected<decltype(fn(std::declval<sqlite::db&>()))> {
        std::unique_ptr<sqlite::db> conn;
        try {
            conn = acquire_reader();
            auto result = fn(*conn);
            release_reader(std::move(conn));
            return result;
        } catch (const std::exception& e) {
            // A connection that failed mid-statement is dropped rather than reused.
            std::lock_guard lock(readers_mutex_);
            --open_readers_;
            readers_cv_.notify_one();
            return storage_failure(e);
        }
    }

    std::unique_ptr<sqlite::db> acquire_reader() {
        std::unique_lock lock(readers_mutex_);
        readers_cv_.wait(lock, [&] { return !idle_readers_.empty() || open_readers_ < max_readers_; });
        ++open_readers_;
        if (!idle_readers_.empty()) {
            auto c = std::move(idle_readers_.back());
            idle_readers_.pop_back();
            return c;
        }
        lock.unlock();
        auto c = std::make_unique<sqlite::db>(path_, sqlite::db::mode::read_write_create);
        sqlite3_busy_timeout(c->handle(), tuning::busy_timeout_ms);
        return c;
    }

    void release_reader(std::unique_ptr<sqlite::db> c) {
        std::lock_guard lock(readers_mutex_);
        --open_readers_;
        idle_readers_.push_back(std::move(c));
        readers_cv_.notify_one();
    }

    static conflict_view read_conflict(sqlite::stmt& s) {
        conflict_view c;
        c.id = s.text(0);
        c.collection = s.text(1);
        c.record_id = s.text(2);
        c.unit_id = s.text(3);
        c.status = s.text(4);
        c.base_version = s.int64(5);
        c.head_version = s.int64(6);
        c.base = parse_stored(s.text(7));
        c.head = parse_stored(s.text(8));
        c.head_deleted = s.int64(9) != 0;
        c.incoming = parse_stored(s.text(10));
        c.incoming_deleted = s.int64(11) != 0;
        c.fields = json::parse(s.text(12)).get<std::vector<std::string>>();
        c.device_id = s.text(13);
        c.change_id = s.text(14);
        c.hlc = s.text(15);
        c.created_ms = s.int64(16);
        return c;
    }

    // ---- the writer ------------------------------------------------------------------

    void writer_loop() {
        for (;;) {
            std::vector<job> group;
            {
                std::unique_lock lock(queue_mutex_);
                queue_cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
                if (queue_.empty()) return;  // closing, and everything queued is done
                std::size_t changes = 0;
                while (!queue_.empty() && group.size() < tuning::max_group_jobs &&
                       (group.empty() || changes + queue_.front().cs.changes.size() <= tuning::max_group_changes)) {
                    changes += queue_.front().cs.changes.size();
                    group.push_back(std::move(queue_.front()));
                    queue_.pop_front();
                }
            }
            commit_group(group);
        }
    }

    // One transaction for the whole group; a savepoint per change-set, so a change-set that
    // fails is undone alone. Answers go out only after COMMIT has returned.
    void commit_group(std::vector<job>& group) {
        std::vector<proto::expected<std::vector<proto::change_result>>> answers;
        answers.reserve(group.size());
        auto& db = writer_db_;
        try {
            db.exec("BEGIN IMMEDIATE");
        } catch (const std::exception& e) {
            for (auto& j : group) j.done(storage_failure(e));
            return;
        }
        for (auto& j : group) {
            try {
                db.exec("SAVEPOINT change_set");
                auto results = apply(j.dev, j.cs);
                db.exec("RELEASE change_set");
                answers.emplace_back(std::move(results));
            } catch (const std::exception& e) {
                try {
                    db.exec("ROLLBACK TO change_set; RELEASE change_set");
                } catch (...) {
                }
                answers.emplace_back(storage_failure(e));
            }
        }
        try {
            db.exec("COMMIT");
        } catch (const std::exception& e) {
            try {
                db.exec("ROLLBACK");
            } catch (...) {
            }
            for (auto& j : group) j.done(storage_failure(e));
            return;
        }
        for (std::size_t i = 0; i < group.size(); ++i) group[i].done(std::move(answers[i]));
    }

    std::vector<proto::change_result> apply(const device& dev, const proto::change_set& cs) {
        std::vector<proto::change_result> out;
        out.reserve(cs.changes.size());
        const auto now_ms = wall_();
        for (const auto& entry : cs.changes) {
            if (auto earlier = decided(dev.id, entry.c.change_id)) {
                out.push_back(std::move(*earlier));
                continue;
            }
            if (entry.rejected) {
                // Refused by the decoder: deterministic, so not recorded; a retry is refused alike.
                proto::change_result r;
                r.change_id = entry.c.change_id;
                r.status = proto::change_status::rejected;
                r.err = entry.rejected;
                out.push_back(std::move(r));
                continue;
            }
            auto r = decide_one(dev, entry.c, now_ms);
            auto& s = writer_db_.cached(
                "INSERT INTO decided(device_id, change_id, batch_id, result, decided_ms) VALUES (?, ?, ?, ?, ?)");
            s.bind(1, dev.id).bind(2, r.change_id).bind(3, cs.batch_id).bind(4, proto::encode(r).dump()).bind(5, now_ms);
            s.run();
            out.push_back(std::move(r));
        }
        return out;
    }

    std::optional<proto::change_result> decided(const std::string& device_id, const std::string& change_id) {
        auto& s = writer_db_.cached("SELECT result FROM decided WHERE device_id = ? AND change_id = ?");
        s.bind(1, device_id).bind(2, change_id);
        if (!s.step()) return std::nullopt;
        auto r = proto::decode_change_result(json::parse(s.text(0)));
        s.reset();
        if (!r) throw std::runtime_error("a stored answer is damaged: " + r.err().message);
        return std::move(r).value();
    }

    proto::change_result decide_one(const device& dev, const proto::change& c, std::int64_t now_ms) {
        proto::change_result r;
        r.change_id = c.change_id;
        auto rejected = [&](errc code, std::string message, std::int64_t version) {
            r.status = proto::change_status::rejected;
            r.version = version;
            r.err = error{code, std::move(message)};
            return r;
        };

        const auto* coll = schema_.find(c.collection);
        if (!coll) return rejected(errc::unknown_collection, "unknown collection '" + c.collection + "'", 0);

        // The head, and the base version when the change was edited from an older one.
        std::optional<proto::head_state> head;
        {
            auto& s = writer_db_.cached(
                "SELECT version, deleted, data, hlc, writer FROM heads WHERE collection = ? AND id = ?");
            s.bind(1, c.collection).bind(2, c.id);
            if (s.step()) {
                proto::head_state h;
                h.version = s.int64(0);
                h.state.deleted = s.int64(1) != 0;
                h.state.data = parse_stored(s.text(2));
                h.stamp = proto::hlc::parse(s.text(3)).value_or(proto::hlc{});
                h.writer = s.text(4);
                head = std::move(h);
            }
            s.reset();
        }
        std::optional<proto::version_state> base;
        if (head && c.base_version > 0 && c.base_version < head->version) {
            auto& s = writer_db_.cached(
                "SELECT deleted, data FROM history WHERE collection = ? AND id = ? AND version = ?");
            s.bind(1, c.collection).bind(2, c.id).bind(3, c.base_version);
            if (s.step()) base = proto::version_state{s.int64(0) != 0, parse_stored(s.text(1))};
            s.reset();
        }

        // A client clock too far ahead would win every lww collision until real time caught
        // up: such a change, like one without a clock, gets the server's.
        proto::hlc stamp;
        if (c.stamp && c.stamp->wall_ms <= clock_.wall_ms() + proto::tuning::max_hlc_ahead_ms) {
            stamp = *c.stamp;
            clock_.observe(stamp);
        } else {
            stamp = clock_.now();
        }

        proto::incoming_change in;
        in.op = c.op;
        in.base_version = c.base_version;
        in.data = &c.data;
        in.stamp = stamp;
        in.writer = dev.id;
        auto o = proto::decide(head, base, in, coll->policy);
        const std::int64_t head_version = head ? head->version : 0;

        if (o.kind == proto::merge_kind::rejected) return rejected(o.err->code, o.err->message, head_version);
        if (!o.incoming.deleted) {
            if (auto bad = schema_.validate(*coll, o.incoming.data))
                return rejected(bad->code, bad->message, head_version);
        }

        switch (o.kind) {
            case proto::merge_kind::fast_forward:
            case proto::merge_kind::merged: {
                const auto version = head_version + 1;
                const bool fast = o.kind == proto::merge_kind::fast_forward;
                auto& h = writer_db_.cached(
                    "INSERT INTO history(collection, id, version, deleted, data, unit_id, device_id, change_id, "
                    "hlc, server_ms, how, lost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
                h.bind(1, c.collection).bind(2, c.id).bind(3, version).bind(4, o.result.deleted ? 1 : 0);
                if (o.result.deleted)
                    h.bind_null(5);
                else
                    h.bind(5, o.result.data.dump());
                h.bind(6, c.unit_id).bind(7, dev.id).bind(8, c.change_id).bind(9, stamp.to_string());
                h.bind(10, now_ms).bind(11, fast ? "applied" : "merged");
                if (o.lost.empty())
                    h.bind_null(12);
                else
                    h.bind(12, o.lost.dump());
                h.run();
                const auto seq = writer_db_.last_insert_rowid();
                auto& u = writer_db_.cached(
                    "INSERT INTO heads(collection, id, unit_id, version, deleted, data, seq, hlc, writer, updated_ms) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                    "ON CONFLICT(collection, id) DO UPDATE SET unit_id = ?3, version = ?4, deleted = ?5, "
                    "data = ?6, seq = ?7, hlc = ?8, writer = ?9, updated_ms = ?10");
                u.bind(1, c.collection).bind(2, c.id).bind(3, c.unit_id).bind(4, version);
                u.bind(5, o.result.deleted ? 1 : 0);
                if (o.result.deleted)
                    u.bind_null(6);
                else
                    u.bind(6, o.result.data.dump());
                u.bind(7, seq).bind(8, stamp.to_string()).bind(9, dev.id).bind(10, now_ms);
                u.run();
                r.status = fast ? proto::change_status::applied : proto::change_status::merged;
                r.version = version;
                return r;
            }
            case proto::merge_kind::unchanged:
                r.status = proto::change_status::merged;
                r.version = head_version;
                return r;
            case proto::merge_kind::conflict: {
                const std::string id = random_uuid();
                json base_data = nullptr;
                if (c.base_version == head_version)
                    base_data = head->state.data;
                else if (base && !base->deleted)
                    base_data = base->data;
                auto& s = writer_db_.cached(
                    "INSERT INTO conflicts(id, collection, record_id, unit_id, status, base_version, head_version, "
                    "base, head, head_deleted, incoming, incoming_deleted, fields, device_id, change_id, hlc, "
                    "created_ms) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
                s.bind(1, id).bind(2, c.collection).bind(3, c.id).bind(4, c.unit_id).bind(5, c.base_version);
                s.bind(6, head_version).bind(7, dump(base_data));
                s.bind(8, dump(head->state.data)).bind(9, head->state.deleted ? 1 : 0);
                s.bind(10, dump(o.incoming.data)).bind(11, o.incoming.deleted ? 1 : 0);
                s.bind(12, json(o.collisions).dump()).bind(13, dev.id).bind(14, c.change_id);
                s.bind(15, stamp.to_string()).bind(16, now_ms);
                s.run();
                r.status = proto::change_status::conflict;
                r.version = head_version;
                r.conflict_id = id;
                return r;
            }
            case proto::merge_kind::rejected: break;
        }
        return rejected(errc::internal, "unreachable merge outcome", head_version);
    }

    const std::string path_;
    const proto::schema schema_;
    const proto::hlc_clock::wall_fn wall_;
    proto::hlc_clock clock_;

    sqlite::db writer_db_;  // used by the constructor, then by the writer thread only
    std::thread writer_;
    std::mutex queue_mutex_;
    std::condition_variable queue_cv_;
    std::deque<job> queue_;
    bool closing_ = false;

    std::mutex readers_mutex_;
    std::condition_variable readers_cv_;
    std::vector<std::unique_ptr<sqlite::db>> idle_readers_;
    int open_readers_ = 0;  // connections handed out right now
    const int max_readers_;
};

}  // namespace

std::string_view role_name(device_role r) noexcept {
    switch (r) {
        case device_role::field: return "field";
        case device_role::reviewer: return "reviewer";
        case device_role::admin: return "admin";
    }
    return "field";
}

std::optional<device_role> parse_role(std::string_view s) noexcept {
    if (s == "field") return device_role::field;
    if (s == "reviewer") return device_role::reviewer;
    if (s == "admin") return device_role::admin;
    return std::nullopt;
}

proto::expected<std::vector<proto::change_result>> store::push(const device& dev, proto::change_set cs) {
    std::promise<proto::expected<std::vector<proto::change_result>>> promise;
    auto answer = promise.get_future();
    submit(dev, std::move(cs), [&promise](auto result) { promise.set_value(std::move(result)); });
    return answer.get();
}

proto::expected<std::unique_ptr<store>> open_sqlite_store(const store_options& options) {
    try {
        return std::unique_ptr<store>(std::make_unique<sqlite_store>(options));
    } catch (const std::exception& e) {
        return storage_failure(e);
    }
}

}  // namespace fieldsync::server
