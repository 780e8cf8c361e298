#include "local_store.hpp"

#include <fieldsync/protocol/nfd.hpp>

#include <fieldsync/client/tuning.hpp>

#include <algorithm>
#include <array>

namespace fieldsync::client::detail {

nlohmann::json parse_stored(const std::optional<std::string>& text) {
    if (!text) return nullptr;
    return nlohmann::json::parse(*text);
}

std::optional<std::string> dump_or_null(const nlohmann::json& j) {
    if (j.is_null()) return std::nullopt;
    return j.dump();
}
namespace {

// Ordered migrations: step i brings user_version from i to i+1. Released steps never change;
// a new schema is a new step appended here.
constexpr std::array<const char*, 4> k_migrations{
    R"sql(
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE records (
    collection     TEXT NOT NULL,
    id             TEXT NOT NULL,
    unit_id        TEXT NOT NULL,
    server_version INTEGER NOT NULL DEFAULT 0,
    server_deleted INTEGER NOT NULL DEFAULT 0,
    server_data    TEXT,
    local_deleted  INTEGER NOT NULL DEFAULT 0,
    local_data     TEXT,
    state          INTEGER NOT NULL DEFAULT 0,
    state_version  INTEGER NOT NULL DEFAULT 0,
    reason_code    TEXT,
    reason_message TEXT,
    conflict_id    TEXT,
    held_data      TEXT,
    PRIMARY KEY (collection, id)
);
CREATE INDEX records_by_unit ON records (collection, unit_id);
CREATE INDEX records_by_state ON records (state) WHERE state <> 0;
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id    TEXT NOT NULL UNIQUE,
    collection   TEXT NOT NULL,
    id           TEXT NOT NULL,
    unit_id      TEXT NOT NULL,
    deleted      INTEGER NOT NULL,
    data         TEXT,
    base_version INTEGER NOT NULL,
    base_data    TEXT,
    hlc          TEXT NOT NULL,
    batch_id     TEXT,
    wire         TEXT
);
CREATE INDEX outbox_by_record ON outbox (collection, id);
CREATE INDEX outbox_by_batch ON outbox (batch_id, seq);
)sql",
    // 2: answered change-sets kept for resending after a server restore.
    R"sql(
CREATE TABLE acked (
    seq          INTEGER PRIMARY KEY,
    change_id    TEXT NOT NULL UNIQUE,
    collection   TEXT NOT NULL,
    id           TEXT NOT NULL,
    unit_id      TEXT NOT NULL,
    deleted      INTEGER NOT NULL,
    data         TEXT,
    base_version INTEGER NOT NULL,
    base_data    TEXT,
    hlc          TEXT NOT NULL,
    batch_id     TEXT NOT NULL,
    wire         TEXT NOT NULL,
    acked_ms     INTEGER NOT NULL
);
CREATE INDEX acked_by_time ON acked (acked_ms);
)sql",
    // 3: what the district decided about a change it held for review, kept with the record
    // until the device's next edit of it or a discard (SPEC.md, "Decisions reaching the device").
    R"sql(
ALTER TABLE records ADD COLUMN resolution TEXT;
CREATE INDEX records_by_conflict ON records (conflict_id) WHERE conflict_id IS NOT NULL;
)sql",
    // 4: attachments (SPEC.md, "Attachments"). The upload queue is apart from the outbox, so
    // a sync never waits for files; blob_files lists the complete blobs of the folder beside
    // the replica, with their last use, for the download cache's least-recently-used eviction.
    R"sql(
CREATE TABLE uploads (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256        TEXT NOT NULL UNIQUE,
    size          INTEGER NOT NULL,
    content_type  TEXT NOT NULL,
    name          TEXT NOT NULL,
    state         INTEGER NOT NULL DEFAULT 0,
    sent          INTEGER NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT
);
CREATE TABLE blob_files (
    sha256  TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    used_ms INTEGER NOT NULL
);
)sql",
};

// WAL: readers (the app's UI thread, the CLI) never block the writer and vice versa, and a
// commit appends to the log instead of rewriting pages. synchronous=FULL: with WAL, NORMAL
// may lose the last commits on power loss, and the replica promises that an edit is durable
// when put() returns.
constexpr const char* k_journal_mode = "PRAGMA journal_mode=WAL";
constexpr const char* k_synchronous = "PRAGMA synchronous=FULL";

record_row read_record(sqlite::stmt& s) {
    record_row r;
    r.collection = s.text(0);
    r.id = s.text(1);
    r.unit_id = s.text(2);
    r.server_version = s.int64(3);
    r.server_deleted = s.int64(4) != 0;
    r.server_data = s.opt_text(5);
    r.local_deleted = s.int64(6) != 0;
    r.local_data = s.opt_text(7);
    r.state = static_cast<int>(s.int64(8));
    r.state_version = s.int64(9);
    r.reason_code = s.opt_text(10);
    r.reason_message = s.opt_text(11);
    r.conflict_id = s.opt_text(12);
    r.held_data = s.opt_text(13);
    r.resolution = s.opt_text(14);
    return r;
}

constexpr const char* k_record_columns =
    "collection, id, unit_id, server_version, server_deleted, server_data, local_deleted, local_data, state, "
    "state_version, reason_code, reason_message, conflict_id, held_data, resolution";

outbox_row read_outbox(sqlite::stmt& s) {
    outbox_row r;
    r.seq = s.int64(0);
    r.change_id = s.text(1);
    r.collection = s.text(2);
    r.id = s.text(3);
    r.unit_id = s.text(4);
    r.deleted = s.int64(5) != 0;
    r.data = s.opt_text(6);
    r.base_version = s.int64(7);
    r.base_data = s.opt_text(8);
    r.hlc = s.text(9);
    r.batch_id = s.opt_text(10);
    r.wire = s.opt_text(11);
    return r;
}

constexpr const char* k_outbox_columns =
    "seq, change_id, collection, id, unit_id, deleted, data, base_version, base_data, hlc, batch_id, wire";

// fieldsync_nfd(x): the NFD form of text, other values unchanged. Field queries compare
// through it, so a name typed precomposed finds the same name stored decomposed.
void sql_nfd(sqlite3_context* ctx, int, sqlite3_value** argv) {
    if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
        sqlite3_result_value(ctx, argv[0]);
        return;
    }
    const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
    try {
        const auto nfd = fieldsync::protocol::to_nfd(std::string_view(p, static_cast<std::size_t>(sqlite3_value_bytes(argv[0]))));
        sqlite3_result_text(ctx, nfd.data(), static_cast<int>(nfd.size()), SQLITE_TRANSIENT);
    } catch (const std::bad_alloc&) {
        sqlite3_result_error_nomem(ctx);
    }
}

}  // namespace

local_store::local_store(const std::string& path) : db_(path) {
    if (sqlite3_create_function_v2(db_.handle(), "fieldsync_nfd", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                   nullptr, sql_nfd, nullptr, nullptr, nullptr) != SQLITE_OK)
        throw failure(errc::storage, "local store: cannot register fieldsync_nfd");
    sqlite3_busy_timeout(db_.handle(), static_cast<int>(tuning::busy_timeout.count()));
    db_.exec(k_journal_mode);
    db_.exec(k_synchronous);
    db_.exec("PRAGMA foreign_keys=ON");
    migrate();
}

void local_store::migrate() {
    sqlite::write_transaction tx(db_);
    std::int64_t version = 0;
    {
        auto s = db_.cached("PRAGMA user_version");
        if (s.step()) version = s.int64(0);
    }
    if (version > static_cast<std::int64_t>(k_migrations.size()))
        throw failure(errc::storage, "local store: the file was written by a newer fieldsync (schema " +
                                         std::to_string(version) + ")");
    for (auto v = version; v < static_cast<std::int64_t>(k_migrations.size()); ++v) {
        db_.exec(k_migrations[static_cast<std::size_t>(v)]);
        db_.exec("PRAGMA user_version=" + std::to_string(v + 1));
    }
    tx.commit();
}

std::optional<std::string> local_store::meta(const std::string& key) {
    auto s = db_.cached("SELECT value FROM meta WHERE key = ?1");
    s.bind(1, key);
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

void local_store::set_meta(const std::string& key, const std::string& value) {
    auto s = db_.cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2");
    s.bind(1, key).bind(2, value).run();
}

std::optional<record_row> local_store::find_record(const std::string& collection, const std::string& id) {
    auto s = db_.cached(std::string("SELECT ") + k_record_columns + " FROM records WHERE collection = ?1 AND id = ?2");
    s.bind(1, collection).bind(2, id);
    if (!s.step()) return std::nullopt;
    return read_record(s);
}

void local_store::save_record(const record_row& r) {
    auto s = db_.cached(std::string("INSERT OR REPLACE INTO records (") + k_record_columns +
                         ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)");
    s.bind(1, r.collection).bind(2, r.id).bind(3, r.unit_id).bind(4, r.server_version).bind(5, r.server_deleted);
    s.bind(6, r.server_data).bind(7, r.local_deleted).bind(8, r.local_data).bind(9, r.state);
    s.bind(10, r.state_version).bind(11, r.reason_code).bind(12, r.reason_message).bind(13, r.conflict_id);
    s.bind(14, r.held_data).bind(15, r.resolution).run();
}

void local_store::forget_server_copy(const std::string& collection, const std::string& id) {
    auto s = db_.cached(
        "UPDATE records SET server_version = 0, server_deleted = 0, server_data = NULL "
        "WHERE collection = ?1 AND id = ?2");
    s.bind(1, collection).bind(2, id).run();
}

void local_store::delete_record(const std::string& collection, const std::string& id) {
    auto s = db_.cached("DELETE FROM records WHERE collection = ?1 AND id = ?2");
    s.bind(1, collection).bind(2, id).run();
}

std::int64_t local_store::delete_synced_records(int synced_state) {
    auto s = db_.cached(
        "DELETE FROM records WHERE state = ?1 AND NOT EXISTS "
        "(SELECT 1 FROM outbox o WHERE o.collection = records.collection AND o.id = records.id)");
    s.bind(1, static_cast<std::int64_t>(synced_state)).run();
    return sqlite3_changes(db_.handle());
}

std::vector<record_row> local_store::list_records(const record_filter& f) {
    std::string sql = std::string("SELECT ") + k_record_columns + " FROM records WHERE 1";
    if (!f.collection.empty()) sql += " AND collection = ?1";
    if (f.state) sql += " AND state = ?7";
    if (!f.unit_id.empty()) sql += " AND unit_id = ?2";
    if (!f.include_deleted) sql += " AND local_deleted = 0";
    if (!f.json_path.empty()) {
        if (f.null_value)
            sql += " AND json_type(local_data, ?3) = 'null'";
        else
            sql += " AND fieldsync_nfd(json_extract(local_data, ?3)) = fieldsync_nfd(?4)"
                   " AND json_type(local_data, ?3) NOT IN ('object', 'array')";
    }
    sql += " ORDER BY collection, id LIMIT ?5 OFFSET ?6";
    auto s = db_.cached(sql);
    if (!f.collection.empty()) s.bind(1, f.collection);
    if (f.state) s.bind(7, *f.state);
    if (!f.unit_id.empty()) s.bind(2, f.unit_id);
    if (!f.json_path.empty()) {
        s.bind(3, f.json_path);
        if (f.text_value)
            s.bind(4, *f.text_value);
        else if (f.int_value)
            s.bind(4, *f.int_value);
        else if (f.real_value)
            s.bind(4, *f.real_value);
    }
    s.bind(5, f.limit).bind(6, f.offset);
    std::vector<record_row> out;
    while (s.step()) out.push_back(read_record(s));
    return out;
}

std::optional<record_row> local_store::find_by_conflict(const std::string& conflict_id) {
    auto s = db_.cached(std::string("SELECT ") + k_record_columns + " FROM records WHERE conflict_id = ?1");
    s.bind(1, conflict_id);
    if (!s.step()) return std::nullopt;
    return read_record(s);
}

std::vector<std::string> local_store::held_conflicts(int conflict_state, std::size_t limit) {
    auto s = db_.cached(
        "SELECT conflict_id FROM records WHERE state = ?1 AND conflict_id IS NOT NULL ORDER BY rowid LIMIT ?2");
    s.bind(1, static_cast<std::int64_t>(conflict_state)).bind(2, static_cast<std::int64_t>(limit));
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
}

std::vector<outbox_row> local_store::outbox_for(const std::string& collection, const std::string& id) {
    auto s = db_.cached(std::string("SELECT ") + k_outbox_columns +
                         " FROM outbox WHERE collection = ?1 AND id = ?2 ORDER BY seq");
    s.bind(1, collection).bind(2, id);
    std::vector<outbox_row> out;
    while (s.step()) out.push_back(read_outbox(s));
    return out;
}

bool local_store::has_outbox(const std::string& collection, const std::string& id) {
    auto s = db_.cached("SELECT 1 FROM outbox WHERE collection = ?1 AND id = ?2 LIMIT 1");
    s.bind(1, collection).bind(2, id);
    return s.step();
}

std::optional<outbox_row> local_store::outbox_by_change_id(const std::string& change_id) {
    auto s = db_.cached(std::string("SELECT ") + k_outbox_columns + " FROM outbox WHERE change_id = ?1");
    s.bind(1, change_id);
    if (!s.step()) return std::nullopt;
    return read_outbox(s);
}

void local_store::insert_outbox(outbox_row& r) {
    auto s = db_.cached(
        "INSERT INTO outbox (change_id, collection, id, unit_id, deleted, data, base_version, base_data, hlc, "
        "batch_id, wire) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    s.bind(1, r.change_id).bind(2, r.collection).bind(3, r.id).bind(4, r.unit_id).bind(5, r.deleted);
    s.bind(6, r.data).bind(7, r.base_version).bind(8, r.base_data).bind(9, r.hlc).bind(10, r.batch_id);
    s.bind(11, r.wire).run();
    r.seq = sqlite3_last_insert_rowid(db_.handle());
}

void local_store::update_outbox(const outbox_row& r) {
    auto s = db_.cached(
        "UPDATE outbox SET unit_id = ?2, deleted = ?3, data = ?4, base_version = ?5, base_data = ?6, hlc = ?7, "
        "batch_id = ?8, wire = ?9 WHERE seq = ?1");
    s.bind(1, r.seq).bind(2, r.unit_id).bind(3, r.deleted).bind(4, r.data).bind(5, r.base_version);
    s.bind(6, r.base_data).bind(7, r.hlc).bind(8, r.batch_id).bind(9, r.wire).run();
}

void local_store::delete_outbox(std::int64_t seq) {
    auto s = db_.cached("DELETE FROM outbox WHERE seq = ?1");
    s.bind(1, seq).run();
}

std::vector<outbox_row> local_store::oldest_in_flight_batch(const std::vector<std::string>& skip) {
    std::string batch;
    {
        auto s = db_.cached(
            "SELECT batch_id, min(seq) AS first FROM outbox WHERE batch_id IS NOT NULL GROUP BY batch_id ORDER BY first");
        for (;;) {
            if (!s.step()) return {};
            batch = s.text(0);
            if (std::find(skip.begin(), skip.end(), batch) == skip.end()) break;
        }
    }
    auto s = db_.cached(std::string("SELECT ") + k_outbox_columns + " FROM outbox WHERE batch_id = ?1 ORDER BY seq");
    s.bind(1, batch);
    std::vector<outbox_row> out;
    while (s.step()) out.push_back(read_outbox(s));
    return out;
}

local_store::extent local_store::outbox_extent() {
    auto s = db_.cached("SELECT coalesce(max(seq), 0), count(*) FROM outbox");
    s.step();
    return {s.int64(0), s.int64(1)};
}

std::vector<outbox_row> local_store::unsent(std::size_t limit) {
    auto s = db_.cached(std::string("SELECT ") + k_outbox_columns +
                         " FROM outbox WHERE batch_id IS NULL AND NOT EXISTS (SELECT 1 FROM outbox o WHERE "
                         "o.collection = outbox.collection AND o.id = outbox.id AND o.batch_id IS NOT NULL) "
                         "ORDER BY seq LIMIT ?1");
    s.bind(1, static_cast<std::int64_t>(limit));
    std::vector<outbox_row> out;
    while (s.step()) out.push_back(read_outbox(s));
    return out;
}

void local_store::ack_outbox(const outbox_row& r, std::int64_t now_ms) {
    if (r.batch_id && r.wire) {
        auto s = db_.cached(
            "INSERT OR REPLACE INTO acked (seq, change_id, collection, id, unit_id, deleted, data, base_version, "
            "base_data, hlc, batch_id, wire, acked_ms) "
            "SELECT seq, change_id, collection, id, unit_id, deleted, data, base_version, base_data, hlc, batch_id, "
            "wire, ?2 FROM outbox WHERE seq = ?1");
        s.bind(1, r.seq);
        s.bind(2, now_ms);
        s.run();
    }
    delete_outbox(r.seq);
}

void local_store::prune_acked(std::int64_t before_ms, std::int64_t keep) {
    auto old = db_.cached("DELETE FROM acked WHERE acked_ms < ?1");
    old.bind(1, before_ms);
    old.run();
    auto extra = db_.cached("DELETE FROM acked WHERE seq <= (SELECT seq FROM acked ORDER BY seq DESC LIMIT 1 OFFSET ?1)");
    extra.bind(1, keep);
    extra.run();
}

std::int64_t local_store::requeue_acked() {
    db_.exec(
        "INSERT INTO outbox (seq, change_id, collection, id, unit_id, deleted, data, base_version, base_data, hlc, "
        "batch_id, wire) SELECT seq, change_id, collection, id, unit_id, deleted, data, base_version, base_data, hlc, "
        "batch_id, wire FROM acked ORDER BY seq");
    const auto n = static_cast<std::int64_t>(sqlite3_changes(db_.handle()));
    db_.exec("DELETE FROM acked");
    return n;
}

void local_store::forget_server_versions() { db_.exec("UPDATE records SET server_version = 0"); }

std::int64_t local_store::outbox_count() {
    auto s = db_.cached("SELECT count(*) FROM outbox");
    s.step();
    return s.int64(0);
}

std::int64_t local_store::count_state(int state) {
    auto s = db_.cached("SELECT count(*) FROM records WHERE state = ?1");
    s.bind(1, state);
    s.step();
    return s.int64(0);
}

std::int64_t local_store::count_live_records() {
    auto s = db_.cached("SELECT count(*) FROM records WHERE local_deleted = 0");
    s.step();
    return s.int64(0);
}

namespace {

constexpr const char* k_upload_columns = "sha256, size, content_type, name, state, sent, error_code, error_message";

upload_row read_upload(sqlite::stmt& s) {
    upload_row u;
    u.sha256 = s.text(0);
    u.size = s.int64(1);
    u.content_type = s.text(2);
    u.name = s.text(3);
    u.state = static_cast<int>(s.int64(4));
    u.sent = s.int64(5);
    u.error_code = s.opt_text(6);
    u.error_message = s.opt_text(7);
    return u;
}

}  // namespace

void local_store::queue_upload(const upload_row& u) {
    // The same bytes attached again (to another record, or after a refusal) are one upload; a
    // refused one is tried again, as the person has asked for it anew.
    auto s = db_.cached(std::string("INSERT INTO uploads (") + k_upload_columns +
                         ") VALUES (?1, ?2, ?3, ?4, ?5, 0, NULL, NULL) ON CONFLICT (sha256) DO UPDATE SET "
                         "state = ?5, error_code = NULL, error_message = NULL WHERE state = ?6");
    s.bind(1, u.sha256).bind(2, u.size).bind(3, u.content_type).bind(4, u.name).bind(5, u.state);
    s.bind(6, upload_failed).run();
}

std::vector<upload_row> local_store::uploads() {
    auto s = db_.cached(std::string("SELECT ") + k_upload_columns + " FROM uploads ORDER BY seq");
    std::vector<upload_row> out;
    while (s.step()) out.push_back(read_upload(s));
    return out;
}

std::optional<upload_row> local_store::next_upload(int waiting_state) {
    auto s = db_.cached(std::string("SELECT ") + k_upload_columns + " FROM uploads WHERE state = ?1 ORDER BY seq LIMIT 1");
    s.bind(1, waiting_state);
    if (!s.step()) return std::nullopt;
    return read_upload(s);
}

void local_store::set_upload_sent(const std::string& sha256, std::int64_t sent) {
    auto s = db_.cached("UPDATE uploads SET sent = ?2 WHERE sha256 = ?1");
    s.bind(1, sha256).bind(2, sent).run();
}

void local_store::end_upload(const std::string& sha256, int state, const std::optional<std::string>& code,
                             const std::optional<std::string>& message) {
    auto s = db_.cached("UPDATE uploads SET state = ?2, error_code = ?3, error_message = ?4 WHERE sha256 = ?1");
    s.bind(1, sha256).bind(2, state).bind(3, code).bind(4, message).run();
}

bool local_store::has_blob_file(const std::string& sha256) {
    auto s = db_.cached("SELECT 1 FROM blob_files WHERE sha256 = ?1");
    s.bind(1, sha256);
    return s.step();
}

void local_store::use_blob_file(const std::string& sha256, std::int64_t size, std::int64_t now_ms) {
    auto s = db_.cached(
        "INSERT INTO blob_files (sha256, size, used_ms) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (sha256) DO UPDATE SET used_ms = max(used_ms, ?3)");
    s.bind(1, sha256).bind(2, size).bind(3, now_ms).run();
}

std::vector<std::string> local_store::evict_blob_files(std::int64_t limit, const std::string& keep) {
    std::int64_t total = 0;
    {
        auto s = db_.cached("SELECT coalesce(sum(size), 0) FROM blob_files");
        s.step();
        total = s.int64(0);
    }
    std::vector<std::string> out;
    if (total <= limit) return out;
    // Only what the server already has may go: a blob waiting to be sent (or refused, until the
    // person replaces it) exists nowhere else.
    auto s = db_.cached(
        "SELECT sha256, size FROM blob_files WHERE sha256 <> ?1 AND NOT EXISTS "
        "(SELECT 1 FROM uploads u WHERE u.sha256 = blob_files.sha256 AND u.state <> ?2) ORDER BY used_ms, sha256");
    s.bind(1, keep).bind(2, upload_sent);
    while (total > limit && s.step()) {
        out.push_back(s.text(0));
        total -= s.int64(1);
    }
    s.reset();
    for (const auto& sha : out) {
        auto d = db_.cached("DELETE FROM blob_files WHERE sha256 = ?1");
        d.bind(1, sha).run();
    }
    return out;
}

}  // namespace fieldsync::client::detail
