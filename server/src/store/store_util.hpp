#pragma once
// Small helpers shared by the SQLite store's files. Private to server/src/store.

#include <fieldsync/server/store.hpp>

#include "store/sqlite.hpp"

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
/// Reads id, name, unit_id, role, created_ms, revoked_ms from columns 0..5.
device read_device(sqlite::stmt& s);

}  // namespace fieldsync::server::store_util
