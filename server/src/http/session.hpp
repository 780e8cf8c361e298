#pragma once
// Connections: the listener accepts them, an http_session serves one (the structure of Beast's
// example/advanced/server/advanced_server.cpp: do_x/on_x pairs on a per-connection strand;
// over TLS too, as in its advanced_server_flex.cpp).
//
// Lifetime: sessions and the listener keep themselves alive through shared_from_this while an
// operation is pending; server_state tracks them weakly so stop() can reach each one.
// Thread safety: a session's members are touched only on its strand; server_state is shared
// and guarded by its mutex or atomics.

#include "http/http_metrics.hpp"
#include "http/router.hpp"

#include <fieldsync/server/server.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace boost::asio::ssl {
class context;
}

namespace fieldsync::server::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

class session_base;

struct server_state {
    server_state(server_options o, store_roles st)
        : options(std::move(o)),
          guard(options.max_connections_per_address, options.max_auth_failures, options.auth_failure_window,
                options.failed_sign_in_delay),
          routes(st, guard, options.min_client_protocol, &metrics, &connections, options.max_waiting_syncs,
                 options.max_sync_wait,
                 blob_settings{options.blobs, options.max_blob_bytes, options.blob_quota_bytes}) {}

    const server_options options;
    address_guard guard;                       // per-address connection and sign-in limits
    http_metrics metrics;                      // GET /metrics
    /// Set before the listener starts when the server speaks TLS; null for plain HTTP.
    std::shared_ptr<boost::asio::ssl::context> tls;
    std::atomic<std::size_t> connections{0};   // sessions counted against max_connections
    std::atomic<std::size_t> refusing{0};      // sessions answering 503 (over a cap)
    const router routes;                       // after what it points to
    std::atomic<bool> stopping{false};

    /// Registers a live session; returns its key for forget().
    std::uint64_t remember(const std::shared_ptr<session_base>& s);
    void forget(std::uint64_t key);
    /// Asks every live session to finish its request in flight and close.
    void shutdown_all();
    /// Closes the session that has waited longest for a request header; false if none waits.
    bool evict_idle();
    /// Live sessions, refused ones included.
    std::size_t sessions();

private:
    std::mutex mutex_;
    std::uint64_t next_key_ = 0;
    std::map<std::uint64_t, std::weak_ptr<session_base>> sessions_;
};

/// One connection. The HTTP logic is one class template over the stream (a plain
/// beast::tcp_stream or a beast::ssl_stream over one), defined and instantiated in
/// session.cpp; this is what the rest of the server sees of it.
class session_base {
public:
    virtual ~session_base() = default;
    /// Any thread: stop after the request in flight (an idle connection closes now).
    virtual void shutdown() = 0;
    /// Any thread: if the session is waiting for a request header (idle since `since`, a
    /// steady_clock count), claims it for eviction and closes it; false if it is not idle.
    virtual bool evict(std::int64_t since) = 0;
    /// Any thread: the steady_clock count since which the session waits for a request header
    /// (or, over TLS, for the handshake), 0 while a request is being read or answered.
    std::int64_t idle_since() const { return idle_since_.load(); }

protected:
    std::atomic<std::int64_t> idle_since_{0};  // for evict_idle() on other threads
};

/// Starts serving an accepted connection: plain HTTP, or a TLS handshake first when
/// state->tls is set. `refuse`: the connection is over a cap (answered 503 and closed on
/// plain HTTP; closed before any handshake on TLS). `counted`: it was counted against its
/// address's cap (released when the session ends).
void start_session(tcp::socket&& socket, const std::shared_ptr<server_state>& state, bool refuse, bool counted);

class listener : public std::enable_shared_from_this<listener> {
public:
    listener(net::io_context& ioc, std::shared_ptr<server_state> state);

    /// Opens, binds and listens; the bound port or the failure.
    beast::error_code open(const tcp::endpoint& endpoint);
    std::uint16_t port() const;
    void run();
    /// Any thread: closes the acceptor.
    void stop();

private:
    void do_accept();
    void on_accept(beast::error_code ec, tcp::socket socket);

    net::io_context& ioc_;
    tcp::acceptor acceptor_;
    net::steady_timer retry_;
    std::shared_ptr<server_state> state_;
    std::uint16_t port_ = 0;
};

}  // namespace fieldsync::server::detail
