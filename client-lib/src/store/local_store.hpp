#pragma once
// All SQL of the client: the replica's local file (design.md, "Replica").
//
//   records  one row per record: the last known server copy (version, deleted, data), the
//            local copy the app sees, the sync state and, for conflict/rejected, the reason
//            and the content the server did not take.
//   outbox   local changes not yet answered. A row with batch_id NULL is unsent and still
//            absorbs later edits of its record; a row with a batch_id has been handed to the
//            server (its exact wire form is stored in `wire`) and is frozen until answered.
//   acked    answered change-sets (outbox rows with their answer's time), kept for a bounded
//            window: if the server's store is restored from a backup, they are sent again
//            (SPEC.md, "After a restore").
//   uploads  attached files to send (SPEC.md, "Attachments"), apart from the outbox: their
//            reference, state (waiting, sent, failed and why) and the bytes the server holds.
//   blob_files the complete blobs in the folder beside the replica (blobs/blob_files.hpp), with
//            their last use, for the download cache's eviction.
//   meta     server URL, token, pull cursor, last HLC, the server store's incarnation.
//
// Not thread-safe: the replica serialises access. Errors throw sqlite::error (the SQLite
// layer, sqlite/) or detail::failure; the replica's entry points answer both as errc::storage.

#include "../failure.hpp"

#include <fieldsync/sqlite/sqlite.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fieldsync::client::detail {

/// A JSON column as the local file keeps it: SQL NULL is JSON null (a deleted copy, or none).
nlohmann::json parse_stored(const std::optional<std::string>& text);
std::optional<std::string> dump_or_null(const nlohmann::json& j);

struct record_row {
    std::string collection;
    std::string id;
    std::string unit_id;
    std::int64_t server_version = 0;
    bool server_deleted = false;
    std::optional<std::string> server_data;   // JSON text, NULL when deleted or never synced
    bool local_deleted = false;
    std::optional<std::string> local_data;
    int state = 0;                            // sync_state as int
    std::int64_t state_version = 0;           // conflict/rejected: the head version then
    std::optional<std::string> reason_code;
    std::optional<std::string> reason_message;
    std::optional<std::string> conflict_id;
    std::optional<std::string> held_data;
    std::optional<std::string> resolution;    // JSON: the district's decision on a held change
};

struct outbox_row {
    std::int64_t seq = 0;
    std::string change_id;
    std::string collection;
    std::string id;
    std::string unit_id;
    bool deleted = false;
    std::optional<std::string> data;          // the record's content after this change
    std::int64_t base_version = 0;
    std::optional<std::string> base_data;     // the content the change was edited from
    std::string hlc;
    std::optional<std::string> batch_id;
    std::optional<std::string> wire;          // the change as sent (JSON), once batched
};

/// uploads.state: the values of client::upload_state that are stored (`sending` is only ever
/// in memory, for the entry an upload() is working on).
inline constexpr int upload_waiting = 0;
inline constexpr int upload_sent = 2;
inline constexpr int upload_failed = 3;

struct upload_row {
    std::string sha256;
    std::int64_t size = 0;
    std::string content_type;
    std::string name;
    int state = upload_waiting;
    std::int64_t sent = 0;                    // bytes the server acknowledged
    std::optional<std::string> error_code;    // failed: the server's code (or the client's)
    std::optional<std::string> error_message;
};

struct record_filter {
    std::string collection;                   // empty = every collection
    std::string unit_id;
    std::string json_path;                    // SQLite JSON path ("$.name"), empty = none
    std::optional<std::string> text_value;
    std::optional<std::int64_t> int_value;
    std::optional<double> real_value;
    bool null_value = false;
    bool include_deleted = false;
    std::optional<int> state;
    std::int64_t limit = -1;
    std::int64_t offset = 0;
};

class local_store {
public:
    /// Opens the file, sets WAL and the busy timeout, and migrates to the current schema.
    explicit local_store(const std::string& path);

    sqlite::db& db() { return db_; }

    std::optional<std::string> meta(const std::string& key);
    void set_meta(const std::string& key, const std::string& value);

    std::optional<record_row> find_record(const std::string& collection, const std::string& id);
    void save_record(const record_row& r);
    void delete_record(const std::string& collection, const std::string& id);
    /// The server's copy of a record is no longer this device's to see (it left the device's
    /// scope): forgotten, as if never pulled; the local copy and state stay.
    void forget_server_copy(const std::string& collection, const std::string& id);
    /// Deletes every record in `synced_state` (sync_state::synced) with nothing in the outbox (a scope reset:
    /// the server sends the new scope's records again). Returns how many went.
    std::int64_t delete_synced_records(int synced_state);
    std::vector<record_row> list_records(const record_filter& f);
    /// The record whose change is held as conflict `conflict_id`, if any.
    std::optional<record_row> find_by_conflict(const std::string& conflict_id);
    /// Conflict ids of records in `conflict_state` (sync_state::conflict), at most `limit`,
    /// oldest rows first: what a sync asks the server about.
    std::vector<std::string> held_conflicts(int conflict_state, std::size_t limit);

    /// Outbox rows of one record, oldest first.
    std::vector<outbox_row> outbox_for(const std::string& collection, const std::string& id);
    bool has_outbox(const std::string& collection, const std::string& id);
    /// The outbox as a sync starts: the newest row's seq (0 when empty) and the row count.
    struct extent {
        std::int64_t max_seq = 0;
        std::int64_t rows = 0;
    };
    extent outbox_extent();
    std::optional<outbox_row> outbox_by_change_id(const std::string& change_id);
    void insert_outbox(outbox_row& r);        // sets r.seq
    void update_outbox(const outbox_row& r);
    void delete_outbox(std::int64_t seq);
    /// The oldest batch handed to the server and not yet answered, other than those of
    /// `skip` (empty: none).
    std::vector<outbox_row> oldest_in_flight_batch(const std::vector<std::string>& skip = {});
    /// Up to `limit` unsent rows, oldest first, at most one per record (the oldest), of records
    /// with no change in flight: an edit made on top of a change the server has not answered
    /// is sent once that answer gives it its base (a relay hub's `queued` is no answer).
    std::vector<outbox_row> unsent(std::size_t limit);
    std::int64_t outbox_count();
    /// Moves an answered outbox row to `acked` (same seq, batch, ids and wire form).
    void ack_outbox(const outbox_row& r, std::int64_t now_ms);
    /// Forgets acked rows answered before `before_ms`, and all but the newest `keep` rows.
    void prune_acked(std::int64_t before_ms, std::int64_t keep);
    /// Puts every acked row back into the outbox as a sent, unanswered change-set (its old
    /// seq, so the resends go first and in their first order). Returns how many.
    std::int64_t requeue_acked();
    /// Forgets which server version each record copy is (all become 0), so the next full pull
    /// replaces every server copy: after a restore the versions of the old store mean nothing.
    void forget_server_versions();
    /// Queues an upload (its state as given); the same blob queued again is one entry, and a
    /// failed one waits again.
    void queue_upload(const upload_row& u);
    std::vector<upload_row> uploads();
    /// The oldest upload in `waiting_state`.
    std::optional<upload_row> next_upload(int waiting_state);
    void set_upload_sent(const std::string& sha256, std::int64_t sent);
    void end_upload(const std::string& sha256, int state, const std::optional<std::string>& code,
                    const std::optional<std::string>& message);
    /// The blob folder's bookkeeping: a complete blob held (its last use now), and the blobs to
    /// remove, least recently used first, until the folder holds at most `limit` bytes; never
    /// `keep` nor a blob whose upload is not sent. The rows of those returned are gone.
    bool has_blob_file(const std::string& sha256);
    void use_blob_file(const std::string& sha256, std::int64_t size, std::int64_t now_ms);
    std::vector<std::string> evict_blob_files(std::int64_t limit, const std::string& keep);
    std::int64_t count_state(int state);
    std::int64_t count_live_records();

private:
    void migrate();
    sqlite::db db_;
};

}  // namespace fieldsync::client::detail
