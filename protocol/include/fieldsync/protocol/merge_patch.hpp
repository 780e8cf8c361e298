#pragma once
// RFC 7396 merge patches made from two versions of a record: what a replica pushes for an
// edit (SPEC.md, "Ops") and what the server sends for a pulled change the replica already
// holds (SPEC.md, "Pulled field diffs").

#include <fieldsync/protocol/json_input.hpp>

namespace fieldsync::protocol {

/// A merge patch that turns `from` into `to` (objects). Exact when `to` holds no null value
/// (a merge patch cannot set a member to null); callers check contains_null first.
json merge_diff(const json& from, const json& to);

/// True if any value inside `j` (at any depth) is null.
bool contains_null(const json& j);

}  // namespace fieldsync::protocol
