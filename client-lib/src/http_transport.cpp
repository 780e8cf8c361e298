// The default transport: HTTP/1.1 on Beast, one keep-alive connection per transport object.
// Beast's synchronous calls ignore tcp_stream timeouts, so every step runs asynchronously on
// a private io_context that this thread drives until the step completes or its deadline
// passes.

#include <fieldsync/client/transport.hpp>
#include <fieldsync/client/tuning.hpp>
#include <fieldsync/protocol/encoding.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>

#include <optional>

namespace fieldsync::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct url_parts {
    std::string host;
    std::string port;
    std::string target;
};

std::optional<url_parts> parse_url(const std::string& url) {
    constexpr std::string_view scheme = "http://";
    if (url.compare(0, scheme.size(), scheme) != 0) return std::nullopt;
    const auto rest = url.substr(scheme.size());
    const auto slash = rest.find('/');
    const auto authority = rest.substr(0, slash);
    url_parts p;
    p.target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (!authority.empty() && authority.front() == '[') {  // [v6]:port
        const auto close = authority.find(']');
        if (close == std::string::npos) return std::nullopt;
        p.host = authority.substr(1, close - 1);
        p.port = close + 1 < authority.size() && authority[close + 1] == ':' ? authority.substr(close + 2) : "80";
    } else {
        const auto colon = authority.rfind(':');
        p.host = authority.substr(0, colon);
        p.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
    }
    if (p.host.empty() || p.port.empty()) return std::nullopt;
    return p;
}

class beast_transport final : public transport {
public:
    explicit beast_transport(const http_transport_options& options) : options_(options) {}

    result<http_response> send(const http_request& request, std::chrono::milliseconds timeout) override {
        try {
            const auto url = parse_url(request.url);
            if (!url) return make_error(errc::invalid_argument, "not an http:// URL: '" + request.url + "'");
            if (stream_ && (url->host != host_ || url->port != port_)) close();
            // A reused keep-alive connection may have been closed by the server meanwhile; then
            // the exchange fails before any answer and is tried once on a fresh connection.
            // Sync requests are idempotent (change ids), so resending is safe.
            const bool reused = stream_.has_value();
            auto r = exchange(*url, request, timeout);
            if (!r && reused && r.err().code == make_error_code(errc::network)) {
                close();
                r = exchange(*url, request, timeout);
            }
            return r;
        } catch (const std::exception& e) {
            close();
            return make_error(errc::network, e.what());
        }
    }

private:
    // Runs the io_context until the started operation completes.
    void run() {
        ioc_.restart();
        ioc_.run();
    }

    void close() {
        if (stream_) {
            beast::error_code ignored;
            stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
            stream_->close();
        }
        stream_.reset();
        buffer_.clear();
    }

    error fail(const beast::error_code& ec, const char* step) {
        close();
        if (ec == beast::error::timeout) return make_error(errc::timeout, std::string(step) + ": timed out");
        return make_error(errc::network, std::string(step) + ": " + ec.message());
    }

    result<http_response> exchange(const url_parts& url, const http_request& request, std::chrono::milliseconds timeout) {
        beast::error_code ec;
        if (!stream_) {
            tcp::resolver resolver(ioc_);
            tcp::resolver::results_type endpoints;
            bool resolved = false;
            resolver.async_resolve(url.host, url.port, [&](beast::error_code e, tcp::resolver::results_type r) {
                ec = e;
                endpoints = std::move(r);
                resolved = true;
            });
            // tcp_stream's expiry does not cover name resolution; bound it by the same timeout.
            ioc_.restart();
            ioc_.run_for(timeout);
            if (!resolved) {
                resolver.cancel();
                run();
                return fail(beast::error::timeout, "resolve");
            }
            if (ec) return fail(ec, "resolve");
            stream_.emplace(ioc_);
            stream_->expires_after(timeout);
            stream_->async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
            run();
            if (ec) return fail(ec, "connect");
            host_ = url.host;
            port_ = url.port;
        }

        http::request<http::string_body> req;
        req.method(http::string_to_verb(request.method));
        req.target(url.target);
        req.version(11);
        const bool v6 = url.host.find(':') != std::string::npos;
        req.set(http::field::host, (v6 ? "[" + url.host + "]" : url.host) + ":" + url.port);
        req.set(http::field::user_agent, "fieldsync-client/0.1");
        for (const auto& [name, value] : request.headers) req.set(name, value);
        req.keep_alive(true);
        if (options_.gzip && request.body.size() >= tuning::gzip_min_bytes &&
            req.find(http::field::content_encoding) == req.end()) {
            req.body() = protocol::gzip(request.body);
            req.set(http::field::content_encoding, "gzip");
        } else {
            req.body() = request.body;
        }
        if (options_.gzip && req.find(http::field::accept_encoding) == req.end())
            req.set(http::field::accept_encoding, "gzip");
        req.prepare_payload();

        stream_->expires_after(timeout);
        http::async_write(*stream_, req, [&](beast::error_code e, std::size_t) { ec = e; });
        run();
        if (ec) return fail(ec, "send");

        http::response_parser<http::string_body> parser;
        parser.body_limit(tuning::max_response_bytes);
        http::async_read(*stream_, buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
        run();
        if (ec) return fail(ec, "receive");

        auto res = parser.release();
        http_response out;
        out.status = static_cast<int>(res.result_int());
        out.content_type = std::string(res[http::field::content_type]);
        if (const auto ce = res.find(http::field::content_encoding);
            ce != res.end() && beast::iequals(ce->value(), "gzip")) {
            // Capped like a plain answer, so a small compressed bomb cannot fill the phone.
            if (protocol::gunzip(res.body(), tuning::max_response_bytes, out.body) != protocol::gunzip_status::ok) {
                close();
                return make_error(errc::network, "receive: the answer's gzip body is malformed or too large");
            }
        } else {
            out.body = std::move(res.body());
        }
        if (!res.keep_alive()) close();
        return out;
    }

    const http_transport_options options_;
    asio::io_context ioc_{1};
    std::optional<beast::tcp_stream> stream_;
    beast::flat_buffer buffer_;
    std::string host_;
    std::string port_;
};

}  // namespace

bool has_http_transport() noexcept { return true; }

std::unique_ptr<transport> make_http_transport() { return make_http_transport(http_transport_options{}); }

std::unique_ptr<transport> make_http_transport(const http_transport_options& options) {
    return std::make_unique<beast_transport>(options);
}

}  // namespace fieldsync::client
