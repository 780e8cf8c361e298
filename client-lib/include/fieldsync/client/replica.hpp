#pragma once
// A replica: the records of a device in a local SQLite file, the outbox of its unsent edits,
// and the sync engine that pushes the outbox to a fieldsync server and pulls the server's
// changes (design.md, "Replica"; the wire protocol is protocol/SPEC.md, "POST /v1/sync").
//
// Guarantees
// - Every local write (put, patch, remove) is durable (committed, synchronous=FULL) before it
//   returns, and is kept in the outbox until the server has answered it.
// - Each pushed change-set's batch_id and change_ids are written to the local file before the
//   first send and reused on every retry, so a retry after a lost answer is never applied
//   twice by the server. A sync interrupted at any point (process killed, network cut) resumes
//   on the next sync() with nothing lost and nothing applied twice.
// - Several edits of one record before a sync become one change (the latest content, the
//   original base_version). An edit made while a sync is running is never lost: changes
//   already handed to the server are frozen and the new edit waits for the next push.
// - A pulled change never overwrites a pending local edit: the local copy and its base stay,
//   and the server merges on the next push. When nothing is pending for a record, its local
//   copy is the server's head.
// - Changes the server holds for review (conflict) or refuses (rejected) are not lost: the
//   record shows that state, the reason, and keeps the change's content (record::held). A
//   held change stays `conflict` until the server tells its outcome (record::resolution); a
//   refused one until a newer version arrives, a later edit is taken, or discard().
//
// Thread safety: a replica may be used from several threads at once. Local calls are
// serialised on an internal mutex; sync() holds it only for its local transactions, not
// while waiting for the network, so the app may keep editing during a sync. One sync at a
// time: a second concurrent sync() fails with errc::busy. The progress callback runs on the
// thread that called sync() and may call the replica's local functions.
//
// Attachments (SPEC.md, "Attachments"): attach() copies a file's bytes into a folder beside the
// replica file (`<path>.blobs/`, named by SHA-256), writes its reference into the record as an
// ordinary edit (the outbox sends it as a patch) and queues its upload, in one local
// transaction. Uploads have their own queue and their own call, upload(), which may run on
// another thread while sync() runs: a sync never waits for a file, and a file's chunks never
// hold a record back. download() fetches a blob on demand into the same folder, which keeps
// downloaded blobs under a size limit (replica_options::blob_cache_bytes).
//
// Several processes may open the same file (WAL mode; each write is one short transaction).

#include <fieldsync/client/errc.hpp>
#include <fieldsync/client/transport.hpp>
#include <fieldsync/protocol/attachment.hpp>
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/protocol/version.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fieldsync::client {

using json = nlohmann::json;

enum class sync_state {
    synced,     // the local copy is the server's head as last pulled
    pending,    // a local edit waits in the outbox (or is being pushed)
    conflict,   // the server kept the head and holds this device's change for review
    rejected,   // the server refused this device's change (reason says why)
};
std::string_view sync_state_name(sync_state s) noexcept;

struct record {
    std::string collection;
    std::string id;
    std::string unit_id;
    json data;                          // the local copy; null when deleted
    bool deleted = false;
    std::int64_t version = 0;           // the server version the local copy is based on (0: never synced)
    sync_state state = sync_state::synced;
    std::optional<protocol::error> reason;   // rejected: why (code and message); none for a conflict
    std::optional<std::string> conflict_id;  // conflict: the server's conflict id
    json held;                          // conflict or rejected: the content the server did not take
                                        // (null for a delete or when nothing is held); kept with a
                                        // resolution: this device's text the decision was about
    /// The district decided about this device's held change (SPEC.md, "Decisions reaching the
    /// device"): what it chose, its note, its unit. Kept until the next local edit of the
    /// record or discard(); `held` then still holds what this device had written.
    std::optional<protocol::resolution_notice> resolution;
};

/// Which records list() returns. Empty strings / unset fields match everything.
struct query {
    std::string collection;             // required unless `state` is set
    std::string unit_id;                // only records of this unit
    std::string field;                  // top-level field name, or a JSON pointer ("/a/b")
    json value;                         // with `field`: records whose field equals this value
    bool include_deleted = false;
    std::size_t limit = 0;              // 0 = no limit
    std::size_t offset = 0;
    std::optional<sync_state> state;    // only records in this state (e.g. conflict); deleted
                                        // ones included, as a refused create or a conflicting
                                        // delete leaves its record deleted locally
};

struct status_summary {
    std::int64_t pending = 0;           // records with a pending local edit
    std::int64_t conflicts = 0;
    std::int64_t rejected = 0;
    std::int64_t records = 0;           // records not deleted
    std::string cursor;
    std::string server_url;
};

struct sync_report {
    std::int64_t pushed = 0;            // changes answered by the server in this sync
    std::int64_t applied = 0;
    std::int64_t merged = 0;
    std::int64_t conflicts = 0;
    std::int64_t rejected = 0;
    std::int64_t decided = 0;           // held changes whose outcome (a reviewer's decision) arrived
    std::int64_t queued = 0;            // held by a relay hub for its upstream: still pending,
                                        // resent (same change_id) by a later sync
    std::int64_t pulled = 0;            // pulled heads newer than the replica's copy, stored
    std::int64_t dropped = 0;           // records removed because they left the device's scope
    std::int64_t resent = 0;            // answered changes sent again because the server's store was restored
    std::int64_t bytes_sent = 0;        // HTTP bodies, both ways
    std::int64_t bytes_received = 0;
    std::int64_t requests = 0;          // HTTP exchanges that got a response
    std::int64_t retries = 0;           // attempts that failed transiently and were retried
    std::int64_t refetched_pages = 0;   // pulled pages asked for again whole: they held a diff
                                        // against a version this replica does not hold
    std::chrono::milliseconds duration{0};
    /// The server is newer than this replica (its protocol or schema): the app should be
    /// upgraded. `required`: the server no longer serves this version's pulls; the sync pushed
    /// what was pending and then failed with errc::client_too_old.
    std::optional<protocol::upgrade_notice> upgrade;
};

enum class sync_phase { push, pull, retry_wait };

struct sync_progress {
    sync_phase phase = sync_phase::push;
    std::int64_t pushed = 0;            // changes answered so far
    std::int64_t to_push = 0;           // outbox size when the sync started (plus edits made since)
    std::int64_t pulled = 0;
    std::int64_t bytes_sent = 0;
    std::int64_t bytes_received = 0;
    std::chrono::milliseconds retry_in{0};   // retry_wait: the delay before the next attempt
    std::optional<error> last_error;         // retry_wait: what failed
};
/// Return false to stop the sync: it ends after the current local transaction with
/// errc::cancelled, and the next sync resumes from there.
using progress_fn = std::function<bool(const sync_progress&)>;

/// Seams for tests: how the sync engine waits and draws random numbers.
struct sync_seams {
    std::function<void(std::chrono::milliseconds)> sleep;   // default: std::this_thread::sleep_for
    std::function<std::uint64_t()> random;                  // default: a seeded std::mt19937_64
    std::function<std::int64_t()> wall_ms;                  // default: the system clock (HLC stamps)
};

struct sync_tuning {
    std::size_t push_batch_size = 0;    // 0 = tuning::push_batch_size (at most the protocol's cap)
    std::size_t push_batch_bytes = 0;   // 0 = tuning::push_batch_bytes
    std::int64_t pull_page_limit = 0;   // 0 = tuning::pull_page_limit
    std::chrono::milliseconds backoff_base{0}, backoff_cap{0}, request_timeout{0};
    int max_attempts = 0;
    double jitter = -1;                 // < 0 = tuning::jitter
};

/// How sync bodies travel (SPEC.md, "Compression and encodings"). CBOR carries the same
/// values in fewer bytes and parses faster on a phone; JSON is readable in a packet capture.
/// Either is gzipped by the default transport. Error answers are JSON whatever is chosen.
enum class body_format { json, cbor };

struct replica_options {
    std::string path;                   // the SQLite file; created (with its directory's
                                        // parent existing) if missing
    /// The transport for sync(). nullptr: the default HTTP transport when this build has one.
    std::shared_ptr<transport> transport_override;
    /// Options of the default transport (ca_file for https://, gzip); unused with an override.
    http_transport_options http;
    /// Local check of put/patch data before it enters the outbox, so an app sees a schema
    /// error at once instead of a rejection after the next sync. nullptr: no local check
    /// (the server still checks). Must outlive the replica.
    const protocol::schema* schema = &protocol::schema::default_schema();
    sync_seams seams;
    sync_tuning tuning;
    body_format format = body_format::json;
    /// Ask for pulled records this replica already holds as field diffs against the version it
    /// holds (SPEC.md, "Pulled field diffs"): a one-field edit of a large record then costs a
    /// few bytes. A diff against a version the replica does not hold is never applied: the
    /// page is asked for again whole.
    bool pull_diffs = true;
    /// The most bytes the blob folder keeps of blobs the server already has (downloaded, or
    /// uploaded and sent), least recently used removed first; uploads not yet sent are never
    /// removed. 0 = tuning::blob_cache_bytes.
    std::int64_t blob_cache_bytes = 0;
};

/// Where an attached file's upload is (replica::upload_queue()).
enum class upload_state {
    waiting,    // queued: the server holds `sent` bytes of it (0 before the first chunk)
    sending,    // an upload() is sending it now
    sent,       // the server holds the whole blob
    failed,     // refused for good (error_code says why); the record keeps its reference and
                // the person replaces the file. Attaching the same bytes again retries it.
};
std::string_view upload_state_name(upload_state s) noexcept;

struct upload_entry {
    protocol::attachment_ref ref;       // sha256, size, content_type, name
    upload_state state = upload_state::waiting;
    std::int64_t sent = 0;              // bytes the server acknowledged, of ref.size
    std::string error_code;             // failed: the server's code (blob_too_large,
                                        // blob_type_refused, blob_hash_mismatch) or
                                        // "missing_locally" when the local copy is gone
    std::string error_message;
};

/// Progress of upload(): called after each chunk the server acknowledged.
struct upload_progress {
    std::string sha256;                 // the blob being sent
    std::string name;
    std::int64_t sent = 0;              // bytes of it the server holds
    std::int64_t size = 0;
    std::int64_t bytes_sent = 0;        // chunk bytes sent by this call, every blob
};
/// Return false to stop: upload() ends after the chunk just acknowledged with errc::cancelled,
/// and the next call resumes from the server's offset.
using upload_progress_fn = std::function<bool(const upload_progress&)>;

struct upload_options {
    upload_progress_fn progress;
    /// Stop (successfully) before the next chunk once this call has sent this many bytes; 0
    /// means no budget. For a metered link: a little every sync, the rest on Wi-Fi.
    std::int64_t byte_budget = 0;
};

struct upload_report {
    std::int64_t completed = 0;         // blobs the server holds whole now (sent, or already had)
    std::int64_t failed = 0;            // refused for good in this call
    std::int64_t bytes_sent = 0;        // chunk bytes sent (request bodies)
    std::int64_t requests = 0;          // HTTP exchanges that got a response
    std::int64_t waiting = 0;           // uploads still queued when the call ended
    std::chrono::milliseconds duration{0};
};

struct put_options {
    std::string id;                     // empty: a new UUIDv7
    std::string unit_id;                // required for a new record; empty keeps the record's unit
};

class replica {
public:
    /// Opens (creating and migrating as needed) the replica at options.path.
    /// Errors: storage (cannot open, newer schema than this library knows, corrupt file).
    static result<std::unique_ptr<replica>> open(replica_options options);
    ~replica();
    replica(const replica&) = delete;
    replica& operator=(const replica&) = delete;

    /// Stores the server URL ("https://host:port", or "http://" on a loopback or trusted
    /// network) and the device token in the replica file,
    /// so later opens can sync without asking again.
    result<void> configure(const std::string& server_url, const std::string& token);

    /// Creates or replaces a whole record. Returns the record as stored (its id when new).
    /// Errors: invalid_argument, invalid_utf8, schema_violation, storage.
    result<record> put(const std::string& collection, const json& data, const put_options& options);
    /// Creates or replaces several records in one local transaction: all are stored or, on
    /// the first invalid item, none (the error names its index). One durable commit for the
    /// lot, so bulk imports (a cell's member list) are not bound by one disk flush per record.
    struct put_item {
        std::string collection;
        json data;
        put_options options;
    };
    result<std::vector<record>> put_many(const std::vector<put_item>& items);
    /// Applies an RFC 7396 merge patch to the local copy. Errors: as put, and not_found.
    result<record> patch(const std::string& collection, const std::string& id, const json& merge_patch);
    /// Deletes a record (a tombstone until the server has it). Errors: not_found, storage.
    result<record> remove(const std::string& collection, const std::string& id);

    /// Drops what only this device has of a record and returns it to the server's version:
    /// unsent edits, a refused change (rejected), or a decision's notice and the text it kept.
    /// A record the server never had goes from the replica (the answer has deleted = true).
    /// Errors: not_found, invalid_argument (the change is held for review: the district
    /// decides it), busy (a change of it is being sent: try after the sync), storage.
    result<record> discard(const std::string& collection, const std::string& id);

    /// The local copy; nullopt when the replica does not hold the record. A deleted record it
    /// holds (a pending delete, or a delete pulled from the server) has deleted = true.
    result<std::optional<record>> get(const std::string& collection, const std::string& id);
    /// Records matching `q`, ordered by collection and id. Errors: invalid_argument (no
    /// collection nor state, or a value that is not a string, number, boolean or null), storage.
    result<std::vector<record>> list(const query& q);
    /// Local changes not yet answered by the server.
    result<std::int64_t> pending_count();
    result<status_summary> status();

    /// Replaces the transport used by later syncs (nullptr: the default HTTP transport, if
    /// this build has one). Errors: busy while a sync runs.
    result<void> set_transport(std::shared_ptr<transport> t);
    /// How later syncs send and ask for bodies: JSON or CBOR, and whether the default HTTP
    /// transport gzips them both ways (an app's own transport is left as it is).
    /// Errors: invalid_argument, busy while a sync runs.
    result<void> set_encoding(body_format format, bool gzip);
    /// Replaces the options of the default transport for later syncs (e.g. the CA file to
    /// trust for https://). Errors: invalid_argument when ca_file is set but cannot be read,
    /// unsupported in the embedded build, busy while a sync runs.
    result<void> set_http_options(const http_transport_options& options);
    /// The default transport's options as set (gzip by set_encoding, the CA file by
    /// set_http_options), to change one of them.
    http_transport_options http_options() const;

    /// Pushes the outbox, then pulls until the server has nothing more. Transient failures are
    /// retried with backoff up to max_attempts per request; then the error is returned
    /// (network, timeout, server_unavailable), as are unauthorized, forbidden, bad_request,
    /// bad_response, not_configured, busy, cancelled and storage. Whatever the outcome,
    /// everything answered before the failure is committed locally.
    result<sync_report> sync(const progress_fn& progress = {});

    // Attachments (SPEC.md, "Attachments").

    /// Attaches the file at `file_path` to the record's field `field`: appends its reference
    /// to the array (a field of type array of attachment, or a field the schema does not
    /// name), or sets it (a field of type attachment). The bytes are copied beside the
    /// replica, the record edit goes out with the next sync, the upload waits for upload().
    /// `name` is what people see ("" = the file's own name); it is never used as a path.
    /// Errors: invalid_argument (not JPEG, PNG, WebP or PDF by its first bytes, empty, over
    /// tuning::max_blob_bytes, a name over 255 bytes, a field that holds something else),
    /// invalid_utf8, not_found (no such record, or no such file), schema_violation, storage.
    result<protocol::attachment_ref> attach(const std::string& collection, const std::string& id,
                                            const std::string& field, const std::string& file_path,
                                            const std::string& name = {});
    /// The same for bytes in memory (a phone's camera, the browser). `name` is required.
    result<protocol::attachment_ref> attach_bytes(const std::string& collection, const std::string& id,
                                                  const std::string& field, std::string_view bytes,
                                                  const std::string& name);
    /// Sends queued uploads, oldest first, in chunks of tuning::blob_chunk_bytes, each resumed
    /// from the server's offset (GET /v1/uploads/{sha256}) after any cut or restart. A refused
    /// blob is marked failed and the next one goes on. Stops at the first transient failure
    /// (network, timeout, server_unavailable, quota) with that error, leaving the blob queued
    /// for a later call; also unauthorized, forbidden, bad_request, not_configured, cancelled
    /// (the progress callback), busy (another upload() runs), storage. Runs beside sync() on
    /// another thread: it holds the replica's lock only for its local reads and writes.
    result<upload_report> upload(const upload_options& options = {});
    /// Every upload this replica has queued, oldest first, with its progress.
    result<std::vector<upload_entry>> upload_queue();
    /// The local path of the blob `sha256`: the folder's copy when it holds it, else fetched
    /// from the server (GET /v1/blobs/{sha256}, in chunks; a download cut off resumes where it
    /// stopped, with Range), checked against its hash and kept in the cache. The file stays
    /// until the cache needs its room: read it, or copy it, soon.
    /// Errors: invalid_argument (not a SHA-256), not_found (not on the server yet, or not this
    /// device's to read), bad_response (the bytes do not hash to the name), network, timeout,
    /// server_unavailable, unauthorized, not_configured, storage.
    result<std::string> download(const std::string& sha256);

    // For a relay (a hub server whose upstream link is this replica; ARCHITECTURE.md, "Relay
    // hub"). Not needed by apps.

    /// Queues a change made elsewhere (by a device of the relay) to be sent exactly as given:
    /// its change_id, op, base_version, data and hlc are kept, and it is never coalesced with
    /// other changes. Idempotent: a change_id already in the outbox is not queued twice. The
    /// local copy of the record is not touched (the answer and the pull bring the server's).
    /// Errors: invalid_argument (bad ids), storage.
    result<void> forward(const protocol::change& c);
    /// Called with every decoded sync answer before the replica commits it. If it returns an
    /// error, the sync stops with that error, nothing of the answer is committed here and the
    /// same request (same change_ids, same cursor) is made again by the next sync: so what the
    /// callback stores must be idempotent.
    using answer_fn = std::function<result<void>(const protocol::sync_response&)>;
    result<sync_report> sync(const progress_fn& progress, const answer_fn& on_answer);

    struct impl;

private:
    explicit replica(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
    friend struct replica_test_access;
};

/// A new time-ordered UUID (RFC 9562 version 7), lowercase with dashes. Thread-safe; ids made
/// by one process are strictly increasing.
std::string make_uuid_v7();

}  // namespace fieldsync::client
