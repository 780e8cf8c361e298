#pragma once
// Body encodings of the wire protocol (SPEC.md, "Compression and encodings"): gzip content
// coding and CBOR (RFC 8949) bodies, the alternative to JSON for links where bytes cost.
//
// Everything here takes untrusted bytes: inflation stops at a caller's cap, so a small
// compressed body cannot expand into gigabytes, and CBOR is prescanned without recursion for
// depth, well-formedness and UTF-8 before nlohmann's decoder (which recurses) sees it.
// All functions are pure and thread-safe; none throws for bad input.

#include <fieldsync/protocol/error.hpp>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace fieldsync::protocol {

using json = nlohmann::json;

/// Media types of a sync body.
inline constexpr std::string_view json_media_type = "application/json";
inline constexpr std::string_view cbor_media_type = "application/cbor";

/// Parses a CBOR body into the JSON value model. Refused with the same codes as parse_json:
/// too_deep (arrays/maps nested deeper than max_depth), bad_utf8 (a text string that is not
/// UTF-8), bad_json (not well-formed CBOR, trailing bytes, or an item JSON cannot carry: byte
/// strings, tags, undefined, simple values, non-finite floats, non-text map keys).
expected<json> parse_cbor(std::string_view body, int max_depth);

/// Encodes a value as CBOR (nlohmann's encoder: shortest integer forms, definite lengths).
std::string to_cbor(const json& value);

// gzip (RFC 1952) exists only in builds with zlib (every build with the server or the default
// client transport); FIELDSYNC_HAVE_ZLIB says so.
#if FIELDSYNC_HAVE_ZLIB
/// Compresses `data` as one gzip member.
std::string gzip(std::string_view data);

/// What gunzip found.
enum class gunzip_status { ok, too_large, malformed };

/// Inflates one gzip member into `out`. too_large as soon as the output would pass
/// `max_output` (the rest is never inflated); malformed for a bad header, checksum, truncated
/// stream or bytes after the member.
gunzip_status gunzip(std::string_view data, std::size_t max_output, std::string& out);
#endif

}  // namespace fieldsync::protocol
