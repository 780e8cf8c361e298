// fieldsync-bench's open-loop modes: --rate (latency of change-sets sent on a fixed schedule)
// and --idle-connections (resident memory per idle keep-alive connection).
//
// --rate is open loop: each device sends its k-th change-set at start + phase + k / R whatever
// the server answered before, and a set's latency runs from that scheduled time to its answer.
// A closed-loop bench (run_device in -throughput.cpp) waits for each answer before sending the
// next, so a server that stalls simply receives less and its stall shows up in one sample
// only (coordinated omission); here every set due during a stall waits and counts.

#include "fieldsync-bench-common.hpp"

#include <nlohmann/json.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace fieldsync::bench {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;

// The client's threads: few, so the bench takes little of a 2-core machine from the server it
// measures; Asio multiplexes every device's connections on them.
constexpr int k_client_threads = 2;

// Connections one device may hold at once. A device whose previous set is still in flight
// opens another; past this its sets queue (their latency still runs from the schedule). 200
// devices x 4 stays under the server's default cap of 1024, so the bench never trips it.
constexpr std::size_t k_max_connections_per_device = 4;

// How long the run waits after the last scheduled send for the answers still in flight.
constexpr std::chrono::seconds k_drain{30};

// The sweep stops at the first rate whose p99 reaches this.
constexpr double k_sweep_p99_ms = 100;

// The server allows max_connections_per_address (64) connections per client address. On
// loopback the whole 127/8 is ours, so connections in group g come from 127.1.x.y: the
// server's per-address cap then sees many small hosts, as with phones behind NATs, and is
// measured as configured. Elsewhere the system picks the source address.
std::optional<net::ip::address_v4> source_address(const tcp::endpoint& server, std::size_t group) {
    if (!server.address().is_v4() || !server.address().is_loopback()) return std::nullopt;
    group %= 250 * 250;
    return net::ip::make_address_v4("127.1." + std::to_string(group / 250) + "." + std::to_string(group % 250 + 1));
}

void open_from(tcp::socket& s, const tcp::endpoint& server, std::size_t group) {
    s.open(server.protocol());
    if (const auto src = source_address(server, group)) s.bind(tcp::endpoint(*src, 0));
}

tcp::endpoint resolve(const endpoint_address& where) {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    const auto r = resolver.resolve(where.host, where.port);
    if (r.empty()) throw std::runtime_error("cannot resolve " + where.host);
    return *r.begin();
}

// ---- --rate ------------------------------------------------------------------------------

struct sample {
    double latency_ms;       // answer time - scheduled time
    double send_delay_ms;    // send time - scheduled time: a queued set, or a busy client
    bool measured;           // scheduled after the warm-up second
    bool ok;                 // HTTP 200 with one result per change
    clock_type::time_point answered;
};

struct rate_totals {
    std::mutex mutex;
    std::vector<sample> samples;
    std::int64_t applied = 0, merged = 0, conflict = 0, rejected = 0;
    std::string first_error;
    std::atomic<std::int64_t> due{0};       // sets whose time came
    std::atomic<std::int64_t> finished{0};  // sets answered or failed
    std::atomic<int> scheduling{0};         // devices still sending
};

struct rate_connection {
    explicit rate_connection(net::strand<net::io_context::executor_type>& ex) : socket(ex) {}
    tcp::socket socket;
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    bool busy = true;  // connecting counts as busy
};

struct pending_set {
    std::int64_t k;
    clock_type::time_point scheduled;
};

// One device: its schedule, its connections and its queue, all touched on its strand only.
class rate_device : public std::enable_shared_from_this<rate_device> {
public:
    rate_device(net::io_context& ioc, int index, const tcp::endpoint& server, std::string token,
                const options& o, std::string run_id, clock_type::time_point first,
                clock_type::duration period, clock_type::time_point end, clock_type::time_point measured_from,
                std::atomic<std::int64_t>& record_counter, rate_totals& totals)
        : strand_(net::make_strand(ioc)),
          timer_(strand_),
          index_(index),
          server_(server),
          token_(std::move(token)),
          o_(o),
          run_id_(std::move(run_id)),
          first_(first),
          period_(period),
          end_(end),
          measured_from_(measured_from),
          records_(record_counter),
          totals_(totals),
          ids_(std::random_device{}() ^ (static_cast<std::uint64_t>(index) << 32)) {}

    // Before the io_context runs: one connection made synchronously, so the first sets do
    // not pay for a connect the device would have made long before.
    void preconnect() {
        auto c = std::make_shared<rate_connection>(strand_);
        open_from(c->socket, server_, static_cast<std::size_t>(index_) * k_max_connections_per_device / 64);
        c->socket.connect(server_);
        c->socket.set_option(tcp::no_delay(true));
        c->busy = false;
        conns_.push_back(std::move(c));
    }

    void start() {
        ++totals_.scheduling;
        net::post(strand_, [self = shared_from_this()] { self->arm(0); });
    }

    void shut() {
        net::post(strand_, [self = shared_from_this()] {
            self->stopping_ = true;
            self->timer_.cancel();
            for (auto& c : self->conns_) {
                boost::system::error_code ec;
                c->socket.close(ec);
            }
            self->queue_.clear();
        });
    }

private:
    void arm(std::int64_t k) {
        const auto at = first_ + k * period_;
        if (at >= end_ || stopping_) {
            --totals_.scheduling;
            return;
        }
        timer_.expires_at(at);
        timer_.async_wait([self = shared_from_this(), k, at](boost::system::error_code ec) {
            if (ec || self->stopping_) {
                --self->totals_.scheduling;
                return;
            }
            ++self->totals_.due;
            self->queue_.push_back({k, at});
            self->dispatch();
            self->arm(k + 1);
        });
    }

    void dispatch() {
        while (!queue_.empty() && !stopping_) {
            auto free = std::find_if(conns_.begin(), conns_.end(), [](const auto& c) { return !c->busy; });
            if (free == conns_.end()) {
                if (conns_.size() < k_max_connections_per_device) connect_another();
                return;  // the set waits for a connection; its latency keeps running
            }
            const auto p = queue_.front();
            queue_.pop_front();
            send(*free, p);
        }
    }

    void connect_another() {
        auto c = std::make_shared<rate_connection>(strand_);
        conns_.push_back(c);
        open_from(c->socket, server_, static_cast<std::size_t>(index_) * k_max_connections_per_device / 64);
        c->socket.async_connect(server_, [self = shared_from_this(), c](boost::system::error_code ec) {
            if (ec) {
                self->drop(c);
                self->fail_front("connecting: " + ec.message());
                return;
            }
            boost::system::error_code ignored;
            c->socket.set_option(tcp::no_delay(true), ignored);
            c->busy = false;
            self->dispatch();
        });
    }

    // A connection that could not be made fails the oldest waiting set: without it a device
    // whose connects all fail would queue forever.
    void fail_front(const std::string& why) {
        if (queue_.empty()) return;
        const auto p = queue_.front();
        queue_.pop_front();
        record(p, clock_type::now(), false, why);
    }

    void drop(const std::shared_ptr<rate_connection>& c) {
        boost::system::error_code ec;
        c->socket.close(ec);
        conns_.erase(std::remove(conns_.begin(), conns_.end(), c), conns_.end());
    }

    void send(const std::shared_ptr<rate_connection>& c, const pending_set& p) {
        c->busy = true;
        // The records as run_device builds them: new ids, put, base version 0.
        const std::int64_t first_record = records_.fetch_add(o_.batch);
        const std::string set_id = run_id_ + "-" + std::to_string(index_) + "-" + std::to_string(p.k);
        std::string body;
        body.reserve(static_cast<std::size_t>(o_.batch) * (k_record_bytes + 160) + 64);
        body += R"({"batch_id":"b-)" + set_id + R"(","cursor":"","limit":1,"changes":[)";
        record_id id;
        for (std::int64_t j = 0; j < o_.batch; ++j) {
            const std::int64_t i = first_record + j;
            ids_.next(o_.random_ids, id);
            if (j != 0) body += ',';
            append_new_record(body, set_id, j, id, i);
        }
        body += "]}";

        c->req = {http::verb::post, "/v1/sync", 11};
        c->req.set(http::field::host, "127.0.0.1");
        c->req.set(http::field::authorization, "Bearer " + token_);
        c->req.set(http::field::content_type, "application/json");
        c->req.keep_alive(true);
        c->req.body() = std::move(body);
        c->req.prepare_payload();
        c->res = {};
        const auto sent = clock_type::now();
        http::async_write(c->socket, c->req, [self = shared_from_this(), c, p, sent](boost::system::error_code ec,
                                                                                     std::size_t) {
            if (ec) return self->finish(c, p, sent, "writing: " + ec.message());
            http::async_read(c->socket, c->buffer, c->res,
                             [self, c, p, sent](boost::system::error_code ec, std::size_t) {
                                 self->finish(c, p, sent, ec ? "reading: " + ec.message() : std::string());
                             });
        });
    }

    void finish(const std::shared_ptr<rate_connection>& c, const pending_set& p, clock_type::time_point sent,
                const std::string& io_error) {
        const auto now = clock_type::now();
        if (stopping_) return;
        std::string error = io_error;
        std::int64_t applied = 0, merged = 0, conflict = 0, rejected = 0;
        if (error.empty() && c->res.result_int() != 200)
            error = "HTTP " + std::to_string(c->res.result_int()) + ": " + c->res.body();
        if (error.empty()) {
            try {
                const json res = json::parse(c->res.body());
                const auto& results = res.at("results");
                if (static_cast<std::int64_t>(results.size()) != o_.batch)
                    error = "the server answered " + std::to_string(results.size()) + " results for " +
                            std::to_string(o_.batch) + " changes";
                for (const auto& r : results) {
                    const auto& s = r.at("status").get_ref<const std::string&>();
                    (s == "applied" ? applied : s == "merged" ? merged : s == "conflict" ? conflict : rejected) += 1;
                }
            } catch (const std::exception& e) {
                error = std::string("the answer: ") + e.what();
            }
        }
        if (!io_error.empty() || !c->res.keep_alive())
            drop(c);
        else
            c->busy = false;
        {
            std::lock_guard lock(totals_.mutex);
            totals_.applied += applied;
            totals_.merged += merged;
            totals_.conflict += conflict;
            totals_.rejected += rejected;
        }
        record(p, now, error.empty(), error, std::chrono::duration<double, std::milli>(sent - p.scheduled).count());
        dispatch();
    }

    void record(const pending_set& p, clock_type::time_point now, bool ok, const std::string& error,
                double send_delay_ms = 0) {
        {
            std::lock_guard lock(totals_.mutex);
            totals_.samples.push_back({std::chrono::duration<double, std::milli>(now - p.scheduled).count(),
                                       send_delay_ms, p.scheduled >= measured_from_, ok, now});
            if (!ok && totals_.first_error.empty()) totals_.first_error = "device " + std::to_string(index_) + ": " + error;
        }
        ++totals_.finished;
    }

    net::strand<net::io_context::executor_type> strand_;
    net::steady_timer timer_;
    const int index_;
    const tcp::endpoint server_;
    const std::string token_;
    const options& o_;
    const std::string run_id_;
    const clock_type::time_point first_;
    const clock_type::duration period_;
    const clock_type::time_point end_;
    const clock_type::time_point measured_from_;
    std::atomic<std::int64_t>& records_;
    rate_totals& totals_;
    id_maker ids_;
    std::vector<std::shared_ptr<rate_connection>> conns_;
    std::deque<pending_set> queue_;
    bool stopping_ = false;
};

struct rate_figures {
    double offered = 0;      // changes/s
    double answered = 0;     // changes/s
    double p50 = 0, p99 = 0, p999 = 0, max = 0;
    std::int64_t late = 0;
    std::int64_t errors = 0;
};

// One run at `rate` change-sets per second per device; prints its figures.
rate_figures run_rate_once(const options& o, const bench_target& t, const tcp::endpoint& server, double rate,
                           std::atomic<std::int64_t>& record_counter) {
    rate_totals totals;
    const auto period = std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1.0 / rate));
    const std::string run_id = make_run_id();
    net::io_context ioc;
    std::vector<std::shared_ptr<rate_device>> devices;
    // Starts a little ahead, so preconnecting does not make the first sets late; each device
    // is offset by its share of the period so the sets are spread evenly, not in bursts.
    const auto expected_sets = static_cast<std::size_t>(static_cast<double>(o.devices) * rate *
                                                        static_cast<double>(o.seconds)) + 16;
    totals.samples.reserve(expected_sets);
    const auto start = clock_type::now() + std::chrono::milliseconds(200 + 2 * o.devices);
    const auto end = start + std::chrono::seconds(o.seconds);
    const auto measured_from = start + std::chrono::seconds(1);
    for (int d = 0; d < o.devices; ++d) {
        const auto phase = period * d / o.devices;
        devices.push_back(std::make_shared<rate_device>(ioc, d, server, t.tokens[static_cast<std::size_t>(d)], o,
                                                        run_id, start + phase, period, end, measured_from,
                                                        record_counter, totals));
        devices.back()->preconnect();
    }
    if (clock_type::now() > start)
        std::cerr << "fieldsync-bench: connecting the devices took past the start; the first sets count late\n";
    auto work = net::make_work_guard(ioc);
    std::vector<std::thread> threads;
    for (int i = 0; i < k_client_threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
    for (auto& d : devices) d->start();

    // Waits for the schedule to end and the answers in flight, at most k_drain past the end.
    std::this_thread::sleep_until(end);
    const auto deadline = end + k_drain;
    while (clock_type::now() < deadline && (totals.scheduling > 0 || totals.finished < totals.due))
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (auto& d : devices) d->shut();
    work.reset();
    for (auto& th : threads) th.join();

    // Figures over the sets scheduled after the warm-up second.
    std::lock_guard lock(totals.mutex);
    rate_figures f;
    std::vector<double> latencies;
    std::int64_t answered_sets = 0, behind = 0;
    clock_type::time_point last_answer = measured_from;
    for (const auto& s : totals.samples) {
        if (!s.measured) continue;
        if (!s.ok) {
            ++f.errors;
            continue;
        }
        latencies.push_back(s.latency_ms);
        ++answered_sets;
        last_answer = std::max(last_answer, s.answered);
        if (s.latency_ms > std::chrono::duration<double, std::milli>(period).count()) ++f.late;
        if (s.send_delay_ms > 10) ++behind;
    }
    const std::int64_t unanswered = totals.due - totals.finished;
    f.errors += unanswered;
    const double window_s = std::chrono::duration<double>(last_answer - measured_from).count();
    f.offered = static_cast<double>(o.devices) * rate * static_cast<double>(o.batch);
    f.answered = window_s > 0 ? static_cast<double>(answered_sets * o.batch) / window_s : 0;
    f.p50 = percentile(latencies, 0.50);
    f.p99 = percentile(latencies, 0.99);
    f.p999 = percentile(latencies, 0.999);
    f.max = percentile(latencies, 1.0);

    std::cout << "rate " << fixed(rate, rate < 1 ? 2 : 0) << " sets/s per device: offered " << fixed(f.offered, 0)
              << " changes/s, answered " << fixed(f.answered, 0) << " changes/s (" << answered_sets
              << " change-sets after the warm-up second; every set, warm-up included: applied " << totals.applied << ", merged " << totals.merged
              << ", conflict " << totals.conflict << ", rejected " << totals.rejected << ")\n";
    std::cout << "rate " << fixed(rate, rate < 1 ? 2 : 0) << " latency from the scheduled time: p50 " << fixed(f.p50)
              << " ms, p99 " << fixed(f.p99) << " ms, p99.9 " << fixed(f.p999) << " ms, max " << fixed(f.max)
              << " ms; late (answered after the device's next set was due) " << f.late << ", sent > 10 ms behind schedule "
              << behind << ", errors " << f.errors << (unanswered > 0 ? " (" + std::to_string(unanswered) + " unanswered)" : "")
              << "\n"
              << std::flush;
    if (!totals.first_error.empty()) std::cerr << "fieldsync-bench: first error: " << totals.first_error << "\n";
    if (totals.rejected > 0) ++f.errors;  // a rejected new record is a broken run, not a slow one
    return f;
}

// ---- --idle-connections ------------------------------------------------------------------

// The resident set of this process (VmRSS), in KiB.
std::int64_t rss_kib() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    return -1;
}

// Idle connections are two descriptors each in this process (client and server side).
void raise_nofile_limit() {
    rlimit l{};
    if (getrlimit(RLIMIT_NOFILE, &l) != 0) return;
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
}

std::string mib(std::int64_t kib) { return fixed(static_cast<double>(kib) / 1024.0, 1) + " MiB"; }

}  // namespace

int run_rate(const options& o) {
    raise_nofile_limit();
    auto t = host_or_connect(o);
    const auto server = resolve(t.where);
    std::cout << "fieldsync-bench: open loop, " << o.devices << " devices, " << o.batch
              << " changes per change-set, " << o.seconds << " s per run (the first second is warm-up), "
              << (o.random_ids ? "random (UUIDv4)" : "time-ordered (UUIDv7)") << " ids, "
              << std::thread::hardware_concurrency() << " cores, " << k_client_threads << " client threads\n"
              << std::flush;
    std::atomic<std::int64_t> record_counter{0};
    int exit_code = 0;
    double best = 0;
    for (double rate = o.rate;; rate *= 2) {
        const auto f = run_rate_once(o, t, server, rate, record_counter);
        if (f.errors > 0) exit_code = 1;
        const bool within = f.errors == 0 && f.p99 < k_sweep_p99_ms;
        if (within) best = f.answered;
        if (!o.rate_sweep || !within) break;
    }
    if (o.rate_sweep) {
        // The answered rate of the last run within the bound: what was served, not offered.
        if (best > 0)
            std::cout << "highest rate with p99 < " << fixed(k_sweep_p99_ms, 0) << " ms: " << fixed(best, 0)
                      << " changes/s\n";
        else
            std::cout << "highest rate with p99 < " << fixed(k_sweep_p99_ms, 0) << " ms: none (the first rate was over)\n";
        exit_code = 0;  // the sweep ends on an error or a slow run by design
    }
    if (t.srv) t.srv->stop();
    if (t.st) t.st->close();
    if (!t.temp_dir.empty() && !o.keep) {
        std::error_code ec;
        std::filesystem::remove_all(t.temp_dir, ec);
    }
    return exit_code;
}

int run_idle_connections(const options& o) {
    raise_nofile_limit();
    options ho = o;
    ho.devices = 1;  // every connection signs in with the same device
    auto t = host_or_connect(ho);
    const auto server = resolve(t.where);
    const std::int64_t cap = o.max_connections > 0 ? o.max_connections
                                                   : static_cast<std::int64_t>(fsrv::tuning::max_connections);
    const std::int64_t n = o.idle_connections > 0 ? o.idle_connections : cap;
    rlimit l{};
    getrlimit(RLIMIT_NOFILE, &l);
    std::cout << "fieldsync-bench: idle keep-alive connections, each after one pull of 1 record; up to " << n
              << " (the server's cap: " << cap << "; descriptors: " << l.rlim_cur
              << ", two per connection here). RSS is this whole process: the server and the client"
                 " sockets (Asio socket objects only, no buffers kept; kernel socket buffers are not in RSS)\n"
              << std::flush;

    net::io_context ioc;
    std::vector<tcp::socket> sockets;
    sockets.reserve(static_cast<std::size_t>(n));
    const std::string request = "POST /v1/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                                t.tokens.front() +
                                "\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n"
                                R"({"cursor":"","limit":1}  )";
    // One request first, so the baseline has the store's and the handler's first-use memory.
    {
        tcp::socket s(ioc);
        open_from(s, server, 0);
        s.connect(server);
        net::write(s, net::buffer(request));
        beast::flat_buffer b;
        http::response<http::string_body> res;
        http::read(s, b, res);
        if (res.result_int() != 200)
            throw std::runtime_error("the first pull: HTTP " + std::to_string(res.result_int()) + ": " + res.body());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::int64_t baseline = rss_kib();
    std::cout << "idle connections: 0, RSS " << mib(baseline) << " (baseline)\n" << std::flush;

    const auto t0 = clock_type::now();
    std::int64_t open = 0, refused = 0, failed = 0;
    std::string first_refusal;
    for (std::int64_t target = std::min<std::int64_t>(1000, n);; target = std::min(n, target + 1000)) {
        std::int64_t step_refused = 0;
        // At the cap the server first evicts the connection idle the longest (if idle long
        // enough), else refuses with 503: 100 refusals in a step end the run.
        while (open < target && step_refused < 100 && failed < 100) {
            tcp::socket s(ioc);
            const auto group = static_cast<std::size_t>(open + refused + failed) / 60;  // under 64 per address
            try {
                open_from(s, server, group);
                s.connect(server);
                net::write(s, net::buffer(request));
                beast::flat_buffer b;
                http::response<http::string_body> res;
                http::read(s, b, res);
                if (res.result_int() == 200 && res.keep_alive()) {
                    sockets.push_back(std::move(s));
                    ++open;
                } else {
                    ++step_refused;
                    if (first_refusal.empty())
                        first_refusal = "HTTP " + std::to_string(res.result_int()) + ": " + res.body();
                }
            } catch (const boost::system::system_error& e) {
                ++failed;
                if (first_refusal.empty()) first_refusal = e.what();
            }
        }
        refused += step_refused;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the server settle its sessions
        const std::int64_t rss = rss_kib();
        const auto held = t.srv->open_connections();
        std::cout << "idle connections: " << open << " open (the server holds " << held << "), RSS " << mib(rss)
                  << ", +" << mib(rss - baseline) << " over the baseline, "
                  << fixed(open > 0 ? static_cast<double>(rss - baseline) / static_cast<double>(open) : 0, 2)
                  << " KiB per connection"
                  << (step_refused > 0 ? "; " + std::to_string(step_refused) + " refused (the connection cap: " +
                                             first_refusal + ")"
                                       : "")
                  << "\n"
                  << std::flush;
        if (step_refused > 0 || failed >= 100 || open >= n) break;
    }
    const double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
    if (elapsed * 1000 > static_cast<double>(fsrv::tuning::read_timeout.count()) * 0.8)
        std::cout << "note: the run took " << fixed(elapsed, 1)
                  << " s; the server closes a connection idle for 30 s, so the first ones may have gone\n";
    if (failed > 0) std::cerr << "fieldsync-bench: " << failed << " connections failed: " << first_refusal << "\n";

    for (auto& s : sockets) {
        boost::system::error_code ec;
        s.close(ec);
    }
    if (t.srv) t.srv->stop();
    if (t.st) t.st->close();
    if (!t.temp_dir.empty() && !o.keep) {
        std::error_code ec;
        std::filesystem::remove_all(t.temp_dir, ec);
    }
    return failed > 0 ? 1 : 0;
}

}  // namespace fieldsync::bench
