// The default transport: HTTP/1.1 on Beast, one keep-alive connection per transport object,
// plain or TLS (https://, through OpenSSL). Beast's synchronous calls ignore tcp_stream
// timeouts, so every step runs asynchronously on a private io_context that this thread drives
// until the step completes or its deadline passes.

#include <fieldsync/client/transport.hpp>
#include <fieldsync/client/tuning.hpp>
#include <fieldsync/protocol/encoding.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/version.hpp>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <optional>

namespace fieldsync::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

struct url_parts {
    bool tls = false;
    std::string host;
    std::string port;
    std::string target;
};

std::optional<url_parts> parse_url(const std::string& url) {
    url_parts p;
    std::string_view scheme = "http://";
    if (url.compare(0, 8, "https://") == 0) {
        scheme = "https://";
        p.tls = true;
    } else if (url.compare(0, scheme.size(), scheme) != 0) {
        return std::nullopt;
    }
    const std::string default_port = p.tls ? "443" : "80";
    const auto rest = url.substr(scheme.size());
    const auto slash = rest.find('/');
    const auto authority = rest.substr(0, slash);
    p.target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (!authority.empty() && authority.front() == '[') {  // [v6]:port
        const auto close = authority.find(']');
        if (close == std::string::npos) return std::nullopt;
        p.host = authority.substr(1, close - 1);
        p.port = close + 1 < authority.size() && authority[close + 1] == ':' ? authority.substr(close + 2) : default_port;
    } else {
        const auto colon = authority.rfind(':');
        p.host = authority.substr(0, colon);
        p.port = colon == std::string::npos ? default_port : authority.substr(colon + 1);
    }
    if (p.host.empty() || p.port.empty()) return std::nullopt;
    return p;
}

// True when `host` is an IP address literal (no SNI then: RFC 6066 allows only DNS names).
bool is_ip_literal(const std::string& host) {
    beast::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

class beast_transport final : public transport {
public:
    explicit beast_transport(const http_transport_options& options) : options_(options) {}

    result<http_response> send(const http_request& request, std::chrono::milliseconds timeout) override {
        try {
            const auto url = parse_url(request.url);
            if (!url) return make_error(errc::invalid_argument, "not an http:// or https:// URL: '" + request.url + "'");
            if (connected() && (url->host != host_ || url->port != port_ || url->tls != tls_)) close();
            // A reused keep-alive connection may have been closed by the server meanwhile; then
            // the exchange fails before any answer and is tried once on a fresh connection.
            // Sync requests are idempotent (change ids), so resending is safe.
            const bool reused = connected();
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
    bool connected() const { return plain_.has_value() || secure_.has_value(); }

    // Runs the io_context until the started operation completes.
    void run() {
        ioc_.restart();
        ioc_.run();
    }

    void close() {
        // No close_notify on TLS: the server treats a bare close like the end of a plain
        // connection, and waiting for its answer would only delay the next sync.
        beast::tcp_stream* lowest = plain_ ? &*plain_ : secure_ ? &beast::get_lowest_layer(*secure_) : nullptr;
        if (lowest) {
            beast::error_code ignored;
            lowest->socket().shutdown(tcp::socket::shutdown_both, ignored);
            lowest->close();
        }
        plain_.reset();
        secure_.reset();
        buffer_.clear();
    }

    error fail(const beast::error_code& ec, const char* step) {
        close();
        if (ec == beast::error::timeout) return make_error(errc::timeout, std::string(step) + ": timed out");
        return make_error(errc::network, std::string(step) + ": " + ec.message());
    }

    // The TLS context, made at the first https:// request so plain-only apps never read a
    // certificate store.
    result<ssl::context*> tls_context() {
        if (ctx_) return ctx_.get();
        auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
        SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
        ctx->set_verify_mode(ssl::verify_peer);
        beast::error_code ec;
        if (options_.ca_file.empty()) {
            ctx->set_default_verify_paths(ec);
            if (ec) return make_error(errc::tls, "cannot load the system's certificate store: " + ec.message());
        } else {
            ctx->load_verify_file(options_.ca_file, ec);
            if (ec) return make_error(errc::invalid_argument, "cannot load the CA file '" + options_.ca_file + "': " + ec.message());
        }
        ctx_ = std::move(ctx);
        return ctx_.get();
    }

    // Resolves and connects a TCP stream, then, for https, shakes hands and verifies the
    // server's certificate against the trusted CAs and the URL's host.
    result<void> connect(const url_parts& url, std::chrono::milliseconds timeout) {
        ssl::context* ctx = nullptr;
        if (url.tls) {
            auto c = tls_context();
            if (!c) return std::move(c).err();
            ctx = *c;
        }
        beast::error_code ec;
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
        beast::tcp_stream connection(ioc_);
        connection.expires_after(timeout);
        connection.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
        run();
        if (ec) return fail(ec, "connect");
        host_ = url.host;
        port_ = url.port;
        tls_ = url.tls;
        if (!url.tls) {
            plain_.emplace(std::move(connection));
            return {};
        }

        secure_.emplace(std::move(connection), *ctx);
        SSL* native = secure_->native_handle();
        // OpenSSL checks the name during verification, so a mismatch is reported like any other
        // certificate failure (X509_V_ERR_HOSTNAME_MISMATCH / _IP_ADDRESS_MISMATCH).
        const bool ip = is_ip_literal(url.host);
        const bool named = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), url.host.c_str()) == 1
                              : SSL_set_tlsext_host_name(native, url.host.c_str()) == 1 &&
                                    SSL_set1_host(native, url.host.c_str()) == 1;
        if (!named) {
            close();
            return make_error(errc::invalid_argument, "cannot verify TLS for the host '" + url.host + "'");
        }
        beast::get_lowest_layer(*secure_).expires_after(timeout);
        secure_->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
        run();
        if (!ec) return {};
        // Reset, closed (stream_truncated), timed out: the network's doing, or a server over
        // its connection cap; transient like any failed connect.
        if (ec.category() != asio::error::get_ssl_category()) return fail(ec, "TLS handshake");
        const long verify = SSL_get_verify_result(native);
        std::string what = verify != X509_V_OK
                               ? "the certificate of " + url.host + ":" + url.port + " was not accepted: " +
                                     X509_verify_cert_error_string(verify)
                               : "TLS handshake with " + url.host + ":" + url.port + " failed: " + ec.message() +
                                     " (is it a TLS server?)";
        close();
        return make_error(errc::tls, std::move(what));
    }

    result<http_response> exchange(const url_parts& url, const http_request& request, std::chrono::milliseconds timeout) {
        if (!connected())
            if (auto c = connect(url, timeout); !c) return std::move(c).err();
        if (secure_) return exchange_on(*secure_, url, request, timeout);
        return exchange_on(*plain_, url, request, timeout);
    }

    template <class Stream>
    result<http_response> exchange_on(Stream& stream, const url_parts& url, const http_request& request,
                                      std::chrono::milliseconds timeout) {
        beast::error_code ec;
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

        beast::get_lowest_layer(stream).expires_after(timeout);
        http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
        run();
        if (ec) return fail(ec, "send");

        http::response_parser<http::string_body> parser;
        parser.body_limit(tuning::max_response_bytes);
        http::async_read(stream, buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
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
    std::unique_ptr<ssl::context> ctx_;
    std::optional<beast::tcp_stream> plain_;
    std::optional<tls_stream> secure_;
    beast::flat_buffer buffer_;
    std::string host_;
    std::string port_;
    bool tls_ = false;
};
}  // namespace

bool has_http_transport() noexcept { return true; }

std::unique_ptr<transport> make_http_transport() { return make_http_transport(http_transport_options{}); }

std::unique_ptr<transport> make_http_transport(const http_transport_options& options) {
    return std::make_unique<beast_transport>(options);
}

}  // namespace fieldsync::client
