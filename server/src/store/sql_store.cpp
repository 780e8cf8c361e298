// Opening a store, on SQLite or PostgreSQL: migrations, the pool of read connections.

#include "store/sql_store.hpp"
#include "store/sql_sqlite.hpp"
#ifdef FIELDSYNC_WITH_POSTGRES
#include "store/sql_postgres.hpp"
#endif

#include <fieldsync/server/tuning.hpp>

#include <cstdio>
#include <cstdlib>
#include <future>

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;

// SQLite: schema steps in order; PRAGMA user_version holds how many have run.
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
    // 2: the organisation tree and scopes (ARCHITECTURE.md, "Scopes").
    R"sql(
    CREATE TABLE units(
        id TEXT PRIMARY KEY,
        parent TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        updated_ms INTEGER NOT NULL) WITHOUT ROWID;
    ALTER TABLE devices ADD COLUMN scope_epoch INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE heads ADD COLUMN path TEXT NOT NULL DEFAULT '';
    UPDATE heads SET path = '/' || unit_id || '/';
    CREATE INDEX heads_by_path ON heads(path, seq);
    ALTER TABLE conflicts ADD COLUMN path TEXT NOT NULL DEFAULT '';
    UPDATE conflicts SET path = '/' || unit_id || '/';
    CREATE INDEX conflicts_by_path ON conflicts(path, seq);
    -- Records that left a subtree: the devices of that subtree drop them.
    CREATE TABLE drops(
        seq INTEGER PRIMARY KEY,
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        path TEXT NOT NULL);
    CREATE INDEX drops_by_path ON drops(path, seq);
    -- The feed's seq counter: versions and moves both take seqs from it.
    INSERT OR REPLACE INTO meta(key, value) VALUES ('seq', (SELECT coalesce(max(seq), 0) FROM history));
    )sql",
    // 3: conflict review.
    R"sql(
    ALTER TABLE conflicts ADD COLUMN closed_by TEXT NOT NULL DEFAULT '';
    ALTER TABLE conflicts ADD COLUMN closed_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conflicts ADD COLUMN resolution TEXT;
    )sql",
    // 4: retention (ARCHITECTURE.md, "Retention and gc"): what each device acknowledged, and
    // the feed position of each remembered answer. Devices that synced before this step are
    // taken as active now with nothing safe to purge, so the first gc cannot strand them.
    R"sql(
    ALTER TABLE devices ADD COLUMN ack_epoch INTEGER;
    ALTER TABLE devices ADD COLUMN ack_seq INTEGER;
    ALTER TABLE devices ADD COLUMN next_seq INTEGER;
    ALTER TABLE devices ADD COLUMN safe_seq INTEGER;
    ALTER TABLE devices ADD COLUMN ack_ms INTEGER;
    UPDATE devices SET ack_epoch = scope_epoch, ack_seq = 0, next_seq = 0, safe_seq = 0,
        ack_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000 WHERE revoked_ms IS NULL;
    ALTER TABLE decided ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    UPDATE decided SET seq = coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'seq'), 0);
    INSERT OR IGNORE INTO meta(key, value) VALUES ('purge_horizon', '0');
    -- gc's walk over tombstones: only deleted heads, so it is small and costs live writes nothing.
    CREATE INDEX heads_tombstones ON heads(seq) WHERE deleted = 1;
    )sql",
    // 5: relay hub: devices' changes kept for the upstream until it answers them.
    R"sql(
    CREATE TABLE forwards(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        change_id TEXT NOT NULL UNIQUE,
        device_id TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        change TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        settled_ms INTEGER);
    CREATE INDEX forwards_unsettled ON forwards(seq) WHERE settled_ms IS NULL;
    )sql",
    // 6: the store's incarnation, replaced by every restore (SPEC.md, "After a restore").
    R"sql(
    INSERT OR IGNORE INTO meta(key, value) VALUES ('incarnation', lower(hex(randomblob(16))));
    )sql",
    // 7: enrolment codes (SPEC.md, "Enrolment"): only their hashes; used_token_hash is the
    // token the code was exchanged for, so a retried exchange is answered again.
    R"sql(
    CREATE TABLE enrolments(
        code_hash BLOB PRIMARY KEY,
        device_id TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        used_ms INTEGER,
        used_token_hash BLOB) WITHOUT ROWID;
    CREATE INDEX enrolments_by_device ON enrolments(device_id);
    )sql",
    // 8: attachments (SPEC.md, "Attachments"): the kept blobs' facts, and which records name
    // each blob (one row per record and blob, written with every version that names it).
    R"sql(
    CREATE TABLE blobs(
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        device_id TEXT NOT NULL,
        created_ms INTEGER NOT NULL) WITHOUT ROWID;
    CREATE INDEX blobs_by_device ON blobs(device_id, created_ms);
    CREATE TABLE blob_refs(
        sha256 TEXT NOT NULL,
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY(sha256, collection, id)) WITHOUT ROWID;
    )sql",
};

// PostgreSQL: the tables as SQLite's step 7 leaves them, made at once in an empty database;
// meta's `schema_version` says which step the tables are at, and k_postgres_steps take them
// on from 7 (a new store goes through them too, so each step runs in every test on PostgreSQL).
// Text compares byte-wise (COLLATE "C"), as in SQLite: a subtree is a range of paths.
constexpr std::int64_t k_postgres_version = 8;
constexpr const char* k_postgres_schema = R"sql(
    CREATE TABLE meta(key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE devices(
        id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT NOT NULL,
        unit_id TEXT COLLATE "C" NOT NULL,
        role TEXT NOT NULL,
        token_hash BYTEA NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL,
        revoked_ms BIGINT,
        scope_epoch BIGINT NOT NULL DEFAULT 0,
        ack_epoch BIGINT,
        ack_seq BIGINT,
        next_seq BIGINT,
        safe_seq BIGINT,
        ack_ms BIGINT);
    CREATE TABLE heads(
        collection TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        unit_id TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL,
        deleted BIGINT NOT NULL,
        data TEXT,
        seq BIGINT NOT NULL,
        hlc TEXT COLLATE "C" NOT NULL,
        writer TEXT COLLATE "C" NOT NULL,
        updated_ms BIGINT NOT NULL,
        path TEXT COLLATE "C" NOT NULL DEFAULT '',
        PRIMARY KEY(collection, id));
    CREATE UNIQUE INDEX heads_by_seq ON heads(seq);
    CREATE INDEX heads_by_path ON heads(path, seq);
    CREATE INDEX heads_tombstones ON heads(seq) WHERE deleted = 1;
    CREATE TABLE history(
        seq BIGINT PRIMARY KEY,
        collection TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL,
        deleted BIGINT NOT NULL,
        data TEXT,
        unit_id TEXT COLLATE "C" NOT NULL,
        device_id TEXT COLLATE "C" NOT NULL,
        change_id TEXT COLLATE "C" NOT NULL,
        hlc TEXT COLLATE "C" NOT NULL,
        server_ms BIGINT NOT NULL,
        how TEXT NOT NULL,
        lost TEXT);
    CREATE UNIQUE INDEX history_by_record ON history(collection, id, version);
    CREATE TABLE conflicts(
        seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        id TEXT COLLATE "C" NOT NULL UNIQUE,
        collection TEXT COLLATE "C" NOT NULL,
        record_id TEXT COLLATE "C" NOT NULL,
        unit_id TEXT COLLATE "C" NOT NULL,
        status TEXT COLLATE "C" NOT NULL,
        base_version BIGINT NOT NULL,
        head_version BIGINT NOT NULL,
        base TEXT,
        head TEXT,
        head_deleted BIGINT NOT NULL,
        incoming TEXT,
        incoming_deleted BIGINT NOT NULL,
        fields TEXT NOT NULL,
        device_id TEXT COLLATE "C" NOT NULL,
        change_id TEXT COLLATE "C" NOT NULL,
        hlc TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL,
        path TEXT COLLATE "C" NOT NULL DEFAULT '',
        closed_by TEXT COLLATE "C" NOT NULL DEFAULT '',
        closed_ms BIGINT NOT NULL DEFAULT 0,
        resolution TEXT);
    CREATE INDEX conflicts_by_record ON conflicts(collection, record_id);
    CREATE INDEX conflicts_by_status ON conflicts(status, seq);
    CREATE INDEX conflicts_by_path ON conflicts(path, seq);
    CREATE TABLE decided(
        device_id TEXT COLLATE "C" NOT NULL,
        change_id TEXT COLLATE "C" NOT NULL,
        batch_id TEXT NOT NULL,
        result TEXT NOT NULL,
        decided_ms BIGINT NOT NULL,
        seq BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY(device_id, change_id));
    CREATE TABLE units(
        id TEXT COLLATE "C" PRIMARY KEY,
        parent TEXT COLLATE "C" NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        path TEXT COLLATE "C" NOT NULL UNIQUE,
        updated_ms BIGINT NOT NULL);
    CREATE TABLE drops(
        seq BIGINT PRIMARY KEY,
        collection TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        path TEXT COLLATE "C" NOT NULL);
    CREATE INDEX drops_by_path ON drops(path, seq);
    CREATE TABLE forwards(
        seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        change_id TEXT COLLATE "C" NOT NULL UNIQUE,
        device_id TEXT COLLATE "C" NOT NULL,
        batch_id TEXT NOT NULL,
        change TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        settled_ms BIGINT);
    CREATE INDEX forwards_unsettled ON forwards(seq) WHERE settled_ms IS NULL;
    CREATE TABLE enrolments(
        code_hash BYTEA PRIMARY KEY,
        device_id TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        used_ms BIGINT,
        used_token_hash BYTEA);
    CREATE INDEX enrolments_by_device ON enrolments(device_id);
    INSERT INTO meta(key, value) VALUES ('seq', '0'), ('purge_horizon', '0'), ('schema_version', '7'),
        ('incarnation', md5(random()::text || clock_timestamp()::text));
)sql";

// The steps after the tables above (step 7), in order: steps[i] takes a store from 7 + i to
// 8 + i, and sets schema_version with it.
constexpr const char* k_postgres_steps[] = {
    // 8: attachments, as SQLite's step 8.
    R"sql(
    CREATE TABLE blobs(
        sha256 TEXT COLLATE "C" PRIMARY KEY,
        size BIGINT NOT NULL,
        content_type TEXT NOT NULL,
        device_id TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL);
    CREATE INDEX blobs_by_device ON blobs(device_id, created_ms);
    CREATE TABLE blob_refs(
        sha256 TEXT COLLATE "C" NOT NULL,
        collection TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY(sha256, collection, id));
    UPDATE meta SET value = '8' WHERE key = 'schema_version';
    )sql",
};
static_assert(7 + static_cast<std::int64_t>(std::size(k_postgres_steps)) == k_postgres_version);

sql_store::sql_store(const store_options& o, connector connect, listener listen)
    : connect_(std::move(connect)),
      schema_(o.schema ? *o.schema : proto::schema::default_schema()),
      wall_(o.wall),
      relay_(o.relay),
      clock_(o.wall),
      writer_conn_(connect_()),
      writer_db_(*writer_conn_),
      listen_(std::move(listen)),
      max_readers_(std::max(1, o.read_connections)) {
    migrate();
    keep_schema(o.schema);
    {
        auto s = writer_db_.cached("SELECT value FROM meta WHERE key = 'incarnation'");
        if (s.step()) incarnation_ = s.text(0);
    }
    recover_clock();
    writer_db_.checkpoint_in_background();
    writer_ = std::thread([this] { writer_loop(); });
    channel_ = sql::commit_channel(incarnation_);
    if (listen_) hearer_ = std::thread([this] { hear_commits(); });
}

void sql_store::keep_schema(const proto::schema* given) {
    if (given) {
        schema_ = *given;
        const auto text = given->document().dump();
        auto q = writer_db_.cached("SELECT value FROM meta WHERE key = 'schema'");
        if (q.step() && q.text(0) == text) return;
        q.reset();
        writer_db_.cached("INSERT INTO meta(key, value) VALUES ('schema', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").bind(1, text).run();
        return;
    }
    auto q = writer_db_.cached("SELECT value FROM meta WHERE key = 'schema'");
    if (!q.step()) return;  // none kept: the default
    const auto doc = proto::json::parse(q.text(0), nullptr, false);
    auto kept = proto::schema::from_json(doc);
    if (!kept)
        throw sql::error("the schema kept in the store is damaged: " + kept.err().message, false);
    schema_ = std::move(kept).value();
}

void sql_store::migrate() {
    if (writer_db_.kind() == sql::engine::postgres)
        migrate_postgres();
    else
        migrate_sqlite();
}

void sql_store::migrate_postgres() {
    auto& db = writer_db_;
    // Under the write lock, so servers starting together make the tables once.
    db.begin_write();
    try {
        std::int64_t current = 0;
        {
            auto t = db.cached("SELECT to_regclass('meta') IS NOT NULL");
            t.step();
            if (t.int64(0)) {
                t.reset();
                auto v = db.cached("SELECT value FROM meta WHERE key = 'schema_version'");
                current = v.step() ? std::stoll(v.text(0)) : 0;
            }
        }
        if (current > k_postgres_version)
            throw sql::error("the store's schema version " + std::to_string(current) +
                                 " is newer than this server knows (" + std::to_string(k_postgres_version) + ")",
                             false);
        if (current == 0) {
            db.exec(k_postgres_schema);
            current = 7;
        }
        for (auto step = current; step < k_postgres_version; ++step) db.exec(k_postgres_steps[step - 7]);
        db.commit();
    } catch (...) {
        db.rollback();
        throw;
    }
}

void sql_store::migrate_sqlite() {
    auto& db = writer_db_;
    auto v = db.cached("PRAGMA user_version");
    v.step();
    const auto current = v.int64(0);
    v.reset();
    constexpr auto steps = static_cast<std::int64_t>(std::size(k_migrations));
    if (current > steps)
        throw sql::error("the store's schema version " + std::to_string(current) +
                             " is newer than this server knows (" + std::to_string(steps) + ")",
                         false);
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

void sql_store::recover_clock() {
    auto s = writer_db_.cached("SELECT hlc FROM history ORDER BY seq DESC LIMIT ?");
    s.bind(1, tuning::hlc_recovery_rows);
    while (s.step())
        if (auto h = proto::hlc::parse(s.text(0))) clock_.observe(*h);
}

std::unique_ptr<sql::db> sql_store::acquire_reader() {
    std::unique_lock lock(readers_mutex_);
    readers_cv_.wait(lock, [&] { return !idle_readers_.empty() || open_readers_ < max_readers_; });
    ++open_readers_;
    if (!idle_readers_.empty()) {
        auto c = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return c;
    }
    lock.unlock();
    try {
        return connect_();
    } catch (...) {
        drop_reader();
        throw;
    }
}

void sql_store::release_reader(std::unique_ptr<sql::db> c) {
    if (const auto open = c->held_open(); !open.empty()) {
        // A read left something open: pooled, the connection would serve every later read
        // from the snapshot of that moment (acknowledged writes unseen, revoked tokens valid).
        std::fprintf(stderr, "fieldsync: a read connection came back to the pool holding %s\n", open.c_str());
#ifdef FIELDSYNC_STRICT_SQLITE
        std::abort();
#else
        c.reset();
        drop_reader();
        return;
#endif
    }
    std::lock_guard lock(readers_mutex_);
    --open_readers_;
    idle_readers_.push_back(std::move(c));
    readers_cv_.notify_one();
}

void sql_store::drop_reader() {
    std::lock_guard lock(readers_mutex_);
    --open_readers_;
    readers_cv_.notify_one();
}

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

std::shared_ptr<void> sql_store::watch_commits(std::function<void()> listener) {
    class subscription {
    public:
        subscription(std::shared_ptr<commit_listeners> to, std::uint64_t key) : to_(std::move(to)), key_(key) {}
        subscription(const subscription&) = delete;
        subscription& operator=(const subscription&) = delete;
        ~subscription() {
            std::lock_guard lock(to_->mutex);
            to_->all.erase(key_);
        }

    private:
        std::shared_ptr<commit_listeners> to_;
        std::uint64_t key_;
    };
    std::lock_guard lock(listeners_->mutex);
    const auto key = ++listeners_->next_key;
    listeners_->all.emplace(key, std::move(listener));
    return std::make_shared<subscription>(listeners_, key);
}

void sql_store::tell_commit() noexcept {
    std::lock_guard lock(listeners_->mutex);
    for (const auto& [key, listener] : listeners_->all) {
        // The commit stands whatever a listener does; a wait not told ends at its deadline.
        try {
            listener();
        } catch (...) {
        }
    }
}

proto::expected<std::vector<proto::change_result>> sync_store::push(const device& dev, proto::change_set cs) {
    std::promise<proto::expected<std::vector<proto::change_result>>> promise;
    auto answer = promise.get_future();
    submit(dev, std::move(cs), [&promise](auto result) { promise.set_value(std::move(result)); });
    return answer.get();
}

proto::expected<std::unique_ptr<store>> open_sqlite_store(const store_options& options) {
    try {
        const auto path = options.path;
        return std::unique_ptr<store>(
            std::make_unique<sql_store>(options, [path] { return sql::open_sqlite(path); }));
    } catch (const std::exception& e) {
        return storage_failure(e);
    }
}

proto::expected<std::unique_ptr<store>> open_postgres_store(const store_options& options) {
#ifdef FIELDSYNC_WITH_POSTGRES
    try {
        const auto conninfo = options.path;
        return std::unique_ptr<store>(
            std::make_unique<sql_store>(options, [conninfo] { return sql::open_postgres(conninfo); },
                                        [conninfo](const std::string& channel) {
                                            return sql::listen_postgres(conninfo, channel);
                                        }));
    } catch (const std::exception& e) {
        return storage_failure(e);
    }
#else
    (void)options;
    return error{errc::unavailable, "this server was built without PostgreSQL (libpq-dev was missing)"};
#endif
}

}  // namespace fieldsync::server
