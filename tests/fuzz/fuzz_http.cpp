// libFuzzer target: the HTTP request path in-process. The input is raw bytes as a client
// would send them on a connection: Beast's request parser (with the server's header and body
// limits, as http_session sets them) reads one request after another; each complete request
// goes through router::admit and router::handle, exactly as http_session calls them, against
// a real SQLite store; the answer is serialised. A 500 or an exception is a finding: the
// server answers 500 only for a store failure, never for input.
//
// Why in-process and not a socket to a running server: the socket path spends most of its
// time in the kernel and in timeouts (an incomplete request waits for read_timeout), which
// gives the fuzzer tens of executions a second instead of thousands, and a crash in a server
// thread is not attributed to the input that caused it. The session's own logic (timeouts,
// 100-continue, connection cap) is covered by the e2e tests; the bytes-to-handler path, where
// the input is interpreted, is covered here.
//
// Seeds hold the marker "@TOKEN@", substituted with an admin device's token (and "@FIELD@" by
// a field device's), so the fuzzer reaches the authenticated endpoints.
#include "http/router.hpp"

#include <fieldsync/server/store.hpp>
#include <fieldsync/server/tuning.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/http/serializer.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace srv = fieldsync::server;
namespace detail = fieldsync::server::detail;
namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

struct world {
    std::filesystem::path dir;
    std::unique_ptr<srv::store> st;
    // The fuzzer is one address guessing tokens all day: no sign-in limit here.
    detail::address_guard guard{64, 1 << 30, std::chrono::seconds(60), std::chrono::milliseconds(0)};
    std::unique_ptr<detail::router> routes;
    std::string admin_token, field_token;
    net::io_context ioc;

    world() {
        const char* base = std::getenv("FIELDSYNC_FUZZ_TMP");
        dir = std::filesystem::path(base ? base : (std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp")) /
              ("fieldsync-fuzz-http-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        srv::store_options so;
        so.path = (dir / "store.db").string();
        std::filesystem::remove(so.path);
        auto opened = srv::open_sqlite_store(so);
        if (!opened) {
            std::fprintf(stderr, "fuzz_http: open_sqlite_store: %s\n", opened.err().message.c_str());
            std::abort();
        }
        st = std::move(*opened);
        admin_token = st->add_device("fuzz admin", "xa-binh-hoa", srv::device_role::admin)->second;
        field_token = st->add_device("fuzz field", "xa-binh-hoa", srv::device_role::field)->second;
        // max_sync_wait 0: an input asking to wait (wait_ms) is answered at once, never held.
        routes = std::make_unique<detail::router>(srv::store_roles::of(*st), guard, fieldsync::protocol::oldest_protocol_version,
                                                  nullptr, nullptr, srv::tuning::max_waiting_syncs,
                                                  std::chrono::milliseconds(0));
    }
    ~world() {
        routes.reset();
        if (st) st->close();
        st.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

world& the_world() {
    static world w;
    return w;
}

std::string substitute(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
        s.replace(p, from.size(), to);
    return s;
}

void check(const detail::response& res) {
    if (res.result_int() >= 500 && res.result_int() != 503) {
        std::fprintf(stderr, "fuzz_http: answered %u: %s\n", res.result_int(), res.body().c_str());
        std::abort();
    }
    // The answer must be writable as it would be on the wire.
    detail::response copy = res;
    copy.prepare_payload();
    http::serializer<false, http::string_body> sr(copy);
    boost::beast::error_code ec;
    std::string out;
    sr.split(false);
    while (!sr.is_done()) {
        sr.next(ec, [&](boost::beast::error_code&, const auto& buffers) {
            out += boost::beast::buffers_to_string(buffers);
            sr.consume(boost::beast::buffer_bytes(buffers));
        });
        if (ec) break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& w = the_world();
    std::string bytes(reinterpret_cast<const char*>(data), size);
    bytes = substitute(std::move(bytes), "@TOKEN@", w.admin_token);
    bytes = substitute(std::move(bytes), "@FIELD@", w.field_token);

    std::size_t pos = 0;
    for (int n = 0; n < 8 && pos < bytes.size(); ++n) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(srv::tuning::header_limit));
        parser.body_limit(srv::tuning::body_limit);
        parser.eager(true);
        boost::beast::error_code ec;
        while (pos < bytes.size() && !parser.is_done()) {
            const std::size_t used = parser.put(net::buffer(bytes.data() + pos, bytes.size() - pos), ec);
            pos += used;
            if (ec == http::error::need_more) {
                ec = {};
                if (used == 0) break;  // the rest of the input is not enough for the next piece
                continue;
            }
            if (ec) break;
        }
        if (!parser.is_done() && !ec && parser.is_header_done()) {
            // The connection ends here: a body with no length ends at EOF.
            parser.put_eof(ec);
        }
        if (ec || !parser.is_done()) return 0;  // the session answers a parse error itself

        auto decision = w.routes->admit(parser.get(), net::ip::address_v4::loopback());
        if (auto* refused = std::get_if<detail::refusal>(&decision)) {
            check(refused->res);
            continue;
        }
        std::optional<detail::response> answer;
        auto guard = net::make_work_guard(w.ioc);
        w.routes->handle(std::move(std::get<detail::admitted>(decision)), parser.release(), w.ioc.get_executor(),
                         [&](detail::response r) {
                             answer = std::move(r);
                             guard.reset();
                         });
        w.ioc.run();
        w.ioc.restart();
        if (!answer) {
            std::fprintf(stderr, "fuzz_http: no answer\n");
            std::abort();
        }
        check(*answer);
    }
    return 0;
}
