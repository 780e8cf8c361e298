#include "http/session.hpp"

#include "http/encoding.hpp"
#include "http/internal_error.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <poll.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <type_traits>

namespace fieldsync::server::detail {

namespace proto = fieldsync::protocol;
namespace ssl = net::ssl;
using proto::errc;

// ---- server_state -------------------------------------------------------------------------

std::uint64_t server_state::remember(const std::shared_ptr<session_base>& s) {
    std::lock_guard lock(mutex_);
    const auto key = ++next_key_;
    sessions_.emplace(key, s);
    return key;
}

void server_state::forget(std::uint64_t key) {
    std::lock_guard lock(mutex_);
    sessions_.erase(key);
}

std::size_t server_state::sessions() {
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

bool server_state::evict_idle() {
    // A connection idle for less than an eighth of the header deadline is left alone: a client
    // that has just connected gets the time to send the request it connected for.
    const auto grace = std::chrono::duration_cast<std::chrono::steady_clock::duration>(options.read_timeout / 8);
    const auto newest = (std::chrono::steady_clock::now() - grace).time_since_epoch().count();
    // A few tries: the oldest idle session may start reading a request before it is claimed.
    for (int attempt = 0; attempt < 3; ++attempt) {
        // Every session locked here is kept in `held` until the lock is released: a session
        // that ends meanwhile on its own thread leaves this the last reference, and its
        // destructor takes the lock to forget itself (a destructor run under the lock
        // deadlocked the server; found by the flood test under ThreadSanitizer).
        std::vector<std::shared_ptr<session_base>> held;
        session_base* oldest = nullptr;
        std::int64_t since = 0;
        {
            std::lock_guard lock(mutex_);
            held.reserve(sessions_.size());
            for (const auto& [key, weak] : sessions_) {
                auto s = weak.lock();
                if (!s) continue;
                const auto t = s->idle_since();
                if (t != 0 && t <= newest && (since == 0 || t < since)) {
                    since = t;
                    oldest = s.get();
                }
                held.push_back(std::move(s));
            }
        }
        if (!oldest) return false;
        if (oldest->evict(since)) return true;
    }
    return false;
}

void server_state::shutdown_all() {
    std::vector<std::shared_ptr<session_base>> live;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [key, weak] : sessions_)
            if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    // Outside the lock: a session's destructor takes it to forget itself.
    for (const auto& s : live) s->shutdown();
}

// ---- http_session -------------------------------------------------------------------------

namespace {

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// The log line's time: UTC, to the millisecond.
std::string log_time() {
    char time[64];  // room for any year the format could print
    const auto now = std::chrono::system_clock::now();
    const auto secs = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::snprintf(time, sizeof time, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return time;
}

// Writes one JSON log line (ARCHITECTURE.md, "Operations") to the server's log seam, or to
// stderr. A sink that throws loses its line, never the connection.
void log_line(const server_state& state, json line) {
    try {
        line["time"] = log_time();
        const std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace);
        if (state.options.log) {
            state.options.log(text);
        } else {
            const std::string with_newline = text + "\n";
            std::fwrite(with_newline.data(), 1, with_newline.size(), stderr);
        }
    } catch (...) {
        // Nowhere to report it: the line is lost, the connection goes on.
    }
}

// OpenSSL recognises a plain HTTP request where a ClientHello should be (SSL_R_HTTP_REQUEST).
bool is_plain_http_on_tls(const beast::error_code& ec) {
    return ec.category() == net::error::get_ssl_category() &&
           ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST;
}

// The HTTP logic of a connection, the same over both streams; the differences (handshake,
// TLS shutdown, what a refused connection gets) are the `if constexpr (k_tls)` branches.
template <class Stream>
class http_session final : public session_base, public std::enable_shared_from_this<http_session<Stream>> {
    static constexpr bool k_tls = std::is_same_v<Stream, tls_stream>;

public:
    http_session(tcp::socket&& socket, std::shared_ptr<server_state> state, bool refuse, bool counted)
        : stream_(make_stream(std::move(socket), *state)), state_(std::move(state)), refuse_(refuse), counted_(counted) {
        beast::error_code ec;
        const auto ep = lowest().socket().remote_endpoint(ec);
        if (!ec) remote_ = ep.address();
    }

    ~http_session() override {
        if (key_) state_->forget(key_);
        if (!refuse_) state_->connections.fetch_sub(1);
        if (refuse_) state_->refusing.fetch_sub(1);
        if (counted_) state_->guard.release_connection(remote_);
    }

    void run() {
        key_ = state_->remember(this->shared_from_this());
        // The socket came from the listener on this session's own strand; dispatch makes sure
        // the first operation starts there too.
        net::dispatch(lowest().get_executor(), [self = this->shared_from_this()] {
            if (self->refuse_) return self->refuse_connection();
            if constexpr (k_tls)
                self->do_handshake();
            else
                self->do_read_header();
        });
    }

    void shutdown() override {
        net::post(lowest().get_executor(), [self = this->shared_from_this()] {
            if (self->stopping_) return;
            self->stopping_ = true;
            self->stop_deadline_ = std::chrono::steady_clock::now() + self->state_->options.read_timeout;
            // No request has begun on this connection: nothing in flight is lost by cutting it.
            if (self->waiting_for_header_) self->lowest().cancel();
            self->delay_.cancel();
        });
    }

    bool evict(std::int64_t since) override {
        // Claimed here, so the session is evicted once however many accepts pick it; one that
        // has begun a request since it was picked is left alone.
        if (!idle_since_.compare_exchange_strong(since, 0)) return false;
        net::post(lowest().get_executor(), [self = self_ptr()] {
            if (self->waiting_for_header_) self->lowest().cancel();
        });
        return true;
    }

private:
    static Stream make_stream(tcp::socket&& socket, server_state& state) {
        if constexpr (k_tls)
            return Stream(std::move(socket), *state.tls);
        else
            return Stream(std::move(socket));
    }

    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
    std::shared_ptr<http_session> self_ptr() { return this->shared_from_this(); }

    void refuse_connection() {
        if constexpr (k_tls) {
            // Over a cap: closed before the handshake, so a flood of connections costs the
            // server no key exchange. The client sees the connection closed (a transient
            // network error, retried with backoff).
            log_line(*state_, {{"event", "refused"},
                               {"remote", remote_.to_string()},
                               {"code", "unavailable"},
                               {"reason", "too many open connections; closed before the TLS handshake"}});
            beast::error_code ignored;
            lowest().socket().close(ignored);
        } else {
            started_ = std::chrono::steady_clock::now();
            send(request_no_, error_response(11, false,
                                             proto::error{errc::unavailable, "the server has too many open connections; retry later"}));
        }
    }

    void do_handshake() {
        waiting_for_header_ = true;  // nothing in flight yet: stop() may cut it, a full server evict it
        idle_since_ = std::chrono::steady_clock::now().time_since_epoch().count() | 1;  // never 0
        lowest().expires_after(state_->options.tls_handshake_timeout);
        stream_.async_handshake(ssl::stream_base::server,
                                beast::bind_front_handler(&http_session::on_handshake, self_ptr()));
    }

    void on_handshake(beast::error_code ec) {
        waiting_for_header_ = false;
        idle_since_ = 0;
        if (!ec) {
            tls_up_ = true;
            return do_read_header();
        }
        if (stopping_ && ec == net::error::operation_aborted) return close_socket();
        // One line per failed handshake (a scanner, an old client, a client that does not
        // trust our certificate), and the connection is dropped; nothing else is affected.
        const bool plain_http = is_plain_http_on_tls(ec);
        log_line(*state_, {{"event", "tls_handshake_failed"},
                           {"remote", remote_.to_string()},
                           {"reason", ec == beast::error::timeout ? std::string("no handshake within the timeout")
                                      : plain_http                ? std::string("a plain HTTP request on the TLS port")
                                                                  : ec.message()}});
        if (plain_http) return send_plain_refusal();
        close_socket();
    }

    // A client that sent plain HTTP to the TLS port gets a plain answer saying so, instead of
    // a bare reset it would take for a network failure and retry.
    void send_plain_refusal() {
        res_ = std::make_shared<response>(error_response(
            11, false, proto::error{errc::bad_request, "this server speaks HTTPS only: use an https:// URL"}));
        lowest().expires_after(state_->options.write_timeout);
        http::async_write(lowest(), *res_, [self = self_ptr()](beast::error_code ec, std::size_t) {
            self->res_.reset();
            if (ec) return self->close_socket();
            self->tcp_close(true);
        });
    }

    void do_read_header() {
        if (stopping_ || state_->stopping) return do_close(false);
        const auto& o = state_->options;
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(o.header_limit, UINT32_MAX)));
        parser_->body_limit(o.body_limit);
        admitted_.reset();
        route_ = endpoint::unmatched;
        method_.clear();
        device_id_.clear();
        bytes_in_ = 0;
        note_.reset();
        ++request_no_;
        responded_ = false;
        waiting_for_header_ = true;
        idle_since_ = std::chrono::steady_clock::now().time_since_epoch().count() | 1;  // never 0
        // One deadline for the whole header block, so trickling bytes cannot keep it alive.
        lowest().expires_after(o.read_timeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                beast::bind_front_handler(&http_session::on_read_header, self_ptr()));
    }

    void on_read_header(beast::error_code ec, std::size_t bytes) {
        waiting_for_header_ = false;
        idle_since_ = 0;
        started_ = std::chrono::steady_clock::now();
        bytes_in_ += bytes;
        if (ec) return on_read_error(ec);
        const auto& req = parser_->get();
        method_ = std::string(req.method_string());
        // true: the request is answered already (refused, or a bug answered 500).
        const bool answered = catch_internal_error(
            "routing",
            [&] {
                auto decision = state_->routes.admit(req, remote_, &route_);
                if (auto* refused = std::get_if<refusal>(&decision)) {
                    // A refused request's body is never read; it would be taken for the next
                    // request, so the connection closes after the answer.
                    if (!parser_->is_done()) refused->res.keep_alive(false);
                    if (refused->delay.count() > 0)
                        send_later(std::move(refused->res), refused->delay);
                    else
                        send(request_no_, std::move(refused->res));
                    return true;
                }
                admitted_ = std::move(std::get<admitted>(decision));
                if (admitted_->dev) device_id_ = admitted_->dev->id;
                note_ = std::make_shared<request_note>();
                admitted_->note = note_;
                return false;
            },
            [&] {
                send(request_no_, error_response(req.version(), false, proto::error{errc::internal, "internal error"}));
                return true;
            });
        if (answered) return;
        if (parser_->is_done()) return on_request();

        const auto expect = req.find(http::field::expect);
        if (expect != req.end() && beast::iequals(expect->value(), "100-continue")) {
            // The client waits for this before it sends a large body (curl does above 1 MiB).
            continue_ = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
            lowest().expires_after(state_->options.write_timeout);
            return http::async_write(stream_, *continue_,
                                     beast::bind_front_handler(&http_session::on_continue_sent, self_ptr()));
        }
        do_read_body();
    }

    void on_continue_sent(beast::error_code ec, std::size_t) {
        continue_.reset();
        if (ec) return do_close(false);
        do_read_body();
    }

    void do_read_body() {
        // An inactivity bound per read: a big change-set over a slow link completes as long
        // as it keeps moving. Once stopping, the remaining time is capped.
        if (stopping_)
            lowest().expires_at(stop_deadline_);
        else
            lowest().expires_after(state_->options.body_idle_timeout);
        http::async_read_some(stream_, buffer_, *parser_,
                              beast::bind_front_handler(&http_session::on_read_body, self_ptr()));
    }

    void on_read_body(beast::error_code ec, std::size_t bytes) {
        bytes_in_ += bytes;
        if (ec) return on_read_error(ec);
        if (!parser_->is_done()) return do_read_body();
        on_request();
    }

    void on_request() {
        auto req = parser_->release();
        const auto version = req.version();
        const auto no = request_no_;
        catch_internal_error(
            "handling a request",
            [&] {
                // A gzip body is inflated under the same limit as a plain one (a bomb gets 413),
                // and answers are gzipped for clients that accept it (SPEC.md, "Compression and
                // encodings").
                if (auto refused = decode_content_encoding(req, state_->options.body_limit))
                    return send(no, error_response(version, req.keep_alive(), *refused));
                const bool gzip = accepts_gzip(req);
                state_->routes.handle(std::move(*admitted_), std::move(req), lowest().get_executor(),
                                      [self = self_ptr(), no, gzip](response res) {
                                          if (gzip) gzip_response(res);
                                          self->send(no, std::move(res));
                                      });
                if (!responded_ && note_ && note_->leave_wait) watch_peer(no);
            },
            [&] { send(no, error_response(version, false, proto::error{errc::internal, "internal error"})); });
    }

    // A sync waiting for a change (request_note::leave_wait) holds the connection with
    // nothing to read or write. A client that closes it meanwhile ends the wait, so its place
    // is free at once rather than at the deadline. The socket is only looked at, never read:
    // bytes the client sends behind its request stay for the next one.
    void watch_peer(std::uint64_t no) {
        watching_peer_ = true;
        lowest().socket().async_wait(tcp::socket::wait_read, [self = self_ptr(), no](beast::error_code ec) {
            if (!ec) self->on_peer_readable(no);
        });
    }

    void on_peer_readable(std::uint64_t no) {
        if (no != request_no_ || responded_ || !note_ || !note_->leave_wait) return;
        if (peer_closed()) {
            auto leave = note_->leave_wait;  // answers now (the write then fails, or reaches a half-closed client)
            return leave();
        }
        // Readable but open: bytes sent behind the request (or a TLS alert). Waiting for
        // readability again would return at once, so look again after a while.
        peer_check_.expires_after(tuning::peer_check_interval);
        peer_check_.async_wait([self = self_ptr(), no](beast::error_code ec) {
            if (!ec) self->on_peer_readable(no);
        });
    }

    // The client has closed (or shut down its sending side of) the connection, or it broke.
    bool peer_closed() {
        pollfd p{};
        p.fd = lowest().socket().native_handle();
        p.events = POLLIN | POLLRDHUP;
        if (::poll(&p, 1, 0) <= 0) return false;
        return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
    }

    void on_read_error(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == net::error::operation_aborted ||
            ec == beast::error::timeout || ec == ssl::error::stream_truncated) {
            // The client left (over TLS often without a close_notify: stream_truncated), went
            // quiet past the deadline (the stream has closed the socket), or stop() cut an
            // idle connection: nobody is waiting for an answer.
            return do_close(false);
        }
        proto::error e;
        if (ec == http::error::body_limit)
            e = {errc::body_too_large, "the request body is larger than " + std::to_string(state_->options.body_limit) + " bytes"};
        else if (ec == http::error::header_limit)
            e = {errc::header_too_large, "the request header is larger than " + std::to_string(state_->options.header_limit) + " bytes"};
        else if (ec.category() == http::make_error_code(http::error::bad_target).category())
            e = {errc::bad_request, "malformed HTTP request: " + ec.message()};
        else
            return do_close(false);
        const unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
        send(request_no_, error_response(version, false, e));
    }

    // Sends `res` after `delay` (a throttled sign-in failure: router.hpp, refusal). stop()
    // cuts the wait short; the answer goes out then.
    void send_later(response res, std::chrono::milliseconds delay) {
        // A server that is stopping answers at once: the wait would only hold its stop up.
        if (stopping_ || state_->stopping) return send(request_no_, std::move(res));
        delayed_ = std::make_shared<response>(std::move(res));
        delay_.expires_after(delay);
        delay_.async_wait([self = self_ptr(), request_no = request_no_](beast::error_code) {
            auto res = std::move(*self->delayed_);
            self->delayed_.reset();
            self->send(request_no, std::move(res));
        });
    }

    void send(std::uint64_t request_no, response res) {
        // A late answer for a request that already got one (a handler that threw after
        // handing its request on) is dropped rather than interleaved with another response.
        if (request_no != request_no_ || responded_) return;
        responded_ = true;
        if (watching_peer_) {
            // No operation of the stream's is pending while a sync waits: this cancels only the
            // watch, whose handler then finds the request answered.
            watching_peer_ = false;
            beast::error_code ignored;
            lowest().socket().cancel(ignored);
            peer_check_.cancel();
        }
        if (stopping_ || state_->stopping) res.keep_alive(false);
        res_ = std::make_shared<response>(std::move(res));
        lowest().expires_after(state_->options.write_timeout);
        http::async_write(stream_, *res_,
                          beast::bind_front_handler(&http_session::on_write, self_ptr(), res_->need_eof()));
    }

    // Counts the answered request and writes its one log line. Only what the server decided
    // or measured goes in: never a header value, a token, a raw path (ids) or a body (records).
    void log_request(const response& res, std::size_t bytes_out) {
        const auto took = std::chrono::steady_clock::now() - started_;
        state_->metrics.count_request(route_, res.result_int(), took);
        json line = {{"remote", remote_.to_string()},
                     {"route", route_template(route_)},
                     {"status", res.result_int()},
                     {"bytes_in", bytes_in_},
                     {"bytes_out", bytes_out},
                     {"ms", std::chrono::duration<double, std::milli>(took).count()}};
        if (!method_.empty()) line["method"] = method_;
        if (res.result_int() >= 400 && res[http::field::content_encoding].empty()) {
            if (const auto err = proto::decode_error(json::parse(res.body(), nullptr, false)))
                line["code"] = proto::errc_name(err->code);
        }
        if (!device_id_.empty()) line["device"] = device_id_;
        if (note_ && note_->changes >= 0) line["changes"] = note_->changes;
        log_line(*state_, std::move(line));
    }

    void on_write(bool close, beast::error_code ec, std::size_t bytes) {
        try {
            if (res_) log_request(*res_, bytes);
        } catch (...) {
            // A failure to log loses the line, never the connection.
        }
        res_.reset();
        if (ec) return do_close(false);
        // Closing with request bytes still unread makes the kernel reset the connection,
        // which can destroy the answer before the client reads it; linger then (tuning.hpp).
        if (close) return do_close(!parser_ || !parser_->is_done());
        do_read_header();
    }

    void do_close(bool linger) {
        if constexpr (k_tls) {
            if (tls_up_ && lowest().socket().is_open()) {
                // close_notify, so the client can tell our close from a cut; bounded, since a
                // client need not answer it.
                tls_up_ = false;
                lowest().expires_after(state_->options.tls_shutdown_timeout);
                return stream_.async_shutdown([self = self_ptr(), linger](beast::error_code) { self->tcp_close(linger); });
            }
        }
        tcp_close(linger);
    }

    void tcp_close(bool linger) {
        beast::error_code ec;
        lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
        if (!linger || ec || !lowest().socket().is_open()) return;
        linger_buf_.resize(16 * 1024);
        lowest().expires_after(state_->options.linger_timeout);
        do_linger();
    }

    void do_linger() {
        lowest().async_read_some(net::buffer(linger_buf_), beast::bind_front_handler(&http_session::on_linger, self_ptr()));
    }

    void on_linger(beast::error_code ec, std::size_t) {
        if (!ec) return do_linger();
        close_socket();
    }

    void close_socket() {
        beast::error_code ignored;
        lowest().socket().close(ignored);
    }

    Stream stream_;
    beast::flat_buffer buffer_;
    std::shared_ptr<server_state> state_;
    const bool refuse_;
    const bool counted_;
    net::ip::address remote_;           // for per-address limits and the log
    std::uint64_t key_ = 0;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<admitted> admitted_;
    // What the current request's log line and metrics report (reset for each request); kept
    // apart because the request and admitted_ are handed on to the router once the body is in.
    endpoint route_ = endpoint::unmatched;
    std::string method_;
    std::string device_id_;
    std::size_t bytes_in_ = 0;
    std::chrono::steady_clock::time_point started_{};
    std::shared_ptr<request_note> note_;
    std::shared_ptr<response> res_;
    std::shared_ptr<http::response<http::empty_body>> continue_;
    net::steady_timer delay_{lowest().get_executor()};  // send_later's wait
    std::shared_ptr<response> delayed_;                 // its answer meanwhile
    net::steady_timer peer_check_{lowest().get_executor()};  // watch_peer's second look
    bool watching_peer_ = false;                        // watch_peer's wait is pending
    std::vector<char> linger_buf_;
    std::uint64_t request_no_ = 0;      // which request a late answer belongs to
    bool responded_ = false;            // the current request has its answer
    bool waiting_for_header_ = false;   // an idle or not yet started request: safe to cut
    bool stopping_ = false;
    bool tls_up_ = false;               // the handshake completed: a close sends close_notify
    std::chrono::steady_clock::time_point stop_deadline_{};
};

}  // namespace

void start_session(tcp::socket&& socket, const std::shared_ptr<server_state>& state, bool refuse, bool counted) {
    if (state->tls)
        std::make_shared<http_session<tls_stream>>(std::move(socket), state, refuse, counted)->run();
    else
        std::make_shared<http_session<plain_stream>>(std::move(socket), state, refuse, counted)->run();
}

// ---- listener -----------------------------------------------------------------------------

listener::listener(net::io_context& ioc, std::shared_ptr<server_state> state)
    : ioc_(ioc), acceptor_(net::make_strand(ioc)), retry_(acceptor_.get_executor()), state_(std::move(state)) {}

beast::error_code listener::open(const tcp::endpoint& endpoint) {
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) port_ = acceptor_.local_endpoint(ec).port();
    return ec;
}

std::uint16_t listener::port() const { return port_; }

void listener::run() {
    net::dispatch(acceptor_.get_executor(), beast::bind_front_handler(&listener::do_accept, shared_from_this()));
}

void listener::stop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
        beast::error_code ec;
        self->acceptor_.close(ec);
        self->retry_.cancel();
    });
}

void listener::do_accept() {
    // Each connection gets its own strand, so its handlers never run concurrently.
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&listener::on_accept, shared_from_this()));
}

void listener::on_accept(beast::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open() || state_->stopping) return;
    if (ec) {
        if (ec == net::error::operation_aborted) return;
        // Out of file descriptors or a transient accept failure: pause rather than spin.
        retry_.expires_after(std::chrono::milliseconds(50));
        retry_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
            if (!wait_ec && self->acceptor_.is_open()) self->do_accept();
        });
        return;
    }
    // Only this strand adds connections, so the checks and the increments cannot race with
    // another accept; sessions ending only lower the counts. The address's own cap first, so
    // an address over it does not push anyone else out.
    beast::error_code peer_ec;
    const auto peer = socket.remote_endpoint(peer_ec);
    bool counted = !peer_ec && state_->guard.admit_connection(peer.address());
    bool refuse = !counted;
    if (!refuse) {
        const auto open = state_->connections.load();
        const auto max = state_->options.max_connections;
        // At the cap, the connection idle the longest makes room (tuning::evicting_connections).
        if (open >= max && !(open < max + tuning::evicting_connections && state_->evict_idle())) {
            refuse = true;
            state_->guard.release_connection(peer.address());
            counted = false;
        }
    }
    if (refuse) {
        if (state_->refusing.load() >= tuning::refusing_connections) {
            // A flood past the caps: no session and no answer for this one.
            beast::error_code ignored;
            socket.close(ignored);
            return do_accept();
        }
        state_->refusing.fetch_add(1);
    } else {
        state_->connections.fetch_add(1);
    }
    start_session(std::move(socket), state_, refuse, counted);
    do_accept();
}

}  // namespace fieldsync::server::detail
