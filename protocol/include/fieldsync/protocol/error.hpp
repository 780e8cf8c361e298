#pragma once
// Stable error codes shared by the server, the client library and the wire protocol.
// protocol/SPEC.md ("Errors") lists every code with its HTTP status and meaning; the string
// form (errc_name) is what travels on the wire and must never change once released.

#include <fieldsync/protocol/expected.hpp>

#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace fieldsync::protocol {

enum class errc {
    ok = 0,
    // request-level input errors (HTTP 400 unless noted)
    bad_json = 1,          // body is not valid JSON
    bad_utf8,              // body holds ill-formed UTF-8
    too_deep,              // JSON nested deeper than tuning::max_json_depth
    bad_request,           // well-formed JSON of the wrong shape (names the field)
    duplicate_change_id,   // the same change_id twice in one batch
    too_many_changes,      // more changes than tuning::max_changes_per_batch
    bad_cursor,            // cursor is not one this server issued
    body_too_large,        // 413
    header_too_large,      // 431
    unsupported_media_type,// 415
    not_found,             // 404: unknown path, record or conflict
    method_not_allowed,    // 405
    unauthorized,          // 401: missing, unknown or revoked token
    forbidden,             // 403
    timeout,               // 408: the client sent too slowly
    // per-change rejections (inside a 200 response)
    bad_field,             // a field of the change or its data is missing or mistyped
    bad_version,           // base_version negative, fractional or beyond int64
    unknown_collection,
    base_ahead,            // base_version > the head version
    unknown_base,          // base_version not in history (needed to merge or patch)
    schema_violation,      // data does not satisfy the collection's schema
    out_of_scope,          // the device may not write this unit
    // conflict review and abuse limits
    stale,                 // 409: the head moved since the reviewer looked; look again
    conflict_closed,       // 409: the conflict is already resolved or dismissed
    rate_limited,          // 429: too many failed sign-ins or requests from this address
    // enrolment (SPEC.md, "Enrolment")
    enrolment_used,        // 410: the enrolment code was exchanged already, by another device
    enrolment_expired,     // 410: the enrolment code's time ran out, or its device was revoked
    // server-side failures
    unavailable,           // 503: overloaded, shutting down, store busy
    storage_error,         // 500/507: the store failed; nothing was applied
    // the version handshake (SPEC.md, "Versions and the handshake")
    unsupported_protocol,  // 400: the client speaks a newer protocol than the server
    client_too_old,        // 426: below the server's minimum; pushes are still answered
    internal,              // 500
    // attachments (SPEC.md, "Attachments"); added last so earlier values keep their numbers
    blob_too_large,        // 413: an upload's Upload-Length is over the blob limit
    blob_type_refused,     // 415: not JPEG/PNG/WebP/PDF, by header or by magic bytes
    blob_hash_mismatch,    // 422: the bytes do not hash to the blob's name; nothing kept
    upload_offset,         // 409: the chunk's offset is not the server's; resume from its offset
    blob_quota,            // 429: the device's uploads for the day are over its allowance
    range_not_satisfiable, // 416: a download's Range starts past the end
};

/// How a caller should react to an error; the replica's retry loop reads this and nothing else.
enum class retry_class {
    none,       // not an error
    transient,  // network, busy, 5xx: retry the same request later with backoff
    again,      // stale or conflicting: fetch fresh state, then try again
    permanent,  // bad input, forbidden: retrying the same request cannot help
};

const std::error_category& protocol_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), protocol_category()}; }

/// The stable wire name of a code, e.g. "bad_json".
std::string_view errc_name(errc e) noexcept;
/// Inverse of errc_name; unknown names map to errc::internal.
errc errc_from_name(std::string_view name) noexcept;
/// The HTTP status a request-level error answers with.
int http_status(errc e) noexcept;
retry_class classify(errc e) noexcept;

/// An error with a human message; what travels as {"error": {"code", "message"}}.
struct error {
    errc code = errc::internal;
    std::string message;
};

template <class T>
using expected = basic_expected<T, error>;

}  // namespace fieldsync::protocol

template <>
struct std::is_error_code_enum<fieldsync::protocol::errc> : std::true_type {};
