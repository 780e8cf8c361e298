#pragma once
// The blob folder beside a replica file (`<replica path>.blobs/`): the bytes of attached files
// waiting to be uploaded, and of downloaded ones, each named by its SHA-256. Which files the
// replica holds and why (queued upload, cache) is in the replica's SQLite file (uploads and
// blob_files tables, store/local_store.cpp); this file only moves bytes.
//
// A complete blob appears under its name only once its bytes are durable: written to a
// temporary name, fsynced, renamed, and the folder fsynced. A download in progress lives in
// `<sha256>.part` and grows chunk by chunk. Errors throw detail::failure (errc::storage).

#include "../failure.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fieldsync::client::detail {

class blob_folder {
public:
    /// The folder for the replica at `replica_path`; made on first write.
    explicit blob_folder(const std::string& replica_path) : dir_(replica_path + ".blobs") {}

    const std::string& dir() const noexcept { return dir_; }
    std::string path(std::string_view sha256) const { return dir_ + "/" + std::string(sha256); }
    std::string part_path(std::string_view sha256) const { return path(sha256) + ".part"; }

    /// The size of the complete blob, nullopt when the folder does not hold it.
    std::optional<std::int64_t> size(std::string_view sha256) const;
    /// Stores `bytes` as the blob `sha256` (temp name, fsync, rename, fsync of the folder).
    void put(std::string_view sha256, std::string_view bytes);
    /// Up to `length` bytes of the blob from `offset`.
    std::string read(std::string_view sha256, std::int64_t offset, std::size_t length) const;
    /// The whole blob.
    std::string read_all(std::string_view sha256) const;
    void remove(std::string_view sha256);

    /// A download in progress: bytes held so far (0 when none), then appended to, made durable
    /// per chunk, and either promoted to the blob (after the caller checked its hash) or dropped.
    std::int64_t part_size(std::string_view sha256) const;
    void append_part(std::string_view sha256, std::string_view bytes);
    void drop_part(std::string_view sha256);
    /// The SHA-256 of the part file's bytes.
    std::string hash_part(std::string_view sha256) const;
    void promote_part(std::string_view sha256);

private:
    void ensure_dir();
    std::string dir_;
};

/// Reads a whole file (attach from a path). Errors: not_found when it does not exist,
/// invalid_argument when it is larger than `limit` bytes or not a regular file, storage.
std::string read_file_up_to(const std::string& path, std::int64_t limit);

}  // namespace fieldsync::client::detail
