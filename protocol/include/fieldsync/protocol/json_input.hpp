#pragma once
// Parsing untrusted JSON: UTF-8 and nesting depth are checked before nlohmann parses, so that
// each failure gets its own stable code (bad_utf8, too_deep, bad_json) and no input can drive
// the parser's recursion deep.

#include <fieldsync/protocol/error.hpp>
#include <nlohmann/json.hpp>
#include <string_view>

namespace fieldsync::protocol {

using json = nlohmann::json;

/// True if `text` is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

/// Parses a request body: checks UTF-8, then depth (<= max_depth), then JSON syntax.
expected<json> parse_json(std::string_view body, int max_depth);

}  // namespace fieldsync::protocol
