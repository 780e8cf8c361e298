#include <fieldsync/server/server.hpp>

#include "http/session.hpp"
#include "http/tls.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

namespace fieldsync::server {

namespace net = boost::asio;
namespace proto = fieldsync::protocol;
using proto::errc;

struct server::impl {
    impl(server_options o, store_roles st)
        : ioc(o.threads > 0 ? o.threads : 1), state(std::make_shared<detail::server_state>(std::move(o), st)) {}

    net::io_context ioc;
    std::shared_ptr<detail::server_state> state;
    std::shared_ptr<detail::listener> listener;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::vector<std::thread> threads;
    std::atomic<std::uint16_t> port{0};
    std::mutex mutex;  // start() against stop()
    bool started = false;
    bool stopped = false;
};

server::server(server_options options, store_roles st) : impl_(std::make_unique<impl>(std::move(options), st)) {}

server::server(server_options options, store& st) : server(std::move(options), store_roles::of(st)) {}

server::~server() { stop(); }

std::uint16_t server::port() const noexcept { return impl_->port.load(); }

std::size_t server::open_connections() const { return impl_->state->sessions(); }

std::size_t server::waiting_syncs() const { return impl_->state->routes.waiting_syncs(); }

proto::expected<std::uint16_t> server::start() {
    auto& m = *impl_;
    std::lock_guard lock(m.mutex);
    if (m.started) return proto::error{errc::internal, "the server was already started"};
    const auto& o = m.state->options;

    boost::system::error_code ec;
    const auto address = net::ip::make_address(o.host, ec);
    if (ec) return proto::error{errc::bad_request, "'" + o.host + "' is not an IP address"};

    // Checked before anything is bound, so a misconfigured server never listens at all.
    if (o.tls_cert_file.empty() != o.tls_key_file.empty())
        return proto::error{errc::bad_request, "TLS needs both a certificate file and a key file"};
    if (!o.tls_cert_file.empty()) {
        auto ctx = detail::make_tls_context(o.tls_cert_file, o.tls_key_file);
        if (!ctx) return ctx.err();
        m.state->tls = std::move(*ctx);
    } else if (!o.insecure_listen && !detail::is_loopback_host(o.host)) {
        return proto::error{errc::bad_request,
                            "refusing plain HTTP on " + o.host +
                                ", which is not a loopback address: tokens and records would cross the network "
                                "unencrypted. Give a TLS certificate and key, or insecure_listen to allow it"};
    }

    m.listener = std::make_shared<detail::listener>(m.ioc, m.state);
    ec = m.listener->open({address, o.port});
    if (ec)
        return proto::error{errc::unavailable,
                            "cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + ec.message()};
    m.port = m.listener->port();
    m.started = true;
    m.work.emplace(m.ioc.get_executor());
    m.listener->run();

    const int n = o.threads > 0 ? o.threads : 1;
    m.threads.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        m.threads.emplace_back([&ioc = m.ioc] {
            // Handlers catch what they can; this keeps a thread serving if something slips out
            // (the session that threw is dropped, the others go on).
            for (;;) {
                try {
                    ioc.run();
                    return;
                } catch (const std::exception& e) {
                    std::cerr << "fieldsync-server: unexpected exception in an I/O thread: " << e.what() << "\n";
                } catch (...) {
                    std::cerr << "fieldsync-server: unexpected exception in an I/O thread\n";
                }
            }
        });
    }
    return m.port.load();
}

void server::stop() {
    auto& m = *impl_;
    std::lock_guard lock(m.mutex);
    if (!m.started || m.stopped) return;
    m.stopped = true;
    m.state->stopping = true;
    m.listener->stop();
    // A waiting sync is answered now, as at its deadline: its timer would hold the threads.
    m.state->routes.stop_waits();
    m.state->shutdown_all();
    // Without the guard, run() returns once the last session ends; change-sets waiting in the
    // store hold work guards of their own, so they are answered before the threads finish.
    m.work.reset();
    for (auto& t : m.threads) t.join();
    m.threads.clear();
    // Every answer is sent, but the store's writer thread may still be about to destroy the
    // callback that carried it, and with it a strand executor and maybe the last reference to
    // a session: both must go before the io_context. No session runs now, so nothing new is
    // handed to the store.
    m.state->routes.wait_for_store();
}

}  // namespace fieldsync::server
