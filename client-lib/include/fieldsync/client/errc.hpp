#pragma once
// Errors of the client library (category "fieldsync.client").
//
// Every fallible call of the C++ API returns a `result<T>` (or a `result<void>`): a value, or
// an `error` carrying a std::error_code and a human message. Nothing in the public API throws
// for an expected failure; only std::bad_alloc may escape. Codes say whether a retry can help
// through classify(), which reuses protocol::retry_class: the replica's own retry loop reads
// that and nothing else.

#include <fieldsync/protocol/error.hpp>

#include <string>
#include <system_error>
#include <utility>

namespace fieldsync::client {

/// Stable numeric values: the C ABI (fieldsync.h, fs_errc) exposes the same numbers.
enum class errc {
    ok = 0,
    invalid_argument = 1,   // bad collection/id/unit, data not a JSON object, bad URL
    invalid_json = 2,       // text that is not JSON (C ABI and CLI input)
    invalid_utf8 = 3,       // a string that is not well-formed UTF-8
    schema_violation = 4,   // data refused by the local copy of the collection schema
    not_found = 5,          // patch/remove of a record the replica does not hold
    not_configured = 6,     // sync() without a server URL (or transport) configured
    storage = 7,            // the local SQLite file failed (disk full, corrupt, locked)
    network = 8,            // no connection, connection reset, DNS failure
    timeout = 9,            // the server did not answer in time
    server_unavailable = 10,// HTTP 5xx / 408 / 503 after every retry
    unauthorized = 11,      // HTTP 401: token missing, unknown or revoked
    forbidden = 12,         // HTTP 403
    bad_request = 13,       // HTTP 4xx other than the above: the server refused the request
    bad_response = 14,      // the server's answer is not a valid sync response
    cancelled = 15,         // the progress callback asked to stop
    busy = 16,              // another sync of this replica is running
    unsupported = 17,       // built without the default HTTP transport (embedded build)
    internal = 18,          // a bug: an invariant of the library did not hold
    server_too_old = 19,    // the server does not speak this library's protocol: upgrade the server
    client_too_old = 20,    // the server refuses pulls from this version (pending edits were
                            // pushed first): upgrade the app
    tls = 21,               // https: the server's certificate is not trusted (unknown CA, wrong
                            // host name, expired) or the TLS handshake failed (not a TLS server)
};

const std::error_category& client_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), client_category()}; }

/// transient: the same call may succeed later (network, timeout, 5xx, storage busy);
/// permanent: it cannot without a change by the user or the app.
protocol::retry_class classify(errc e) noexcept;

struct error {
    std::error_code code;
    std::string message;
};

inline error make_error(errc e, std::string message) { return {make_error_code(e), std::move(message)}; }

/// A value or an error (protocol/expected.hpp); `result<void>` for success without a value.
template <class T>
using result = protocol::basic_expected<T, error>;

}  // namespace fieldsync::client

template <>
struct std::is_error_code_enum<fieldsync::client::errc> : std::true_type {};
