#include "proxy/fault_proxy.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace fieldsync::tools {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

// Bytes per read: small enough that pacing at 8 KB/s advances in steps of a few tens of ms,
// large enough that an unlimited link is not bound by the proxy's syscalls.
std::size_t chunk_size(std::uint64_t bps) {
    if (bps == 0) return 16 * 1024;
    return static_cast<std::size_t>(std::clamp<std::uint64_t>(bps / 20, 64, 16 * 1024));
}

}  // namespace

class proxy_connection;

struct fault_proxy::impl : std::enable_shared_from_this<fault_proxy::impl> {
    explicit impl(fault_options o)
        : options(std::move(o)), acceptor(ioc), rng(options.seed) {}

    fault_options options;
    asio::io_context ioc;
    tcp::acceptor acceptor;
    tcp::endpoint target;
    std::mt19937_64 rng;
    std::thread thread;
    std::set<std::shared_ptr<proxy_connection>> live;
    std::function<void(const std::string&)> log;
    std::atomic<bool> running{false};   // run() is serving on some thread

    std::atomic<std::uint64_t> connections{0}, bytes_up{0}, bytes_down{0}, resets{0}, truncations{0}, stalls{0};

    void event(const std::string& what) {
        if (log) log(what);
    }
    void do_accept();
};

// One proxied connection: two one-way pipes (up: client to server, down: server to client),
// each a serial link of the set bandwidth followed by the set latency.
class proxy_connection : public std::enable_shared_from_this<proxy_connection> {
public:
    proxy_connection(std::shared_ptr<fault_proxy::impl> p, tcp::socket client, std::uint64_t number)
        : proxy_(std::move(p)), number_(number), client_(std::move(client)), server_(proxy_->ioc),
          reset_timer_(proxy_->ioc), up_(*this, client_, server_, true), down_(*this, server_, client_, false) {
        const auto& o = proxy_->options;
        // Every per-connection decision is drawn here, in accept order, from the one seeded
        // generator; the stalls get a generator of their own so that how the kernel chunks
        // reads on one connection does not shift the faults of the next.
        stall_rng_.seed(proxy_->rng());
        if (o.truncate_probability > 0 &&
            std::uniform_real_distribution<double>(0, 1)(proxy_->rng) < o.truncate_probability)
            truncate_at_ = std::uniform_int_distribution<std::uint64_t>(1, std::max<std::uint64_t>(1, o.truncate_within))(
                proxy_->rng);
    }

    void start() {
        auto self = shared_from_this();
        if (proxy_->options.reset_after.count() > 0) {
            reset_timer_.expires_after(proxy_->options.reset_after);
            reset_timer_.async_wait([self](error_code ec) {
                if (ec || self->closed_) return;
                ++self->proxy_->resets;
                self->proxy_->event("connection " + std::to_string(self->number_) + ": reset after " +
                                    std::to_string(self->proxy_->options.reset_after.count()) + " ms");
                self->close();
            });
        }
        server_.async_connect(proxy_->target, [self](error_code ec) {
            if (ec) return self->close();
            self->up_.read();
            self->down_.read();
        });
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        error_code ignored;
        // SO_LINGER 0: the peer sees a reset, as when a mobile link drops, not a clean FIN.
        client_.set_option(asio::socket_base::linger(true, 0), ignored);
        client_.close(ignored);
        server_.close(ignored);
        reset_timer_.cancel();
        up_.timer.cancel();
        up_.pace.cancel();
        down_.timer.cancel();
        down_.pace.cancel();
        proxy_->live.erase(shared_from_this());
    }

private:
    struct pipe {
        pipe(proxy_connection& c, tcp::socket& from, tcp::socket& to, bool up)
            : conn(c), from(from), to(to), up(up), timer(c.proxy_->ioc), buf(chunk_size(c.proxy_->options.bytes_per_second)) {}

        proxy_connection& conn;
        tcp::socket& from;
        tcp::socket& to;
        const bool up;
        asio::steady_timer timer;   // paces reads (bandwidth) and writes (latency)
        asio::steady_timer pace{conn.proxy_->ioc};
        std::vector<char> buf;
        struct packet {
            clock_type::time_point due;
            std::string bytes;
        };
        std::deque<packet> queue;
        bool writing = false;
        bool eof = false;
        clock_type::time_point link_free = clock_type::now();

        void read() {
            auto self = conn.shared_from_this();
            from.async_read_some(asio::buffer(buf), [this, self](error_code ec, std::size_t n) {
                if (conn.closed_) return;
                if (ec) {
                    eof = true;
                    return flush();
                }
                on_data(n);
            });
        }

        void on_data(std::size_t n) {
            auto& o = conn.proxy_->options;
            std::string bytes(buf.data(), n);
            if (!up && conn.truncate_at_ > 0) {
                const auto left = conn.truncate_at_ > conn.down_sent_ ? conn.truncate_at_ - conn.down_sent_ : 0;
                if (bytes.size() >= left) {
                    bytes.resize(left);
                    conn.truncated_ = true;
                }
            }
            conn.down_sent_ += up ? 0 : bytes.size();
            const auto now = clock_type::now();
            link_free = std::max(link_free, now);
            if (o.stall_probability > 0 && o.stall_max.count() > 0 &&
                std::uniform_real_distribution<double>(0, 1)(conn.stall_rng_) < o.stall_probability) {
                const auto stall = std::chrono::milliseconds(
                    std::uniform_int_distribution<std::int64_t>(1, o.stall_max.count())(conn.stall_rng_));
                link_free += stall;
                ++conn.proxy_->stalls;
                conn.proxy_->event("connection " + std::to_string(conn.number_) + ": " + (up ? "up" : "down") +
                                   " stalls " + std::to_string(stall.count()) + " ms");
            }
            if (o.bytes_per_second > 0)
                link_free += std::chrono::microseconds(bytes.size() * 1'000'000 / o.bytes_per_second);
            queue.push_back({link_free + o.latency, std::move(bytes)});
            flush();
            if (conn.truncated_ && !up) {
                eof = true;  // nothing more comes from the server on this connection
                return;
            }
            // The next read waits until this chunk has left the link: the sender feels the
            // bandwidth as back-pressure, as over a real slow link.
            auto self = conn.shared_from_this();
            pace.expires_at(link_free);
            pace.async_wait([this, self](error_code ec) {
                if (ec || conn.closed_) return;
                read();
            });
        }

        void flush() {
            if (writing || conn.closed_) return;
            if (queue.empty()) {
                if (eof) finish();
                return;
            }
            writing = true;
            auto self = conn.shared_from_this();
            timer.expires_at(queue.front().due);
            timer.async_wait([this, self](error_code ec) {
                if (ec || conn.closed_) return;
                asio::async_write(to, asio::buffer(queue.front().bytes), [this, self](error_code wec, std::size_t n) {
                    writing = false;
                    if (conn.closed_) return;
                    if (wec) return conn.close();
                    (up ? conn.proxy_->bytes_up : conn.proxy_->bytes_down) += n;
                    conn.total_ += n;
                    queue.pop_front();
                    const auto limit = conn.proxy_->options.reset_after_bytes;
                    if (limit > 0 && conn.total_ >= limit) {
                        ++conn.proxy_->resets;
                        conn.proxy_->event("connection " + std::to_string(conn.number_) + ": reset after " +
                                           std::to_string(conn.total_) + " bytes");
                        return conn.close();
                    }
                    flush();
                });
            });
        }

        // The source ended and everything it sent is delivered.
        void finish() {
            if (!up && conn.truncated_) {
                ++conn.proxy_->truncations;
                conn.proxy_->event("connection " + std::to_string(conn.number_) + ": server bytes cut after " +
                                   std::to_string(conn.truncate_at_));
                return conn.close();
            }
            error_code ignored;
            to.shutdown(tcp::socket::shutdown_send, ignored);
            if (conn.up_.eof && conn.up_.queue.empty() && conn.down_.eof && conn.down_.queue.empty()) conn.close();
        }
    };

    std::shared_ptr<fault_proxy::impl> proxy_;
    const std::uint64_t number_;
    tcp::socket client_;
    tcp::socket server_;
    asio::steady_timer reset_timer_;
    std::mt19937_64 stall_rng_;
    std::uint64_t truncate_at_ = 0;     // 0: this connection's server bytes are not cut
    std::uint64_t down_sent_ = 0;
    std::uint64_t total_ = 0;
    bool truncated_ = false;
    bool closed_ = false;
    pipe up_;
    pipe down_;
};

void fault_proxy::impl::do_accept() {
    acceptor.async_accept([self = shared_from_this()](error_code ec, tcp::socket s) {
        if (!self->acceptor.is_open()) return;
        if (!ec) {
            const auto n = ++self->connections;
            auto c = std::make_shared<proxy_connection>(self, std::move(s), n);
            self->live.insert(c);
            c->start();
        }
        self->do_accept();
    });
}

fault_proxy::fault_proxy(fault_options options) {
    if (options.seed == 0) options.seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
    impl_ = std::make_shared<impl>(std::move(options));
    auto& o = impl_->options;
    tcp::resolver resolver(impl_->ioc);
    impl_->target = *resolver.resolve(o.target_host, std::to_string(o.target_port)).begin();
    const tcp::endpoint listen(asio::ip::make_address(o.listen_host), o.listen_port);
    impl_->acceptor.open(listen.protocol());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor.bind(listen);
    impl_->acceptor.listen();
}

fault_proxy::~fault_proxy() { stop(); }

std::uint16_t fault_proxy::port() const { return impl_->acceptor.local_endpoint().port(); }
std::string fault_proxy::url() const {
    return "http://" + impl_->options.listen_host + ":" + std::to_string(port());
}
std::uint64_t fault_proxy::seed() const { return impl_->options.seed; }

fault_stats fault_proxy::stats() const {
    return {impl_->connections, impl_->bytes_up, impl_->bytes_down, impl_->resets, impl_->truncations, impl_->stalls};
}

void fault_proxy::on_event(std::function<void(const std::string&)> log) { impl_->log = std::move(log); }

void fault_proxy::start() {
    impl_->do_accept();
    impl_->thread = std::thread([p = impl_] { p->ioc.run(); });
}

void fault_proxy::run() {
    impl_->running = true;
    impl_->do_accept();
    impl_->ioc.run();
    impl_->running = false;
}

void fault_proxy::stop() {
    if (stopped_) return;
    stopped_ = true;
    // Everything is closed and cancelled rather than the io_context stopped: its pending
    // handlers hold the connections, which hold the proxy, so they must run (aborted) for
    // all of it to be freed. run() then returns for want of work.
    asio::post(impl_->ioc, [p = impl_] {
        error_code ignored;
        p->acceptor.close(ignored);
        auto live = p->live;  // close() erases from the set
        for (const auto& c : live) c->close();
    });
    if (impl_->thread.joinable()) {
        impl_->thread.join();
    } else if (!impl_->running) {
        impl_->ioc.restart();
        impl_->ioc.run();
    }
}

}  // namespace fieldsync::tools
