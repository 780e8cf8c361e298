#pragma once
// The merge rule of design.md, written once and used by the server's store and the client
// library (SPEC.md, "The merge rule"). Pure functions: no I/O, no clock, no globals.

#include <fieldsync/protocol/error.hpp>
#include <fieldsync/protocol/hlc.hpp>
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/schema.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fieldsync::protocol {

/// One stored version of a record.
struct version_state {
    bool deleted = false;
    json data;                  // object; null when deleted
};

/// The head of a record as the store holds it.
struct head_state {
    std::int64_t version = 0;
    version_state state;
    hlc stamp;                  // HLC of the write that made this version
    std::string writer;         // device id of that write (tie-break for equal HLCs)
};

/// What is being written.
struct incoming_change {
    op_kind op = op_kind::put;
    std::int64_t base_version = 0;
    const json* data = nullptr; // put: whole record; patch: merge patch; delete: unused
    hlc stamp;
    std::string writer;
};

enum class merge_kind {
    fast_forward,   // base == head (or a new record): becomes head+1         -> "applied"
    merged,         // concurrent, no collision (or lww decided): head+1      -> "merged"
    unchanged,      // concurrent, but the merge equals the head: stays head  -> "merged"
    conflict,       // review policy and fields collide: head stays           -> "conflict"
    rejected,       // base ahead of head, unknown base, bad patch            -> "rejected"
};

struct merge_outcome {
    merge_kind kind = merge_kind::rejected;
    version_state result;               // the new head (fast_forward, merged, unchanged)
    version_state incoming;             // the incoming record made whole (patch applied)
    std::vector<std::string> collisions;// JSON pointers of colliding fields ("" = whole record)
    json lost = json::object();         // lww: pointer -> the value that lost
    std::optional<error> err;           // rejected
};

/// Decides a change against the head of its record.
///   head: the record's head, nullopt if the store has never seen the id.
///   base: the stored version `incoming.base_version` when 0 < base_version < head version,
///         nullopt if the caller has no such version (then: rejected unknown_base). Ignored
///         otherwise (base_version 0 merges against an empty record; == head uses the head).
change_status to_status(merge_kind k) noexcept;
merge_outcome decide(const std::optional<head_state>& head, const std::optional<version_state>& base,
                     const incoming_change& incoming, merge_policy policy);

/// Three-way merge of JSON objects by field; nested objects merge by field, arrays and
/// scalars are values. A field missing on one side differs from any value. Colliding
/// fields are appended to `collisions` as JSON pointers; their result takes `prefer`'s value.
enum class prefer { head, incoming };
json merge3(const json& base, const json& head, const json& incoming, prefer on_collision,
            std::vector<std::string>& collisions);

}  // namespace fieldsync::protocol
