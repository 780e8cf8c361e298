#pragma once
// Content negotiation of the HTTP layer (SPEC.md, "Compression and encodings"): gzip request
// bodies inflated under the body limit, gzip answers for clients that accept them, and CBOR
// bodies beside JSON. Kept apart from the router and the session so both only call in here.
//
// Thread safety: free functions on the caller's own messages. None throws for bad input.

#include "http/router.hpp"

#include <fieldsync/protocol/error.hpp>
#include <fieldsync/protocol/messages.hpp>

#include <optional>

namespace fieldsync::server::detail {

/// A request's Content-Encoding is one the server reads (none, identity or gzip).
bool content_encoding_supported(const request& req);

/// Replaces a gzip body by its inflation, at most `limit` bytes (the same limit as a plain
/// body). nullopt when the body is ready; else the refusal: body_too_large (413, the inflated
/// body would pass the limit), bad_request (400, not a well-formed gzip member) or
/// unsupported_media_type (415, another coding).
std::optional<protocol::error> decode_content_encoding(request& req, std::size_t limit);

/// The request's Content-Type is a sync body type (JSON or CBOR, parameters ignored).
bool is_sync_media_type(const request& req);

/// Parses a sync body by its Content-Type, with parse_json's or parse_cbor's checks.
protocol::expected<json> parse_body(const request& req);

/// A 2xx answer: CBOR when the request's Accept names application/cbor (and not with q=0),
/// else JSON.
response encoded_response(const request& req, http::status status, const json& body);

/// The answers of every JSON API handler: a 200 with `body` (CBOR or JSON, as above), or an
/// error, whose body is always JSON (SPEC.md, "CBOR bodies").
response answer(const request& req, const json& body);
/// A sync answer: JSON written straight from the response (protocol::encode_json, stored
/// records spliced in), or CBOR from its tree.
response answer(const request& req, const protocol::sync_response& body);
response answer(const request& req, const protocol::error& e);
inline protocol::error err(protocol::errc code, std::string message) { return protocol::error{code, std::move(message)}; }

/// The request's Accept-Encoding allows gzip.
bool accepts_gzip(const request& req);

/// Gzips the body in place when it is large enough to gain (tuning::gzip_min_bytes) and not
/// encoded already; adds Vary: Accept-Encoding either way, for caches between. Never throws:
/// if compression fails the answer stays plain.
void gzip_response(response& res);

}  // namespace fieldsync::server::detail
