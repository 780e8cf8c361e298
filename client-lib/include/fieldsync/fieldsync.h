/* fieldsync.h: the C ABI of the fieldsync client library (libfieldsync.so / libfieldsync.a).
 *
 * A replica is a local SQLite file holding a device's records and the outbox of its unsent
 * edits; fs_replica_sync() exchanges them with a fieldsync server (protocol/SPEC.md). Every
 * local write is durable when the call returns; a sync interrupted anywhere resumes on the
 * next call with nothing lost or applied twice.
 *
 * Conventions
 * - Handles are opaque. Functions are named fs_<object>_<verb>.
 * - Strings in and out are NUL-terminated UTF-8. Records travel as JSON text.
 * - The last parameter of a fallible function is `fs_error* error`. It may be NULL. On
 *   success error->code is set to FS_OK; on failure to an fs_errc value and error->message
 *   to a NUL-terminated description (truncated to fit). The same code and message are also
 *   kept per replica: fs_replica_last_error_code / _message.
 * - Ownership: a `char*` returned by this library is allocated by it; free it with fs_free().
 *   `const char*` returns are owned by the library (see each function for how long they live).
 *   Strings passed in are only read during the call (and copied if kept).
 * - Nothing throws or longjmps across this interface; out of memory is reported as
 *   FS_ERR_INTERNAL where it can be caught.
 * - Threads: a replica handle may be used from several threads (calls are serialised inside;
 *   a sync does not block local reads and writes while it waits for the network). One sync
 *   per replica at a time (FS_ERR_BUSY), and one upload, which may run beside it. Callbacks
 *   run on the thread that called fs_replica_sync() (or fs_replica_upload) and may call this
 *   replica's local functions (not fs_replica_sync). A transport callback may be called by a
 *   sync and an upload or download at the same time: it must be thread-safe then.
 */
#ifndef FIELDSYNC_FIELDSYNC_H
#define FIELDSYNC_FIELDSYNC_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define FS_API __declspec(dllexport)
#else
#define FS_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: the values of fieldsync::client::errc. */
typedef enum fs_errc {
    FS_OK = 0,
    FS_ERR_INVALID_ARGUMENT = 1,   /* bad collection/id/unit, data not a JSON object, NULL where not allowed */
    FS_ERR_INVALID_JSON = 2,
    FS_ERR_INVALID_UTF8 = 3,
    FS_ERR_SCHEMA_VIOLATION = 4,   /* refused by the local copy of the collection schema */
    FS_ERR_NOT_FOUND = 5,          /* patch/remove of a record the replica does not hold */
    FS_ERR_NOT_CONFIGURED = 6,     /* sync without server URL or transport */
    FS_ERR_STORAGE = 7,            /* the local SQLite file failed */
    FS_ERR_NETWORK = 8,            /* transient: retried with backoff inside sync, then reported */
    FS_ERR_TIMEOUT = 9,            /* transient */
    FS_ERR_SERVER_UNAVAILABLE = 10,/* transient: HTTP 5xx/408 after every retry */
    FS_ERR_UNAUTHORIZED = 11,      /* HTTP 401, never retried */
    FS_ERR_FORBIDDEN = 12,         /* HTTP 403, never retried */
    FS_ERR_BAD_REQUEST = 13,       /* another 4xx */
    FS_ERR_BAD_RESPONSE = 14,
    FS_ERR_CANCELLED = 15,         /* the progress callback returned 0 */
    FS_ERR_BUSY = 16,              /* a sync of this replica is already running */
    FS_ERR_UNSUPPORTED = 17,       /* no default HTTP transport in this build: set one */
    FS_ERR_INTERNAL = 18,
    FS_ERR_SERVER_TOO_OLD = 19,    /* the server does not speak this library's protocol; outbox kept */
    FS_ERR_CLIENT_TOO_OLD = 20,    /* the server refuses pulls from this version; edits were pushed first */
    FS_ERR_TLS = 21                /* https: certificate not trusted (unknown CA, wrong host name,
                                      expired) or TLS handshake refused; never retried */
} fs_errc;

#define FS_ERROR_MESSAGE_MAX 512

typedef struct fs_error {
    int code;                              /* an fs_errc */
    char message[FS_ERROR_MESSAGE_MAX];    /* NUL-terminated UTF-8 */
} fs_error;

/* Per-record sync state. */
typedef enum fs_state {
    FS_STATE_SYNCED = 0,    /* the local copy is the server's head as last pulled */
    FS_STATE_PENDING = 1,   /* a local edit waits to be pushed */
    FS_STATE_CONFLICT = 2,  /* the server holds this device's change for review */
    FS_STATE_REJECTED = 3,  /* the server refused this device's change (see the record's "reason") */
    FS_STATE_UNKNOWN = -1   /* no such record (or an error: see `error`) */
} fs_state;

typedef struct fs_replica fs_replica;

/* Opens (creating if needed) the replica file at `path`. NULL on failure.
 * Close with fs_replica_close. */
FS_API fs_replica* fs_replica_open(const char* path, fs_error* error);
/* Closes the replica and frees the handle. NULL is allowed. No other call on this handle may
 * be running or made afterwards (close after the sync thread has returned). */
FS_API void fs_replica_close(fs_replica* replica);

/* Stores the server URL ("https://host:port"; "http://host:port" only where the server allows
 * plain HTTP, e.g. loopback) and the device token in the replica file.
 * Returns an fs_errc (FS_OK on success). */
FS_API int fs_replica_configure(fs_replica* replica, const char* server_url, const char* token, fs_error* error);

/* Creates or replaces a record. `id` may be NULL or "" (a new UUIDv7 is made); `unit_id` is
 * required for a new record (NULL keeps an existing record's unit); `json` is a JSON object.
 * Returns the record's id (free with fs_free), NULL on failure. */
FS_API char* fs_replica_put(fs_replica* replica, const char* collection, const char* id, const char* unit_id,
                            const char* json, fs_error* error);
/* Creates or replaces several records in one local transaction (all or none): `json_array`
 * is [{"collection", "id"?, "unit_id", "data"}, ...]. Returns a JSON array of the ids, in
 * order (free with fs_free); NULL on failure, with the failing item's index in the message. */
FS_API char* fs_replica_put_many(fs_replica* replica, const char* json_array, fs_error* error);
/* Applies an RFC 7396 merge patch (a JSON object) to a record. Returns an fs_errc. */
FS_API int fs_replica_patch(fs_replica* replica, const char* collection, const char* id, const char* json_patch,
                            fs_error* error);
/* Deletes a record. Returns an fs_errc (FS_ERR_NOT_FOUND if absent or already deleted). */
FS_API int fs_replica_remove(fs_replica* replica, const char* collection, const char* id, fs_error* error);

/* Drops what only this device has of a record and returns it to the server's version: unsent
 * edits, a refused change, or a decision's notice ("resolution") and the text it kept ("held").
 * Returns an fs_errc: FS_ERR_NOT_FOUND, FS_ERR_INVALID_ARGUMENT (held for review: the reviewer
 * decides), FS_ERR_BUSY (a change of it is being sent). */
FS_API int fs_replica_discard(fs_replica* replica, const char* collection, const char* id, fs_error* error);

/* The record as a JSON object (free with fs_free):
 *   {"collection","id","unit_id","data","deleted","version","state","reason"?,"conflict_id"?,"held"?,
 *    "resolution"?}
 * "state" is "synced"|"pending"|"conflict"|"rejected"; "reason" is {"code","message"};
 * "resolution" (the district's decision on this device's held change; SPEC.md, "Decisions
 * reaching the device") is {"conflict_id","status","choice","note"?,"version"?,"closed_ms",
 * "reviewer":{"unit_id","unit_name"}}.
 * NULL when the replica does not hold the record (error->code FS_OK) or on failure. */
FS_API char* fs_replica_get(fs_replica* replica, const char* collection, const char* id, fs_error* error);

/* Records of a collection as a JSON array of objects shaped like fs_replica_get's (free with
 * fs_free). `unit_id` (NULL = any) filters by unit; `field` (NULL = none, a top-level name or
 * a JSON pointer) with `value_json` (a JSON string, number, boolean or null) filters by a
 * field's value. Deleted records are left out. NULL on failure. */
FS_API char* fs_replica_list(fs_replica* replica, const char* collection, const char* unit_id, const char* field,
                             const char* value_json, fs_error* error);

/* The records whose change the server held for review or refused (states conflict and
 * rejected), of one collection or, with `collection` NULL, of all; deleted ones included (a
 * refused create leaves its record deleted, its text in "held"), unlike fs_replica_list. A
 * JSON array shaped like fs_replica_list's (free with fs_free); NULL on failure. */
FS_API char* fs_replica_list_held(fs_replica* replica, const char* collection, fs_error* error);

/* The replica at a glance, as a JSON object (free with fs_free): {"pending", "conflicts",
 * "rejected", "records" (not deleted), "cursor" (the feed position pulled up to; "" before
 * the first sync), "server_url"}. NULL on failure. */
FS_API char* fs_replica_status(fs_replica* replica, fs_error* error);

/* Local changes not yet answered by the server; -1 on failure. */
FS_API int64_t fs_replica_pending_count(fs_replica* replica, fs_error* error);
/* A record's sync state; FS_STATE_UNKNOWN when absent or on failure. */
FS_API int fs_replica_record_state(fs_replica* replica, const char* collection, const char* id, fs_error* error);

/* ---- Sync ---- */

typedef struct fs_sync_report {
    int64_t pushed, applied, merged, conflicts, rejected, pulled;
    int64_t bytes_sent, bytes_received;
    int64_t duration_ms;
    int64_t decided; /* held changes whose reviewer's decision arrived (the record's "resolution") */
} fs_sync_report;

typedef enum fs_phase { FS_PHASE_PUSH = 0, FS_PHASE_PULL = 1, FS_PHASE_RETRY_WAIT = 2 } fs_phase;

/* Progress: called after each round trip and before each retry wait. Return non-zero to go
 * on, 0 to stop the sync (it ends with FS_ERR_CANCELLED; the next sync resumes). */
typedef int (*fs_progress_fn)(void* user, int phase, int64_t pushed, int64_t to_push, int64_t pulled,
                              int64_t bytes_sent, int64_t bytes_received);

/* Pushes the outbox and pulls until the server has nothing more. `progress` may be NULL;
 * `report` (may be NULL) is filled on success. Returns an fs_errc. Transient failures are
 * retried with exponential backoff and jitter before this returns them. */
FS_API int fs_replica_sync(fs_replica* replica, fs_progress_fn progress, void* user, fs_sync_report* report,
                           fs_error* error);

/* How sync bodies travel (protocol/SPEC.md, "Compression and encodings"). */
typedef enum fs_body_format { FS_BODY_JSON = 0, FS_BODY_CBOR = 1 } fs_body_format;

/* Makes later syncs send and ask for `body_format` (an fs_body_format) bodies, gzipped both
 * ways by the built-in HTTP client when `gzip` is non-zero (the default is JSON with gzip).
 * A transport callback receives the Content-Type and Accept headers and compresses as it
 * likes. Returns an fs_errc (FS_ERR_INVALID_ARGUMENT for an unknown format, FS_ERR_BUSY while
 * a sync runs). */
FS_API int fs_replica_set_encoding(fs_replica* replica, int body_format, int gzip, fs_error* error);

/* ---- Transport callback: the app sends HTTP with its own stack ---- */

typedef struct fs_http_response fs_http_response;

/* Sends one HTTP request and fills `response` with fs_http_response_set. `headers` holds
 * "Name: value\r\n" lines. Return 0 when a response (of any status) was received, non-zero
 * when none was (no network, timeout; the library retries with backoff). The callback must
 * not call fs_replica_sync. All pointers are valid only during the call. */
typedef int (*fs_transport_fn)(void* user, const char* method, const char* url, const char* headers,
                               const char* body, size_t body_len, int64_t timeout_ms, fs_http_response* response);

/* Sets the response's HTTP status and body (copied). Returns an fs_errc. */
FS_API int fs_http_response_set(fs_http_response* response, int status, const char* body, size_t body_len);

/* Makes the replica send its requests through `fn` (with `user` passed back) instead of the
 * built-in HTTP client; fn NULL restores the built-in one. In the embedded build (no Boost)
 * this is the only transport. Returns an fs_errc. */
FS_API int fs_replica_set_transport(fs_replica* replica, fs_transport_fn fn, void* user, fs_error* error);

/* For https:// server URLs, the built-in HTTP client trusts only the CA certificates in the
 * PEM file `ca_file` (e.g. a district's own CA); NULL or "" restores the system's store. The
 * server's certificate must also name the URL's host. Applies to later syncs; not kept in the
 * replica file (set it after each open). Returns an fs_errc: FS_ERR_INVALID_ARGUMENT if the
 * file cannot be read, FS_ERR_UNSUPPORTED in the embedded build, FS_ERR_BUSY during a sync. */
FS_API int fs_replica_set_ca_file(fs_replica* replica, const char* ca_file, fs_error* error);

/* ---- Attachments (protocol/SPEC.md, "Attachments") ---- */

/* Attaches the file at `file_path` (JPEG, PNG, WebP or PDF by its first bytes, 1 byte to
 * 10 MiB) to the record's field `field`: its bytes are copied beside the replica file
 * ("<replica path>.blobs/<sha256>"), its reference is appended to the field's array (or set,
 * for a field of type attachment) as an ordinary edit that the next sync sends, and its upload
 * is queued for fs_replica_upload. `name` (NULL or "" = the file's own name) is what people
 * see. Returns the reference as a JSON object {"sha256","size","content_type","name"} (free
 * with fs_free); NULL on failure: FS_ERR_INVALID_ARGUMENT (type, size, name over 255 bytes, a
 * field that holds something else), FS_ERR_NOT_FOUND (no such record or file),
 * FS_ERR_SCHEMA_VIOLATION, FS_ERR_STORAGE. */
FS_API char* fs_replica_attach(fs_replica* replica, const char* collection, const char* id, const char* field,
                               const char* file_path, const char* name, fs_error* error);
/* The same for `len` bytes in memory (a camera's picture, a browser's file); `name` is required. */
FS_API char* fs_replica_attach_bytes(fs_replica* replica, const char* collection, const char* id, const char* field,
                                     const void* bytes, size_t len, const char* name, fs_error* error);

/* Upload progress: called after each chunk the server acknowledged, with the blob's hash, the
 * bytes of it the server holds and its size, and the chunk bytes this call has sent. Return
 * non-zero to go on, 0 to stop (FS_ERR_CANCELLED; the next call resumes). */
typedef int (*fs_upload_progress_fn)(void* user, const char* sha256, int64_t sent, int64_t size,
                                     int64_t bytes_sent);

typedef struct fs_upload_report {
    int64_t completed;    /* blobs the server now holds whole */
    int64_t failed;       /* refused for good in this call (see fs_replica_upload_queue) */
    int64_t bytes_sent;   /* chunk bytes sent */
    int64_t waiting;      /* uploads still queued */
    int64_t duration_ms;
} fs_upload_report;

/* Sends queued uploads in chunks of 256 KiB, each blob resumed from the server's offset.
 * Separate from fs_replica_sync, which never waits for files, and callable from another
 * thread while it runs. `byte_budget` > 0 stops (successfully) before the next chunk once this
 * call has sent that many bytes; 0 = no budget. `progress` may be NULL; `report` (may be NULL)
 * is filled on success. Returns an fs_errc: a transient failure (FS_ERR_NETWORK,
 * FS_ERR_TIMEOUT, FS_ERR_SERVER_UNAVAILABLE, the day's quota) ends the call and leaves the blob
 * queued; FS_ERR_BUSY when another upload of this replica runs. A blob the server refuses for
 * good is marked failed in the queue; that is not an error of the call. */
FS_API int fs_replica_upload(fs_replica* replica, int64_t byte_budget, fs_upload_progress_fn progress, void* user,
                             fs_upload_report* report, fs_error* error);

/* The upload queue as a JSON array, oldest first (free with fs_free): [{"sha256","size",
 * "content_type","name","state","sent","error"?}], "state" one of "waiting", "sending",
 * "sent", "failed"; "sent" the bytes the server holds; "error" ({"code","message"}) for a
 * failed one. NULL on failure. */
FS_API char* fs_replica_upload_queue(fs_replica* replica, fs_error* error);

/* The local path of the blob `sha256` (free with fs_free): the replica's own copy, or fetched
 * from the server (resumed where an earlier call stopped), checked against its hash and kept
 * in the replica's cache (200 MiB, least recently used removed first). Read or copy the file
 * soon. NULL on failure: FS_ERR_NOT_FOUND (not on the server yet, or not this device's to
 * read), FS_ERR_BAD_RESPONSE (the bytes do not match the hash), FS_ERR_INVALID_ARGUMENT, the
 * network's codes. */
FS_API char* fs_replica_download(fs_replica* replica, const char* sha256, fs_error* error);

/* ---- Errors and memory ---- */

/* The code and message of the last failed call on this replica (FS_OK / "" if it succeeded).
 * The message lives until the next call on this replica from any thread. */
FS_API int fs_replica_last_error_code(const fs_replica* replica);
FS_API const char* fs_replica_last_error_message(const fs_replica* replica);

/* Frees a string returned by this library. NULL is allowed. */
FS_API void fs_free(void* p);

/* The library version, e.g. "0.1.0" (static storage). */
FS_API const char* fs_version(void);

#ifdef __cplusplus
}
#endif

#endif /* FIELDSYNC_FIELDSYNC_H */
