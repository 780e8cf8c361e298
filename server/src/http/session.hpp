#pragma once
// Connections: the listener accepts them, an http_session serves one (the structure of Beast's
// example/advanced/server/advanced_server.cpp: do_x/on_x pairs on a per-connection strand).
//
// Lifetime: sessions and the listener keep themselves alive through shared_from_this while an
// operation is pending; server_state tracks them weakly so stop() can reach each one.
// Thread safety: a session's members are touched only on its strand; server_state is shared
// and guarded by its mutex or atomics.

#include "http/router.hpp"

#include <fieldsync/server/server.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace fieldsync::server::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

class http_session;

struct server_state {
    server_state(server_options o, store& st)
        : options(std::move(o)),
          guard(options.max_connections_per_address, options.max_auth_failures, options.auth_failure_window),
          routes(st, guard, options.min_client_protocol) {}

    const server_options options;
    address_guard guard;                       // per-address connection and sign-in limits
    const router routes;
    std::atomic<std::size_t> connections{0};   // sessions counted against max_connections
    std::atomic<std::size_t> refusing{0};      // sessions answering 503 (over a cap)
    std::atomic<bool> stopping{false};

    /// Registers a live session; returns its key for forget().
    std::uint64_t remember(const std::shared_ptr<http_session>& s);
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
    std::map<std::uint64_t, std::weak_ptr<http_session>> sessions_;
};

class http_session : public std::enable_shared_from_this<http_session> {
public:
    /// `refuse`: the connection is over a cap; it is answered 503 and closed. `counted`: the
    /// connection was counted against its address's cap (released when the session ends).
    http_session(tcp::socket&& socket, std::shared_ptr<server_state> state, bool refuse, bool counted);
    ~http_session();

    void run();
    /// Any thread: stop after the request in flight (an idle connection closes now).
    void shutdown();
    /// Any thread: if the session is waiting for a request header (idle since `since`, a
    /// steady_clock count), claims it for eviction and closes it; false if it is not idle.
    bool evict(std::int64_t since);
    /// Any thread: the steady_clock count since which the session waits for a request header,
    /// 0 while a request is being read or answered.
    std::int64_t idle_since() const { return idle_since_.load(); }

private:
    void do_read_header();
    void on_read_header(beast::error_code ec, std::size_t bytes);
    void on_continue_sent(beast::error_code ec, std::size_t bytes);
    void do_read_body();
    void on_read_body(beast::error_code ec, std::size_t bytes);
    void on_request();
    void on_read_error(beast::error_code ec);
    void send(std::uint64_t request_no, response res);
    void on_write(bool close, beast::error_code ec, std::size_t bytes);
    void log_refusal(const response& res) const;
    void do_close(bool linger);
    void do_linger();
    void on_linger(beast::error_code ec, std::size_t bytes);

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::shared_ptr<server_state> state_;
    const bool refuse_;
    const bool counted_;
    net::ip::address remote_;           // for per-address limits and the log
    std::uint64_t key_ = 0;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<admitted> admitted_;
    // The current request as log_refusal() names it; kept apart because the request and
    // admitted_ are handed on to the router once the body is in.
    std::string log_method_, log_path_, log_device_;
    std::shared_ptr<response> res_;
    std::shared_ptr<http::response<http::empty_body>> continue_;
    std::vector<char> linger_buf_;
    std::uint64_t request_no_ = 0;      // which request a late answer belongs to
    bool responded_ = false;            // the current request has its answer
    bool waiting_for_header_ = false;   // an idle or not yet started request: safe to cut
    std::atomic<std::int64_t> idle_since_{0};  // waiting_for_header_, for evict_idle() on other threads
    bool stopping_ = false;
    std::chrono::steady_clock::time_point stop_deadline_{};
};

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
