#pragma once
// Limits that are part of the protocol contract (both sides must agree), each with its reason.
// Server-only tunables live in server/include/fieldsync/server/tuning.hpp.

#include <cstddef>
#include <cstdint>

namespace fieldsync::protocol::tuning {

/// Deepest JSON nesting accepted. Records of the default schema nest 3 levels; 32 leaves room
/// for app data while keeping recursive code (parse, merge, validate) far from stack limits.
inline constexpr int max_json_depth = 32;

/// Changes in one change-set. A bounded batch keeps one request's commit short (other devices
/// wait behind it in the writer) and its response small enough for a 2G link to finish.
inline constexpr std::size_t max_changes_per_batch = 1000;

/// Conflict ids a sync request may name in `held` (SPEC.md, "Decisions reaching the device"):
/// a client with more waiting asks for the oldest first and the rest on later syncs.
inline constexpr std::size_t max_held_per_sync = 1000;

/// Longest id (change_id, record id, unit_id, batch_id) in bytes: a UUID is 36, a ULID 26;
/// 128 allows prefixed ids without letting ids become payloads.
inline constexpr std::size_t max_id_bytes = 128;

/// Longest collection name in bytes.
inline constexpr std::size_t max_collection_bytes = 64;

/// Pull page size when the client names none, and the most it may ask for. Small pages make
/// progress on links that drop; the cap bounds a response's size and its read transaction.
inline constexpr std::int64_t default_pull_limit = 500;
inline constexpr std::int64_t max_pull_limit = 5000;

/// How far ahead of the server's clock a client's hybrid logical clock may be, in ms. Phones
/// with a wrong date would otherwise win every last-writer-wins collision for months; beyond
/// this bound the server stamps the change with its own clock (SPEC.md, "Clocks").
inline constexpr std::int64_t max_hlc_ahead_ms = 5 * 60 * 1000;

}  // namespace fieldsync::protocol::tuning
