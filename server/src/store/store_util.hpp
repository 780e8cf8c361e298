#pragma once
// Small helpers shared by the store's files. Private to server/src/store.

#include <fieldsync/server/store.hpp>

#include "store/sql.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace fieldsync::server::store_util {

std::string hex(const unsigned char* p, std::size_t n);
/// `bytes` random bytes from the system CSPRNG, as hex. Throws if the system has none.
std::string random_hex(std::size_t bytes);
/// A random (version 4) UUID.
std::string random_uuid();
/// SHA-256 of `text`, raw bytes.
std::string sha256(std::string_view text);
/// A JSON column as stored ("" is SQL NULL, read back as null).
json parse_stored(const std::string& text);
std::string dump(const json& j);
/// A storage exception as the error a caller gets: `unavailable` when busy, else storage_error.
protocol::error storage_failure(const std::exception& e);
/// The answer `rejected` for one change: the error, and the head version when one is known.
protocol::change_result rejected_answer(std::string change_id, protocol::error err, std::int64_t version = 0);
/// The columns read_device reads, in its order (FROM devices d LEFT JOIN units u).
inline constexpr const char* k_device_columns =
    "d.id, d.name, d.unit_id, d.role, d.created_ms, d.revoked_ms, "
    "coalesce(u.path, '/' || d.unit_id || '/'), d.scope_epoch, "
    "d.ack_epoch, d.ack_seq, d.next_seq, d.safe_seq, d.ack_ms";
/// How many columns k_device_columns names.
inline constexpr int k_device_column_count = 13;
device read_device(sql::stmt& s);

/// One new version of a record: its history row, a drop notice when the record leaves its
/// old subtree, and the head. The write path, conflict resolution and the relay hub's mirror
/// all write a version this way; the caller has taken `seq` from the feed's counter.
struct version_row {
    std::string_view collection, id, unit_id;
    std::string_view path;                  // the unit's path (units.path)
    std::int64_t version = 0;
    bool deleted = false;
    std::optional<std::string> data;        // the record as stored; none when deleted
    std::string_view writer;                // the device (history.device_id, heads.writer)
    std::string_view change_id;
    std::string_view hlc;
    std::int64_t server_ms = 0;
    std::string_view how;                   // applied, merged, resolved, mirrored
    std::optional<std::string> lost;        // values that lost a collision or a resolution
    std::int64_t seq = 0;
    /// The head's path before this version, when there was one: the devices of that subtree
    /// get a drop notice if it differs from `path`.
    std::optional<std::string_view> old_path;
    /// A mirrored version the hub's history may hold already (a record that left the hub's
    /// scope and came back): that row stays.
    bool history_may_hold = false;
};
void write_version(sql::db& db, const version_row& v);
/// Records that the record (collection, id) names every attachment in `data`, so the devices
/// that may read the record may fetch them: called for each version (write_version) and for the
/// incoming side of a conflict, which its reviewers must see before any version holds it.
void write_blob_refs(sql::db& db, std::string_view collection, std::string_view id, const json& data);

/// The upper bound of a subtree's path range: paths p with path <= p < subtree_end(path).
/// Paths end with '/', and '0' is the character after '/'.
std::string subtree_end(std::string_view path);
/// The path of the deepest unit that holds both paths ("/" if none).
std::string common_path(std::string_view a, std::string_view b);

}  // namespace fieldsync::server::store_util
