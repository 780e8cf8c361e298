#pragma once
// Sync bodies in the replica's chosen format (SPEC.md, "Compression and encodings"). gzip is
// not here: it is the default transport's business, invisible to the sync engine.

#include <fieldsync/client/replica.hpp>
#include <fieldsync/client/transport.hpp>
#include <fieldsync/protocol/error.hpp>

#include <string>
#include <string_view>

namespace fieldsync::client::detail {

/// The Content-Type (and Accept) of sync requests in `format`.
std::string_view media_type(body_format format);

/// The request body: JSON text or CBOR bytes.
std::string encode_body(const json& body, body_format format);

/// Parses a 200 answer by its Content-Type (CBOR or JSON, with the untrusted-input checks of
/// parse_cbor / parse_json). A transport that does not report the Content-Type (an app's own,
/// the C ABI callback) is read by the first byte: JSON objects start with '{' (after optional
/// whitespace), CBOR maps never do.
protocol::expected<json> decode_answer(const http_response& answer);

}  // namespace fieldsync::client::detail
