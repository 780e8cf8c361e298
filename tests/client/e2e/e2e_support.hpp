#pragma once
// End-to-end support: a real store on a temp-dir SQLite file behind a real server on an
// ephemeral loopback port; a fault-injecting transport around the library's default HTTP
// transport; and a fixed-status HTTP endpoint that answers every request with one fixed status (for
// 5xx and 403) or never answers at all (a slow server).

#include "helpers.hpp"
#include "store_under_test.hpp"

#include <fieldsync/client/transport.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <functional>
#include <thread>

namespace fieldsync::test {

namespace srv = fieldsync::server;

/// What a live_server serves with (the default: the built-in schema, every protocol).
struct live_options {
    const protocol::schema* schema = nullptr;   // must outlive the server
    std::int64_t min_client_protocol = 1;
    std::function<void(srv::server_options&)> tune;  // adjusts the options before start
};

class live_server {
public:
    live_server() : live_server(live_options{}) {}
    explicit live_server(live_options options) { start(options); }
    /// `tune` adjusts the options before start (TLS files, limits, timeouts).
    explicit live_server(std::function<void(srv::server_options&)> tune)
        : live_server(live_options{.tune = std::move(tune)}) {}
    ~live_server() { stop(); }
    /// Stops, reopens the same store file with `options` (a new schema, say) and serves it
    /// again; the port changes.
    void restart(live_options options) {
        stop();
        start(options);
    }
    std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
    std::uint16_t port() const { return port_; }
    /// A new device's token: an admin of the whole district unless a unit and role are given.
    std::string add_device(const std::string& name, const std::string& unit_id = "huyen-giong-trom",
                           srv::device_role role = srv::device_role::admin) {
        auto d = store_->add_device(name, unit_id, role);
        REQUIRE(d);
        return d->second;
    }
    srv::store& store() { return *store_; }
    /// Stops the server and closes its store now (what the destructor does; later calls do
    /// nothing).
    void stop() {
        if (server_) server_->stop();
        if (store_) store_->close();
        server_.reset();
        store_.reset();
    }

private:
    void start(const live_options& options) {
        srv::store_options so;
        so.path = dir_.file("central.db");
        so.schema = options.schema;
        auto st = fieldsync::test::open_store_under_test(so);
        INFO((st ? std::string() : st.err().message));
        REQUIRE(st);
        store_ = std::move(*st);
        srv::server_options o;
        o.host = "127.0.0.1";
        o.port = 0;
        o.threads = 2;
        o.min_client_protocol = options.min_client_protocol;
        {
            auto blobs = srv::open_blob_dir(srv::default_blob_dir(so.path));
            REQUIRE(blobs);
            o.blobs = std::move(*blobs);
        }
        if (options.tune) options.tune(o);
        scheme_ = o.tls_cert_file.empty() ? "http" : "https";
        server_ = std::make_unique<srv::server>(o, *store_);
        auto port = server_->start();
        REQUIRE(port);
        port_ = *port;
    }

    temp_dir dir_;
    std::unique_ptr<srv::store> store_;
    std::unique_ptr<srv::server> server_;
    std::uint16_t port_ = 0;
    std::string scheme_ = "http";
};

/// What the fault transport does with one request.
struct cut {
    enum kind { pass, drop_request, drop_response, redirect } what = pass;
    std::string redirect_url;  // redirect: send this request to another base URL instead
};

/// Wraps the default HTTP transport; `hook` decides per request (ordinal from 1).
class fault_transport final : public client::transport {
public:
    explicit fault_transport(std::function<cut(const client::http_request&, int)> hook)
        : inner_(client::make_http_transport()), hook_(std::move(hook)) {}
    client::result<client::http_response> send(const client::http_request& req, std::chrono::milliseconds timeout) override {
        ++calls;
        const cut c = hook_ ? hook_(req, calls) : cut{};
        if (c.what == cut::drop_request) return client::make_error(client::errc::network, "cut: request dropped");
        if (c.what == cut::redirect) {
            auto other = req;
            other.url = c.redirect_url + "/v1/sync";
            return inner_->send(other, timeout);
        }
        auto r = inner_->send(req, timeout);
        if (c.what == cut::drop_response && r) {
            ++responses_dropped;
            return client::make_error(client::errc::network, "cut: response lost after the server handled it");
        }
        return r;
    }
    int calls = 0;
    int responses_dropped = 0;

private:
    std::unique_ptr<client::transport> inner_;
    std::function<cut(const client::http_request&, int)> hook_;
};

/// Reads one HTTP/1.1 message (headers, then Content-Length bytes of body) from `fd`; what
/// arrived so far when the peer closes first.
inline std::string read_http_message(int fd) {
    std::string in;
    char buf[4096];
    for (;;) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
        const auto end = in.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        std::size_t length = 0;
        auto lower = in.substr(0, end);
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const auto cl = lower.find("content-length: ");
        if (cl != std::string::npos) length = std::stoul(lower.substr(cl + 16));
        if (in.size() >= end + 4 + length) break;
    }
    return in;
}

inline int listen_loopback(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    REQUIRE(::listen(fd, 16) == 0);
    return fd;
}

/// A proxy that forwards each request to the real server, lets the server answer in full,
/// and passes on only the first half of the answer before closing: a response cut mid-way.
class truncating_proxy {
public:
    explicit truncating_proxy(std::uint16_t target) : target_(target) {
        fd_ = listen_loopback(port_);
        thread_ = std::thread([this] { serve(); });
    }
    ~truncating_proxy() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::atomic<int> cut_responses{0};

private:
    void serve() {
        for (;;) {
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            const auto request = read_http_message(c);
            const int s = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(target_);
            if (s >= 0 && ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                ::send(s, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
                const auto answer = read_http_message(s);
                (void)::send(c, answer.data(), answer.size() / 2, MSG_NOSIGNAL);
                ++cut_responses;
            }
            if (s >= 0) ::close(s);
            ::close(c);
        }
    }
    std::uint16_t target_;
    std::uint16_t port_ = 0;
    int fd_ = -1;
    std::thread thread_;
};

/// A loopback TCP endpoint. answer_status > 0: reads each request and answers it with that
/// status and an error body. answer_status == 0: accepts connections and never answers.
class fixed_status_endpoint {
public:
    explicit fixed_status_endpoint(int answer_status) : status_(answer_status) {
        fd_ = listen_loopback(port_);
        thread_ = std::thread([this] { serve(); });
    }
    ~fixed_status_endpoint() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
        for (int c : held_) ::close(c);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::atomic<int> requests{0};

private:
    void serve() {
        while (!stop_) {
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            if (status_ == 0) {
                held_.push_back(c);  // a server that takes the request and never answers
                continue;
            }
            (void)read_http_message(c);
            ++requests;
            const std::string body =
                R"({"error":{"code":")" + std::string(status_ == 403 ? "forbidden" : "unavailable") + R"(","message":"fixed answer"}})";
            const std::string out = "HTTP/1.1 " + std::to_string(status_) + " Fixed\r\nContent-Type: application/json\r\n" +
                                    "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                                    body;
            (void)::send(c, out.data(), out.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    }

    int status_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::vector<int> held_;
    std::thread thread_;
};

/// A replica on a temp-dir file, configured for `server` with a new device token.
inline std::unique_ptr<client::replica> live_replica(live_server& server, temp_dir& dir, const std::string& name,
                                                     std::shared_ptr<client::transport> t = nullptr,
                                                     client::sync_seams seams = {}, client::sync_tuning tuning = {},
                                                     const std::string& token = {}) {
    auto r = open_replica(dir.file(name + ".db"), std::move(t), std::move(seams), tuning);
    ok(r->configure(server.url(), token.empty() ? server.add_device("Máy " + name) : token));
    return r;
}

/// POST /v1/conflicts/{id}/resolve through the replica library's own HTTP transport.
inline client::http_response resolve(live_server& server, const std::string& token, const std::string& conflict_id,
                                     const json& body) {
    auto t = client::make_http_transport();
    client::http_request req;
    req.method = "POST";
    req.url = server.url() + "/v1/conflicts/" + conflict_id + "/resolve";
    req.headers = {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
    req.body = body.dump();
    auto r = t->send(req, std::chrono::seconds(10));
    REQUIRE(r);
    return *r;
}

/// The collections of the default schema that the client tests write.
inline const std::vector<std::string> k_collections = {"members", "registrations"};

/// How many versions the store's history holds for one record.
inline std::size_t history_size(srv::store& st, const std::string& c, const std::string& id) {
    auto h = st.history(c, id);
    REQUIRE(h);
    return h->size();
}

/// A record's head in the store, which must exist.
inline srv::record_view store_head(srv::store& st, const std::string& c, const std::string& id) {
    auto h = st.get(c, id);
    REQUIRE(h);
    INFO(c << "/" << id);
    REQUIRE(h->has_value());
    return **h;
}

/// Versions the store has written (each accepted change counts once, however often it was
/// resent): the history of every record in its feed.
inline std::size_t store_writes(srv::store& st) {
    auto page = st.pull(0, 100000);
    REQUIRE(page);
    std::size_t n = 0;
    for (const auto& p : page->changes) n += history_size(st, p.collection, p.id);
    return n;
}

/// The organisation tree of the scope tests: Giồng Trôm district, Bình Hòa commune and its
/// cells ấp 1 and ấp 2.
inline void put_cells(srv::store& st) {
    for (const auto& u : {srv::unit{"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""},
                          srv::unit{"binh-hoa", "giong-trom", "Đảng bộ xã Bình Hòa", "commune", ""},
                          srv::unit{"ap-1", "binh-hoa", "Chi bộ ấp 1", "cell", ""},
                          srv::unit{"ap-2", "binh-hoa", "Chi bộ ấp 2", "cell", ""}})
        REQUIRE(st.put_unit(u));
}

/// Every record the server has equals the replica's copy, and nothing is pending.
inline void require_converged(srv::store& st, client::replica& r, const std::vector<std::string>& collections) {
    std::size_t live_server = 0, live_local = 0;
    for (const auto& c : collections) {
        auto local = ok(r.list({.collection = c, .include_deleted = true}));
        for (const auto& rec : local) {
            auto head = st.get(c, rec.id);
            REQUIRE(head);
            INFO(c << "/" << rec.id);
            REQUIRE(head->has_value());
            const auto& h = **head;
            CHECK(rec.version == h.version);
            CHECK(rec.deleted == h.deleted);
            if (!h.deleted) CHECK(rec.data == h.data);
            CHECK(rec.state != client::sync_state::pending);
            if (!rec.deleted) ++live_local;
        }
        // The server has nothing the replica lacks.
        auto page = st.pull(0, 100000);
        REQUIRE(page);
        for (const auto& p : page->changes) {
            if (p.collection != c) continue;
            auto rec = ok(r.get(c, p.id));
            INFO(c << "/" << p.id);
            REQUIRE(rec);
            if (!p.deleted) ++live_server;
        }
    }
    CHECK(live_local == live_server);
    CHECK(ok(r.pending_count()) == 0);
}

}  // namespace fieldsync::test
