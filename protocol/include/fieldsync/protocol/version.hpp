#pragma once
// Protocol and schema versions and the handshake (SPEC.md, "Versions and the handshake").
// A client names its versions in two request headers; the server answers an older client
// with an `upgrade` notice, a client below its minimum by refusing pulls (never pushes), and
// a newer client with `unsupported_protocol`.

#include <fieldsync/protocol/json_input.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace fieldsync::protocol {

/// The protocol this code speaks. 2 = 1 + the handshake and pulled field diffs.
inline constexpr std::int64_t protocol_version = 2;
/// The oldest protocol a server of this code can still decode (and so accept pushes from).
inline constexpr std::int64_t oldest_protocol_version = 1;

inline constexpr std::string_view protocol_header = "Fieldsync-Protocol";
inline constexpr std::string_view schema_header = "Fieldsync-Schema";

/// What a client says it is. An absent header means 1 (clients before the handshake).
struct client_versions {
    std::int64_t protocol = 1;
    std::int64_t schema = 1;
    bool named = false;         // it sent Fieldsync-Protocol, so it can read an upgrade notice
};

/// What a server is, as it tells an older or newer client.
struct server_versions {
    std::int64_t protocol = protocol_version;         // the newest it speaks
    std::int64_t min_protocol = oldest_protocol_version;  // the oldest it still serves pulls to
    std::int64_t schema = 1;
    std::int64_t min_schema = 1;                      // the oldest client schema it serves pulls to
};

/// The `upgrade` member of a sync answer.
struct upgrade_notice {
    bool required = false;      // the client is below the minimum: its pulls are refused
    server_versions server;
};

/// A request header's value: a decimal integer from 1 to 2^63-1; nullopt otherwise.
std::optional<std::int64_t> parse_version(std::string_view text) noexcept;

/// How the server sees a client.
enum class client_standing {
    current,    // same versions as the server, or newer in schema only
    older,      // older protocol or schema, still served: told it may upgrade
    too_old,    // below the minimum: its pushes are answered, its pulls refused
    too_new,    // speaks a protocol the server does not: refused
};
client_standing standing(const client_versions& c, const server_versions& s) noexcept;

json encode(const server_versions& v);
json encode(const upgrade_notice& u);
/// Reads the fields of encode(server_versions) (extra members ignored); nullopt if malformed.
std::optional<server_versions> decode_server_versions(const json& j);
std::optional<upgrade_notice> decode_upgrade_notice(const json& j);

}  // namespace fieldsync::protocol
