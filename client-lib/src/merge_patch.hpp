#pragma once
// RFC 7396 merge patches as the outbox sends them (see sync.cpp, "wire form").

#include <nlohmann/json.hpp>

namespace fieldsync::client::detail {

/// A merge patch that turns `from` into `to` (objects). Exact when `to` holds no null value
/// (a merge patch cannot set a member to null); callers check contains_null first.
nlohmann::json merge_diff(const nlohmann::json& from, const nlohmann::json& to);

/// True if any value inside `j` (at any depth) is null.
bool contains_null(const nlohmann::json& j);

}  // namespace fieldsync::client::detail
