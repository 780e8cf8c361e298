#pragma once
// The messages of POST /v1/sync and their JSON codecs. SPEC.md, "POST /v1/sync", is the
// contract; this header follows it field by field.
//
// Decoding never throws: a malformed envelope is an `error` for the whole request (HTTP 400),
// while a malformed change is kept as a `change_entry` with `rejected` set, so one bad record
// never blocks the rest of its batch.

#include <fieldsync/protocol/error.hpp>
#include <fieldsync/protocol/hlc.hpp>
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/version.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fieldsync::protocol {

enum class op_kind {
    put,    // data is the whole record
    patch,  // data is a JSON merge patch (RFC 7396) against the record at base_version
    del,    // "delete" on the wire; data absent
};
std::string_view op_name(op_kind op) noexcept;

struct change {
    std::string change_id;
    std::string collection;
    std::string id;
    std::string unit_id;
    op_kind op = op_kind::put;
    std::int64_t base_version = 0;
    json data;                  // object for put/patch, null for delete
    std::optional<hlc> stamp;   // "hlc" on the wire; absent = the server stamps its own
};

/// One change of a decoded change-set: either a change to apply, or a change that failed
/// validation and is answered `rejected` with `rejected->code` (change_id is always set).
struct change_entry {
    change c;
    std::optional<error> rejected;
};

struct change_set {
    std::string batch_id;
    std::vector<change_entry> changes;
    std::string cursor;                 // "" = from the beginning
    std::int64_t limit = 0;             // 0 = the server's default page size
    bool diffs = false;                 // the client takes pulled records as field diffs
    /// "held" on the wire: conflict ids of this device's changes the server holds for review,
    /// whose outcome the client waits for (SPEC.md, "Decisions reaching the device").
    std::vector<std::string> held;
    /// "wait_ms" on the wire: a pull-only sync whose answer would tell the device nothing new
    /// may be held this long for a change (SPEC.md, "Waiting for changes"); 0 = answer at once.
    /// The server lowers it to its own maximum.
    std::int64_t wait_ms = 0;
};

// queued: a relay hub holds the change for its upstream; not final (SPEC.md, "Statuses").
enum class change_status { applied, merged, conflict, rejected, queued };
std::string_view status_name(change_status s) noexcept;

struct change_result {
    std::string change_id;
    change_status status = change_status::rejected;
    std::int64_t version = 0;             // the record's head version after this change
    std::optional<std::string> conflict_id;
    std::optional<error> err;             // set when status == rejected
};

struct pulled_change {
    std::string collection;
    std::string id;
    std::string unit_id;
    std::int64_t version = 0;
    bool deleted = false;
    json data;                            // null when deleted; the merge patch when diff_base is set
    /// "base" on the wire: `data` is an RFC 7396 merge patch ("diff") that turns version
    /// diff_base of the record into `version` (SPEC.md, "Pulled field diffs").
    std::optional<std::int64_t> diff_base;
    /// The server's stored JSON text of `data`, read from its store and not parsed (`data` is
    /// then null): a JSON answer carries it as it is (encode_json). Empty when `data` holds
    /// the record, as always on the client. materialize() turns it into `data`.
    std::string data_json;
};

/// Parses `data_json` into `data`, for code that needs the tree (field diffs, CBOR); a no-op
/// without it. Throws nlohmann's parse_error on text that is not JSON (a damaged store).
void materialize(pulled_change& p);

/// A record that left the device's scope: the device deletes its copy (SPEC.md, "Scopes").
struct dropped_record {
    std::string collection;
    std::string id;
};

/// What became of a change the server held for review, told to the device that sent it
/// ("resolutions" on the wire; SPEC.md, "Decisions reaching the device").
struct resolution_notice {
    std::string conflict_id;
    std::string status;                   // "resolved" | "dismissed" | "unknown"
    std::string choice;                   // keep_head | take_incoming | pick | edit | dismiss ("" when unknown)
    std::string note;                     // the reviewer's note ("" when none)
    std::int64_t version = 0;             // the version the resolution wrote (0: none, a dismissal)
    std::int64_t closed_ms = 0;           // when it was decided (server clock)
    std::string reviewer_unit_id;         // the deciding reviewer's unit
    std::string reviewer_unit_name;
};
json encode(const resolution_notice& n);
expected<resolution_notice> decode_resolution_notice(const json& j);

struct sync_response {
    std::vector<change_result> results;
    std::vector<pulled_change> changes;
    std::vector<dropped_record> dropped;  // "dropped" on the wire; absent when empty
    /// The device's scope changed (it was moved): the pull starts over from the beginning of
    /// its new scope, and the device first deletes every copy it holds that is neither
    /// pending nor awaiting review. "reset": true on the wire; absent otherwise.
    bool reset = false;
    std::string cursor;
    bool more = false;
    std::optional<hlc> server_hlc;        // the server's clock, for clients to observe
    /// The client is older than the server (SPEC.md, "Versions and the handshake"); absent
    /// otherwise.
    std::optional<upgrade_notice> upgrade;
    /// The server store's incarnation (SPEC.md, "After a restore"): it changes when the store
    /// is restored from a backup. "incarnation" on the wire; absent from servers without one.
    std::string incarnation;
    /// Outcomes of the held changes the request named that are decided (or unknown here);
    /// absent when empty.
    std::vector<resolution_notice> resolutions;
};

/// Decodes the body of POST /v1/sync (already parsed by parse_json).
expected<change_set> decode_change_set(const json& body);
/// The same, taking each change's data out of `body` instead of copying it (the server's
/// request path: a record is parsed once and stored from that tree).
expected<change_set> decode_change_set(json&& body);
/// Decodes one change object; used by decode_change_set and by tests.
change_entry decode_change(const json& item);

json encode(const change& c);
json encode(const change_set& cs);      // entries with `rejected` are encoded as their change
json encode(const change_result& r);
/// encode(r).dump(), written straight into the text: the records the server read from its
/// store (data_json) are spliced in as they are, not parsed and serialised again (issue 18).
/// Strings that are not valid UTF-8 are written with U+FFFD, as the server's answers are.
std::string encode_json(const sync_response& r);
/// encode(r).dump(), written straight into the text (the server's remembered answers).
std::string encode_json(const change_result& r);
json encode(const pulled_change& p);
json encode(const sync_response& r);
json encode(const error& e);            // {"error": {"code", "message"}}

expected<change_result> decode_change_result(const json& j);
expected<pulled_change> decode_pulled_change(const json& j);
expected<sync_response> decode_sync_response(const json& j);
/// Reads {"error": {"code", "message"}}; nullopt if `j` is not of that shape.
std::optional<error> decode_error(const json& j);

/// Accepts only JSON integers in [min, INT64_MAX]; fractional, string, or out-of-range
/// numbers are refused (nlohmann keeps 2^63 and above as unsigned, fractions as double).
std::optional<std::int64_t> as_int64(const json& j, std::int64_t min = 0);

/// Ids: non-empty, at most tuning::max_id_bytes, printable ASCII without '/' (they appear in
/// URL paths) or whitespace.
bool valid_id(std::string_view id) noexcept;

}  // namespace fieldsync::protocol
