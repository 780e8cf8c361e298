#pragma once
// Where attachments' bytes live (SPEC.md, "Attachments"; ARCHITECTURE.md, "Attachments").
// Blobs are named by their SHA-256 and never change; an upload in progress is kept per device
// and hash until its last byte arrives and its hash is checked. The store (attachment_store)
// keeps what is known about each kept blob and which records name it; this interface keeps
// the bytes, so a deployment may put them elsewhere (a PostgreSQL table, an object store)
// without touching the HTTP layer.
//
// Thread safety: every member may be called from any thread at once; calls on the same
// upload (device, hash) are serialised by the implementation.

#include <fieldsync/protocol/error.hpp>
#include <fieldsync/protocol/expected.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fieldsync::server {

/// An upload not finished yet.
struct upload_state {
    std::string device_id;
    std::string sha256;
    std::int64_t length = 0;        // the Upload-Length it was begun with
    std::int64_t offset = 0;        // bytes held durably
    std::int64_t touched_ms = 0;    // last chunk written (wall clock)
};

/// A kept blob, as the bytes' side knows it.
struct blob_file {
    std::string sha256;
    std::int64_t size = 0;
    std::int64_t stored_ms = 0;     // when it was kept (wall clock)
};

class blob_store {
public:
    virtual ~blob_store() = default;

    /// The size of the kept blob, or nullopt when it is not kept.
    virtual protocol::expected<std::optional<std::int64_t>> size(const std::string& sha256) = 0;
    /// Bytes [offset, offset + length) of a kept blob (fewer at its end). not_found when not kept.
    virtual protocol::expected<std::string> read(const std::string& sha256, std::int64_t offset,
                                                 std::int64_t length) = 0;

    /// The device's upload of `sha256`: nullopt when it has none.
    virtual protocol::expected<std::optional<upload_state>> upload(const std::string& device_id,
                                                                   const std::string& sha256) = 0;
    /// Appends `bytes` at `offset` of the device's upload (begun when offset is 0 and none
    /// exists) and makes them durable before returning the new offset. upload_offset (with the
    /// held offset in the message's error) when `offset` is not the held offset; bad_request
    /// when `length` differs from the one the upload was begun with.
    virtual protocol::expected<std::int64_t> append(const std::string& device_id, const std::string& sha256,
                                                    std::int64_t length, std::int64_t offset,
                                                    std::string_view bytes) = 0;
    /// Hashes the finished upload and keeps it as the blob when the hash is its name (written
    /// durably, then visible under its name at once); forgets the upload either way.
    /// blob_hash_mismatch when the bytes hash otherwise (nothing is kept).
    virtual protocol::expected<void> complete(const std::string& device_id, const std::string& sha256) = 0;
    /// Forgets the device's upload (a refused first chunk, gc).
    virtual protocol::expected<void> forget_upload(const std::string& device_id, const std::string& sha256) = 0;

    /// Every unfinished upload (quota, gc).
    virtual protocol::expected<std::vector<upload_state>> uploads() = 0;
    /// Every kept blob (gc, backup).
    virtual protocol::expected<std::vector<blob_file>> blobs() = 0;
    /// Removes a kept blob (gc only: the caller has made sure no version names it).
    virtual protocol::expected<void> remove(const std::string& sha256) = 0;
};

/// Blobs in a folder: `DIR/ab/<sha256>` for kept blobs (written to a temporary name, fsynced,
/// renamed, the folder fsynced), `DIR/uploads/<device key>/<sha256>.<length>` for uploads in
/// progress (each chunk fsynced before it is acknowledged). The folder is made if missing.
/// Errors: storage_error when it cannot be made or written.
protocol::expected<std::shared_ptr<blob_store>> open_blob_dir(const std::string& dir);

/// The folder beside a SQLite store where its blobs live by default: "<store path>.blobs".
std::string default_blob_dir(const std::string& store_path);

/// What copy_blobs copied: blobs and their bytes (those the target held already are skipped).
struct blob_copy_report {
    std::int64_t blobs = 0;
    std::int64_t bytes = 0;
};
/// Copies every kept blob of the folder `from` that `to` lacks into `to` (made if missing):
/// each checked against its name while it is read, written to a temporary name, fsynced and
/// renamed. Never links: a backup shares no inode with the store. A missing `from` copies
/// nothing. storage_error (a blob whose bytes do not match its name is one) stops the copy.
protocol::expected<blob_copy_report> copy_blobs(const std::string& from, const std::string& to);

class attachment_store;

/// What gc_blobs removed (or would remove, on a dry run).
struct blob_gc_report {
    std::int64_t blobs = 0;             // kept blobs no version names
    std::int64_t bytes = 0;
    std::int64_t uploads = 0;           // unfinished uploads left untouched
    std::int64_t upload_bytes = 0;
};
/// Removes the blobs that no version of any record names and that were kept before
/// `before_ms`, and the uploads untouched since before `before_ms` (fieldsync-admin gc, with
/// the retention window). A blob a version names again meanwhile is kept.
protocol::expected<blob_gc_report> gc_blobs(attachment_store& st, blob_store& blobs, std::int64_t before_ms,
                                            bool dry_run);

}  // namespace fieldsync::server
