#pragma once
// Routing and the endpoint handlers of server.hpp, apart from the connection handling in
// http_session. A request is looked at twice: admit() runs on its header alone, so a request
// that will be refused (unknown path, wrong method, no valid token, wrong media type) is
// answered before its body is read; handle() runs once the body is in. What a sync means
// (cursors, resets, the upgrade notice, the response) is the sync service's
// (sync/sync_service.hpp); the router does HTTP only: routes, authentication, limits, encodings.
//
// Thread safety: a router is shared by every session; its members are const or the store,
// which is thread-safe. Errors never escape as exceptions from admit() and handle() for
// expected failures; the session catches anything else and answers 500.

#include "http/guard.hpp"
#include "http/sync_waits.hpp"
#include "sync/sync_service.hpp"

#include <fieldsync/protocol/error.hpp>
#include <fieldsync/protocol/version.hpp>
#include <fieldsync/server/blob_store.hpp>
#include <fieldsync/server/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace fieldsync::server::detail {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

/// Receives a finished response. Always called on the session's executor, exactly once.
using respond_fn = std::function<void(response)>;

enum class endpoint {
    health, sync, record, history, conflicts, conflict, resolve, admin_page, reports, report, metrics, schema, me,
    enrol, app_page, devices, device_enrol, preview, upload_status, upload_chunk, blob,
    unmatched  // keep last: tests walk every endpoint up to it
};
/// The route as the log and the metrics name it: a template such as
/// "/v1/records/{collection}/{id}", never a path with ids in it.
std::string_view route_template(endpoint e) noexcept;

/// What handling a request found out that its log line reports (the session reads it after
/// the answer). Written on the session's executor only.
struct request_note {
    std::int64_t changes = -1;  // changes in a sync's change-set; -1: not a sync, or not decoded
    /// Set while a sync waits for a change (SPEC.md, "Waiting for changes"): ends the wait
    /// and answers it now. The session calls it, on its executor, when the client closes its
    /// connection meanwhile, so the wait's place is free at once.
    std::function<void()> leave_wait;
};

class http_metrics;

/// A request admit() refused: its answer, sent after `delay` (a failed sign-in past its
/// address's allowance waits, so guessing tokens stays slow; guard.hpp).
struct refusal {
    refusal(response r, std::chrono::milliseconds d = {}) : res(std::move(r)), delay(d) {}  // NOLINT: implicit
    response res;
    std::chrono::milliseconds delay{0};
};

/// A request that passed admit(): where it goes, its decoded path parameters and query, and
/// the device that sent it (none for health).
struct admitted {
    endpoint where = endpoint::health;
    std::vector<std::string> params;                            // decoded path segments
    std::vector<std::pair<std::string, std::string>> query;     // decoded, in order
    std::optional<device> dev;
    protocol::client_versions client;                           // from the handshake headers
    protocol::client_standing standing = protocol::client_standing::current;
    std::shared_ptr<request_note> note;                         // optional: filled by handle()
    boost::asio::ip::address remote;                            // the client's address
};

/// A JSON error response: {"error": {"code", "message"}} with the code's HTTP status.
response error_response(unsigned version, bool keep_alive, const protocol::error& err);
response json_response(unsigned version, bool keep_alive, http::status status, const json& body);
/// The same with a body that is JSON text already.
response json_text_response(unsigned version, bool keep_alive, http::status status, std::string body);

/// RFC 3986 percent-decoding; nullopt for a malformed escape. With `plus_is_space` (query
/// strings, HTML forms) '+' decodes to ' '.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);


/// Counts the change-sets handed to the store whose callback the store still holds. The store
/// runs and then destroys a callback on its writer thread, and what the callback owns (the
/// request, a work guard on the session's strand, the session itself) must go before the
/// server's io_context does: server::stop() waits here for the count to drop to zero.
class store_calls {
public:
    /// Held by a callback handed to the store; its destruction ends the call.
    class ticket {
    public:
        explicit ticket(store_calls& owner) : owner_(&owner) { owner.enter(); }
        ticket(const ticket&) = delete;
        ticket& operator=(const ticket&) = delete;
        ~ticket() { owner_->leave(); }

    private:
        store_calls* owner_;
    };

    /// Blocks until every ticket handed out is destroyed.
    void wait_idle();

private:
    void enter();
    void leave();

    std::mutex mutex_;
    std::condition_variable idle_;
    std::size_t count_ = 0;
};

/// What the attachment endpoints (http/blobs.hpp) work with; `store` null: the server keeps
/// no attachments (404).
struct blob_settings {
    std::shared_ptr<blob_store> store;
    std::int64_t max_blob_bytes = tuning::max_blob_bytes;
    std::int64_t daily_quota_bytes = tuning::blob_quota_bytes;
};

class router {
public:
    /// `min_client_protocol`: clients speaking an older protocol may push but not pull.
    /// `metrics` (optional) counts change outcomes and is rendered at GET /metrics; it and
    /// `connections` (open connections, for the gauge) must outlive the router.
    /// `max_waiting_syncs` and `max_sync_wait` bound the syncs that wait for a change (SPEC.md,
    /// "Waiting for changes"); a max_sync_wait of 0 makes every sync answer at once.
    router(store_roles st, address_guard& guard, std::int64_t min_client_protocol = protocol::oldest_protocol_version,
           http_metrics* metrics = nullptr, const std::atomic<std::size_t>* connections = nullptr,
           std::size_t max_waiting_syncs = tuning::max_waiting_syncs,
           std::chrono::milliseconds max_sync_wait = tuning::max_sync_wait, blob_settings blobs = {})
        : store_(st), guard_(guard), sync_(st.sync, min_client_protocol, max_sync_wait),
          waits_(st.sync, max_waiting_syncs), metrics_(metrics), connections_(connections), blobs_(std::move(blobs)) {}

    /// This server's versions, as told to older and newer clients.
    protocol::server_versions versions() const { return sync_.versions(); }

    /// Decides from the header (`req.body()` is not read yet) whether to read the body.
    /// `remote` is the client's address: failed sign-ins are counted per address. `route`
    /// (optional) receives the route the path matched, even when the request is refused.
    std::variant<admitted, refusal> admit(const request& req, const boost::asio::ip::address& remote,
                                          endpoint* route = nullptr) const;

    /// Answers an admitted request whose body is complete. `done` runs on `ex`; for POST
    /// /v1/sync that happens after the store's writer has made the change-set durable.
    void handle(admitted a, request req, const boost::asio::any_io_executor& ex, respond_fn done) const;

    /// Blocks until the store has released every callback of a change-set this router handed
    /// it (answered or not). Called by server::stop() once no session can submit any more.
    void wait_for_store() const { store_calls_.wait_idle(); }

    /// Answers every sync waiting for a change now and lets none wait from then on. Called by
    /// server::stop() before it waits for its threads, which a waiting sync would hold.
    void stop_waits() const { waits_.stop(); }
    /// Syncs waiting for a change now.
    std::size_t waiting_syncs() const { return waits_.waiting(); }

private:
    response get_record(const admitted& a, const request& req) const;
    response get_history(const admitted& a, const request& req) const;
    void sync(admitted a, request req, const boost::asio::any_io_executor& ex, respond_fn done) const;
    /// A pull with a wait: answered now if it has something to tell, else parked (sync_waits).
    void pull_or_wait(admitted a, request req, sync_plan plan, const boost::asio::any_io_executor& ex,
                      respond_fn done) const;
    /// The sync service's response to `plan`, encoded as the request asks.
    response sync_answer(const request& req, const sync_plan& plan, std::vector<protocol::change_result> results) const;

    response get_metrics(const request& req) const;
    response get_me(const admitted& a, const request& req) const;
    response enrol(const admitted& a, const request& req) const;

    store_roles store_;
    address_guard& guard_;
    mutable store_calls store_calls_;  // thread-safe
    sync_service sync_;  // what a POST /v1/sync means (sync/sync_service.hpp)
    mutable sync_waits waits_;  // syncs waiting for a change; thread-safe
    http_metrics* metrics_;
    const std::atomic<std::size_t>* connections_;
    blob_settings blobs_;  // attachments (http/blobs.hpp)
};

}  // namespace fieldsync::server::detail
