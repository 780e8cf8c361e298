#pragma once
// The sync service: what one POST /v1/sync means, between HTTP (http/router.cpp: routes,
// authentication, limits, encodings) and storage (store.hpp: rows). Given an authenticated
// device, its decoded change-set and its version standing, it decides the cursor (a page
// after it, a reset, or a refusal), the upgrade notice, whether pulled records travel as diffs,
// and after the store has decided the push, the whole sync response (protocol/SPEC.md,
// "POST /v1/sync", "The feed and the cursor", "Versions and the handshake", "Pulled field
// diffs").
//
// Thread safety: const members only; the store is thread-safe.

#include <fieldsync/protocol/ids.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/version.hpp>
#include <fieldsync/server/store.hpp>
#include <fieldsync/server/tuning.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace fieldsync::server {

/// Cursors (SPEC.md, "The feed and the cursor"): the decimal seq of the last feed entry, with
/// "<epoch>." in front once the device has moved to another unit (store.hpp, scope_epoch).
struct cursor_position {
    std::int64_t after_seq = 0;
    bool restarted = false;  // of the server's form but at no position of the device's feed now
};
/// nullopt: not of the server's form (400 bad_cursor). A cursor of another epoch than the
/// device's is `restarted` (the device moved, or the store was restored from a backup).
std::optional<cursor_position> parse_cursor(std::string_view text, std::int64_t epoch);
std::string format_cursor(std::int64_t epoch, std::int64_t seq);

/// Cursors and query numbers take one form only, protocol::parse_decimal (ids.hpp), so
/// anything else is refused rather than half-parsed.
using protocol::parse_decimal;

/// What a sync asks of the feed once its push is decided; made by sync_service::plan.
struct sync_plan {
    device dev;                              // whose sync: its scope, and what it acknowledges
    std::int64_t after_seq = 0;
    std::int64_t limit = 0;
    std::optional<std::string> sent_cursor;  // echoed on an empty page, unless it restarted
    bool reset = false;                      // the cursor named no position: start over
    std::optional<protocol::upgrade_notice> upgrade;  // the client is older than the server
    bool diffs = false;                      // send records the device holds as field diffs
    std::vector<std::string> held;           // conflict ids whose outcome the device waits for
    /// How long the sync may wait for a change when its answer would tell nothing new (SPEC.md,
    /// "Waiting for changes"): the request's wait_ms, lowered to the server's maximum; 0 for
    /// a sync that pushes.
    std::chrono::milliseconds wait{0};
};

/// A refusal of the whole sync, with the server's versions when it is the handshake's.
struct sync_refusal {
    protocol::error err;
    std::optional<protocol::server_versions> versions;
};

class sync_service {
public:
    /// `min_client_protocol`: clients speaking an older protocol may push but not pull.
    /// `max_wait`: the longest a sync may wait for a change (a longer wait_ms is lowered).
    sync_service(sync_store& st, std::int64_t min_client_protocol,
                 std::chrono::milliseconds max_wait = tuning::max_sync_wait)
        : store_(st), min_client_protocol_(min_client_protocol), max_wait_(max_wait) {}

    /// This server's versions, as told to older and newer clients.
    protocol::server_versions versions() const;

    /// Decides what the sync of `cs` will pull, or refuses it whole (bad_cursor; a client
    /// below the minimum with nothing to push: client_too_old). A client that named no
    /// protocol (`client.named` false) predates the upgrade notice and is not sent one.
    std::variant<sync_plan, sync_refusal> plan(const device& dev, const protocol::change_set& cs,
                                               const protocol::client_versions& client,
                                               protocol::client_standing standing) const;

    /// The response: the push's `results` and the page the plan asks for. Errors are the
    /// store's.
    protocol::expected<protocol::sync_response> respond(const sync_plan& plan,
                                                        std::vector<protocol::change_result> results) const;

private:
    sync_store& store_;
    const std::int64_t min_client_protocol_;
    const std::chrono::milliseconds max_wait_;
};

/// The answer to a pull tells the device nothing new, so a sync that asked to wait may wait
/// for a change instead (SPEC.md, "Waiting for changes"): no results, no records or drops, no
/// reset, no held outcome, no required upgrade. (An upgrade notice that is not required
/// comes on every answer to an older client: it does not count.)
bool tells_nothing(const protocol::sync_response& r);

/// "this server speaks protocols 1 to 2 and serves clients of ...": for refusal messages.
std::string describe(const protocol::server_versions& v);

}  // namespace fieldsync::server
