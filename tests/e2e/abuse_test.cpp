// Hardened access through HTTP: token guessing is slowed per address, one address cannot hold
// every connection, and every request is logged without its token. Hostile clients
// (issue 7): slowloris, connection floods over the caps, pipelined junk and clients that
// never read their answers, each while an honest client keeps syncing.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <map>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>

extern char** environ;

namespace fieldsync::e2e {
namespace {

using namespace std::chrono_literals;

http_reply get_with(const server_fixture& f, const std::string& token) {
    return http_request(f.port(), "GET", "/v1/conflicts", "", {{"Authorization", "Bearer " + token}});
}

}  // namespace

TEST_CASE("guessing tokens is slowed: past the allowance an address's failures get 429, late, until its window ends",
          "[e2e][abuse][auth]") {
    auto options = server_fixture::quick_options();
    options.max_auth_failures = 5;
    options.auth_failure_window = std::chrono::seconds(2);
    options.failed_sign_in_delay = 300ms;
    server_fixture f(options);
    CHECK(get_with(f, f.token()).status == 200);

    for (int i = 0; i < 5; ++i) {
        const auto r = get_with(f, "fs1_" + std::string(64, static_cast<char>('a' + i)));
        CHECK(r.status == 401);
        CHECK(r.error_code() == "unauthorized");
    }
    // The sixth guess is refused 429, and not before the delay: an address cannot guess fast.
    const auto sent = std::chrono::steady_clock::now();
    const auto limited = get_with(f, "fs1_" + std::string(64, 'z'));
    CHECK(std::chrono::steady_clock::now() - sent >= options.failed_sign_in_delay);
    CHECK(limited.status == 429);
    CHECK(limited.error_code() == "rate_limited");
    REQUIRE(limited.headers.count("retry-after"));
    const int wait = std::stoi(limited.headers.at("retry-after"));
    CHECK(wait >= 1);
    CHECK(wait <= 2);
    // A good token from the same address is served as ever.
    CHECK(get_with(f, f.token()).status == 200);
    // Requests that need no token are not held up.
    CHECK(http_request(f.port(), "GET", "/v1/health").status == 200);

    // The window ends: the address has a fresh allowance; a wrong token is a plain 401 again.
    REQUIRE(eventually([&] { return get_with(f, "fs1_" + std::string(64, 'y')).status == 401; }, 5s));
    CHECK(get_with(f, f.token()).status == 200);
}

TEST_CASE("ten bad sign-ins from one address do not lock out the honest devices behind it", "[e2e][abuse][auth]") {
    // Many phones of a commune reach the server through one carrier NAT address; one of them
    // holds a stale token and keeps trying.
    auto options = server_fixture::quick_options();
    options.failed_sign_in_delay = 100ms;
    server_fixture f(options);
    const auto neighbour = f.add_device("Máy chi bộ ấp Tân Hào", "xa-binh-hoa");
    for (int i = 0; i < 10; ++i) CHECK(get_with(f, "fs1_het-han-" + std::to_string(i)).status == 401);
    CHECK(get_with(f, "fs1_het-han-10").status == 429);
    // Served at once, a pull and a push alike.
    CHECK(get_with(f, f.token()).status == 200);
    CHECK(f.post_sync(json{{"cursor", ""}}, neighbour).status == 200);
    const auto pushed = f.sync(batch("b-nat", {put_change("c-nat", "members", "m-nat", 0,
                                                          {{"name", "Trần Thị Diễm"}, {"cell", "Chi bộ ấp Tân Hào"}})}),
                               neighbour);
    CHECK(only_result(pushed)["status"] == "applied");
    // The stale token is still throttled.
    CHECK(get_with(f, "fs1_het-han-11").status == 429);
}

TEST_CASE("one address cannot hold every connection", "[e2e][abuse][connections]") {
    auto options = server_fixture::quick_options();
    options.max_connections_per_address = 3;
    server_fixture f(options);
    std::vector<std::unique_ptr<raw_connection>> held;
    for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<raw_connection>(f.port()));
    // Give the server time to accept the three before the fourth arrives.
    REQUIRE(eventually([&] {
        raw_connection probe(f.port());
        probe.send(format_request("GET", "/v1/health", "", {}));
        const auto r = probe.read_reply(2s);
        return r && r->status == 503;
    }, 5s));
    // One goes; a new connection is served again.
    held.pop_back();
    REQUIRE(eventually([&] { return http_request(f.port(), "GET", "/v1/health").status == 200; }, 5s));
    // The held connections still work.
    REQUIRE(held[0]->send(format_request("GET", "/v1/health", "", {})));
    const auto r = held[0]->read_reply();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("every request, refused or not, is logged on stderr with address, device and reason, never with the token",
          "[e2e][abuse][log][exe]") {
    const std::string bin = std::string(FIELDSYNC_BINARY_DIR) + "/server/fieldsync-server";
    const std::string admin = std::string(FIELDSYNC_BINARY_DIR) + "/tools/fieldsync-admin";
    REQUIRE(access(bin.c_str(), X_OK) == 0);
    temp_dir dir;
    const auto db = (dir.path() / "fieldsync.db").string();
    const auto out_file = (dir.path() / "stdout.txt").string();
    const auto err_file = (dir.path() / "stderr.txt").string();

    // The token comes from the admin tool, as an operator would get it.
    const auto token_file = (dir.path() / "token.txt").string();
    REQUIRE(std::system((admin + " --db " + db + " init 2>/dev/null").c_str()) == 0);
    REQUIRE(std::system((admin + " --db " + db + " device add --name 'Máy chi bộ' --unit ap-1 --unit-later > " + token_file).c_str()) == 0);
    std::string token;
    std::getline(std::ifstream(token_file), token);
    REQUIRE_FALSE(token.empty());

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::string> args{bin, "--db", db, "--listen", "127.0.0.1:0", "--threads", "1"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    struct reaper {
        pid_t pid;
        ~reaper() {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    } reap{pid};

    std::uint16_t port = 0;
    REQUIRE(eventually([&] {
        std::ifstream in(out_file);
        std::string line;
        if (!std::getline(in, line)) return false;
        const std::string prefix = "fieldsync-server listening on 127.0.0.1:";
        if (line.rfind(prefix, 0) != 0) return false;
        port = static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));
        return true;
    }, 10s));

    const std::string wrong = token + "0";
    CHECK(http_request(port, "GET", "/v1/conflicts", "", {{"Authorization", "Bearer " + wrong}}).status == 401);
    CHECK(http_request(port, "GET", "/v1/records/members/nobody", "", {{"Authorization", "Bearer " + token}}).status ==
          404);
    CHECK(http_request(port, "PUT", "/v1/sync", "", {{"Authorization", "Bearer " + token}}).status == 405);
    // Refused after its body was read (by the router, not from the header alone).
    CHECK(http_request(port, "POST", "/v1/sync?x=1", "{\"batch_id\": ", {{"Authorization", "Bearer " + token},
                                                                         {"Content-Type", "application/json"}})
              .status == 400);
    CHECK(http_request(port, "GET", "/v1/health").status == 200);

    std::string log;
    std::vector<json> lines;
    REQUIRE(eventually([&] {
        std::stringstream ss;
        ss << std::ifstream(err_file).rdbuf();
        log = ss.str();
        lines.clear();
        std::istringstream in(log);
        for (std::string l; std::getline(in, l);) {
            auto j = json::parse(l, nullptr, false);
            if (j.is_object() && j.contains("route")) lines.push_back(j);
        }
        return lines.size() >= 5;
    }, 5s));
    // One line per request (ARCHITECTURE.md, "Operations"), refused or not. A line is written
    // once its answer is, so lines are found by status rather than by position.
    REQUIRE(lines.size() == 5);
    std::map<int, json> by_status;
    for (const auto& l : lines) by_status[l["status"].get<int>()] = l;
    REQUIRE(by_status.size() == 5);
    CHECK(by_status[401]["code"] == "unauthorized");
    CHECK(by_status[401]["remote"] == "127.0.0.1");
    CHECK(by_status[401]["route"] == "/v1/conflicts");
    CHECK_FALSE(by_status[401].contains("device"));
    CHECK(by_status[404]["code"] == "not_found");
    CHECK(by_status[404]["route"] == "/v1/records/{collection}/{id}");
    CHECK_FALSE(by_status[404]["device"].get<std::string>().empty());  // a known device is named
    CHECK(by_status[405]["code"] == "method_not_allowed");
    CHECK(by_status[400]["code"] == "bad_json");  // refused by the router, once its body was read
    CHECK(by_status[400]["method"] == "POST");
    CHECK(by_status[400]["route"] == "/v1/sync");
    CHECK_FALSE(by_status[400]["device"].get<std::string>().empty());
    CHECK(by_status[200]["route"] == "/v1/health");
    CHECK(log.find("nobody") == std::string::npos);  // route templates, not paths with ids
    // No token, right or wrong, is ever written.
    CHECK(log.find(token.substr(4)) == std::string::npos);
    CHECK(log.find("Bearer") == std::string::npos);
}

// ---- hostile clients (issue 7) ---------------------------------------------------------------

namespace {

// A TCP connection from a chosen loopback source address (every 127.x.y.z reaches the
// server), so one test attacks from many addresses as from many hosts. Non-blocking once
// connected; no Catch assertions, so attacker threads may use it.
class attack_socket {
public:
    attack_socket(const std::string& source, std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) return;
        sockaddr_in from{};
        from.sin_family = AF_INET;
        ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        ::fcntl(fd_, F_SETFL, O_NONBLOCK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
            close_fd();
            return;
        }
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
            if (errno != EINPROGRESS) {
                close_fd();
                return;
            }
            pollfd p{fd_, POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof err;
            if (::poll(&p, 1, 2000) != 1 || ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
                close_fd();
        }
    }
    ~attack_socket() { close_fd(); }
    attack_socket(const attack_socket&) = delete;
    attack_socket& operator=(const attack_socket&) = delete;

    bool ok() const { return fd_ >= 0; }
    /// Sends what the socket takes now; false once the connection failed.
    bool send_some(std::string_view bytes) {
        if (fd_ < 0) return false;
        const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        return n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK;
    }
    /// Appends what has arrived (without waiting for more); false once the server has closed
    /// the connection (end of stream or reset).
    bool read_available(std::string* into = nullptr) {
        if (fd_ < 0) return false;
        char buf[16 * 1024];
        for (;;) {
            const auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) {
                received_ += static_cast<std::size_t>(n);
                if (into) into->append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
            return false;
        }
    }
    /// Waits up to `timeout` for the server to close the connection, reading all it sends.
    bool wait_closed(std::chrono::milliseconds timeout, std::string* into = nullptr) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (!read_available(into)) return true;
            pollfd p{fd_, POLLIN, 0};
            ::poll(&p, 1, 20);
        }
        return false;
    }
    std::size_t received() const { return received_; }

private:
    void close_fd() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    int fd_ = -1;
    std::size_t received_ = 0;
};

// Attacking addresses: 127.0.0.2 and up (the honest client and the fixture use 127.0.0.1).
std::vector<std::string> attack_sources(int first, int count) {
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) out.push_back("127.0.0." + std::to_string(first + i));
    return out;
}

// Runs `body(stop)` on a thread of its own until destroyed.
class attack {
public:
    explicit attack(std::function<void(const std::atomic<bool>&)> body)
        : thread_([this, body = std::move(body)] { body(stop_); }) {}
    ~attack() {
        stop_ = true;
        thread_.join();
    }

private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// The largest number of open connections (sessions, refused ones included) seen by samples
// taken every few milliseconds while it lives.
class session_watch {
public:
    explicit session_watch(srv::server& s)
        : sampler_([this, &s](const std::atomic<bool>& stop) {
              while (!stop) {
                  const auto n = s.open_connections();
                  std::size_t seen = max_.load();
                  while (n > seen && !max_.compare_exchange_weak(seen, n)) {
                  }
                  std::this_thread::sleep_for(5ms);
              }
          }) {}
    std::size_t max() const { return max_.load(); }

private:
    std::atomic<std::size_t> max_{0};
    attack sampler_;
};

// An honest device: `n` change-sets, one new record each, pulled incrementally (it keeps the
// cursor). Every answer must be 200 with the change applied, within the client's timeout;
// every fifth record is read back. With `may_retry`, a 503 or a cut connection is retried as
// the client library does (same change ids), within 10 s per change; otherwise the first
// answer must be right. Prints the latency percentiles (not asserted) and the retries.
void honest_device(server_fixture& f, const std::string& what, int n, bool may_retry = false) {
    std::vector<double> ms;
    int retries = 0;
    std::string cursor;
    const std::string names[] = {"Phạm Thị Thu Hà", "Huỳnh Văn Lộc", "Đặng Thị Ngọc Ánh"};
    auto served = [&](const std::function<http_reply()>& call) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) {
            auto r = call();
            const bool transient = r.status == 0 || (r.status == 503 && r.error_code() == "unavailable");
            if (!may_retry || !transient || std::chrono::steady_clock::now() > deadline) return r;
            ++retries;
            std::this_thread::sleep_for(20ms);
        }
    };
    for (int i = 0; i < n; ++i) {
        auto id = "honest-" + what + "-" + std::to_string(i);
        std::replace(id.begin(), id.end(), ' ', '-');
        // Half of the names travel decomposed (NFD), as some phone keyboards send them.
        const auto name = i % 2 ? to_nfd(names[i % 3]) : names[i % 3];
        const auto body = batch("b-" + id, {put_change("c-" + id, "members", id, 0, {{"name", name}, {"cell", "Chi bộ ấp Giồng Trôm"}})},
                                cursor);
        const auto start = std::chrono::steady_clock::now();
        const auto r = served([&] { return f.post_sync(body); });
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        INFO(what << " sync " << i << ": " << r.status << " " << r.body.substr(0, 300));
        REQUIRE(r.status == 200);
        const auto j = r.body_json();
        REQUIRE(j["results"].size() == 1);
        CHECK(j["results"][0]["status"] == "applied");
        cursor = j["cursor"].get<std::string>();
        if (i % 5 == 0) {
            const auto rec = served([&] { return f.get("/v1/records/members/" + id); });
            REQUIRE(rec.status == 200);
            CHECK(rec.body_json()["data"]["name"] == name);
        }
    }
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * ms.size()))]; };
    std::cout << "hostile clients, " << what << ": honest device, " << n << " syncs, latency ms p50 " << pct(0.5)
              << " p90 " << pct(0.9) << " p99 " << pct(0.99) << " max " << ms.back() << "; retries " << retries
              << std::endl;
}

// The bound on sessions the server may hold, whatever the clients do.
std::size_t session_bound(const srv::server_options& o) {
    return o.max_connections + srv::tuning::evicting_connections + srv::tuning::refusing_connections;
}

}  // namespace

TEST_CASE("slowloris: hundreds of connections trickling their headers are cut, an honest device keeps syncing",
          "[e2e][abuse][hostile][slowloris]") {
    auto o = server_fixture::quick_options();  // a header must arrive within 1 s
    server_fixture f(o);
    std::atomic<int> opened{0}, cut{0};
    {
        session_watch watch(f.server());
        // 8 addresses x 40 connections, each sending one byte of a header every 100 ms (a
        // whole header would take minutes), and opening a new connection when cut.
        attack slow([&, port = f.port()](const std::atomic<bool>& stop) {
            const std::string header = "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(2000, 'z') + "\r\n\r\n";
            struct conn {
                std::unique_ptr<attack_socket> s;
                std::size_t sent = 0;
            };
            const auto sources = attack_sources(2, 8);
            std::vector<std::pair<std::string, conn>> conns;
            for (const auto& src : sources)
                for (int i = 0; i < 40; ++i) conns.push_back({src, conn{}});
            while (!stop) {
                for (auto& [src, c] : conns) {
                    if (stop) break;
                    if (!c.s || !c.s->read_available() || !c.s->send_some(std::string_view(&header[c.sent % header.size()], 1))) {
                        if (c.s && c.s->ok()) ++cut;
                        c.s = std::make_unique<attack_socket>(src, port);
                        c.sent = 0;
                        if (c.s->ok()) ++opened;
                        continue;
                    }
                    ++c.sent;
                }
                std::this_thread::sleep_for(100ms);
            }
        });
        REQUIRE(eventually([&] { return opened.load() >= 300; }, 20s));
        honest_device(f, "slowloris", 40);
        // The attack went on long enough for its connections to hit the header deadline.
        REQUIRE(eventually([&] { return cut.load() >= 100; }, 20s));
        CHECK(watch.max() <= session_bound(o));
    }
    std::cout << "hostile clients, slowloris: " << opened.load() << " slow connections opened, " << cut.load()
              << " cut by the server" << std::endl;
    CHECK(eventually([&] { return f.server().open_connections() == 0; }, 10s));
}

TEST_CASE("connection floods over the per-address and total caps: idle connections make room, an honest device keeps syncing",
          "[e2e][abuse][hostile][flood]") {
    auto o = server_fixture::quick_options();
    o.max_connections = 64;
    o.max_connections_per_address = 16;
    server_fixture f(o);
    std::atomic<int> opened{0}, refused{0}, closed{0};
    // Holds `per_source` idle connections from each source, opening a new one as soon as
    // one is answered (503) or closed.
    auto flood = [&, port = f.port()](std::vector<std::string> sources, int per_source) {
        return [&, port, sources, per_source](const std::atomic<bool>& stop) {
            std::vector<std::pair<std::string, std::unique_ptr<attack_socket>>> conns;
            for (const auto& src : sources)
                for (int i = 0; i < per_source; ++i) conns.emplace_back(src, nullptr);
            while (!stop) {
                for (auto& [src, s] : conns) {
                    if (stop) break;
                    std::string got;
                    if (s && s->read_available(&got) && got.empty()) continue;
                    if (s) (got.find(" 503 ") != std::string::npos ? refused : closed)++;
                    s = std::make_unique<attack_socket>(src, port);
                    if (s->ok()) ++opened;
                }
                std::this_thread::sleep_for(50ms);
            }
        };
    };
    {
        session_watch watch(f.server());
        // One address wants 40 connections (its cap is 16); 8 others want 12 each: 136 in all
        // against a total cap of 64.
        attack greedy(flood(attack_sources(2, 1), 40));
        attack many(flood(attack_sources(3, 8), 12));
        REQUIRE(eventually([&] { return refused.load() >= 50 && opened.load() >= 300; }, 20s));
        honest_device(f, "flood", 40, true);
        CHECK(watch.max() <= session_bound(o));
    }
    std::cout << "hostile clients, flood: " << opened.load() << " connections opened, " << refused.load()
              << " answered 503, " << closed.load() << " closed by the server" << std::endl;
    CHECK(eventually([&] { return f.server().open_connections() == 0; }, 10s));
}

namespace {

// The statuses of the HTTP/1.1 responses in `bytes`, in order (bodies by Content-Length).
std::vector<int> statuses(const std::string& bytes) {
    std::vector<int> out;
    std::size_t at = 0;
    while (at < bytes.size()) {
        if (bytes.compare(at, 9, "HTTP/1.1 ") != 0) {
            out.push_back(-1);  // not a response where one should start
            break;
        }
        const auto head_end = bytes.find("\r\n\r\n", at);
        if (head_end == std::string::npos) break;
        out.push_back(std::stoi(bytes.substr(at + 9, 3)));
        std::size_t length = 0;
        auto head = bytes.substr(at, head_end - at);
        std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
        if (const auto cl = head.find("\r\ncontent-length: "); cl != std::string::npos)
            length = std::stoul(head.substr(cl + 18));
        at = head_end + 4 + length;
    }
    return out;
}

}  // namespace

TEST_CASE("pipelined junk after good requests: the good ones are answered, the junk 4xx and closed, while an honest device keeps syncing",
          "[e2e][abuse][hostile][pipelining]") {
    server_fixture f;
    f.sync(batch("b-seed", {put_change("c-seed", "members", "m-seed", 0, {{"name", "Võ Thị Sáu"}, {"cell", "Chi bộ ấp 2"}})}));
    const std::string good = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /v1/records/members/m-seed HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                             f.token() + "\r\n\r\n";
    const std::vector<std::string> junk = {
        std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + std::string(200, '\xff') + "\r\n\r\n",  // a TLS hello
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'a') + "\r\n\r\n",
        "BREW /v1/health HTCPCP/1.0\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    std::atomic<int> rounds{0};
    std::mutex mutex;
    std::vector<std::string> unexpected;  // what a round got instead of 200, 200, 4xx, close
    {
        std::vector<std::unique_ptr<attack>> attackers;
        for (int t = 0; t < 3; ++t) {
            attackers.push_back(std::make_unique<attack>([&, t, port = f.port()](const std::atomic<bool>& stop) {
                for (std::size_t i = static_cast<std::size_t>(t); !stop; ++i) {
                    attack_socket s("127.0.0." + std::to_string(2 + t), port);
                    if (!s.ok() || !s.send_some(good + junk[i % junk.size()])) continue;
                    std::string got;
                    const bool closed = s.wait_closed(5s, &got);
                    const auto st = statuses(got);
                    const bool as_expected = closed && st.size() == 3 && st[0] == 200 && st[1] == 200 && st[2] >= 400 && st[2] < 500;
                    if (!as_expected) {
                        std::lock_guard lock(mutex);
                        std::string seen;
                        for (const int x : st) seen += std::to_string(x) + " ";
                        unexpected.push_back("junk " + std::to_string(i % junk.size()) + ": " + seen + (closed ? "closed" : "open"));
                    }
                    ++rounds;
                }
            }));
        }
        REQUIRE(eventually([&] { return rounds.load() >= 30; }, 30s));
        honest_device(f, "pipelined junk", 40);
    }
    std::cout << "hostile clients, pipelined junk: " << rounds.load() << " rounds" << std::endl;
    std::lock_guard lock(mutex);
    for (const auto& u : unexpected) INFO(u);
    CHECK(unexpected.empty());
}

TEST_CASE("clients that pipeline requests with large answers and never read are dropped by the write timeout, "
          "while an honest device keeps syncing",
          "[e2e][abuse][hostile][no_read]") {
    auto o = server_fixture::quick_options();
    o.write_timeout = 1000ms;
    server_fixture f(o);
    // 300 members with long notes: a full pull page is about 1.5 MB.
    std::string notes;
    while (notes.size() < 4000) notes += "Ghi chú sinh hoạt chi bộ: đồng chí tham gia đầy đủ, đóng đảng phí đúng hạn. ";
    for (int b = 0; b < 3; ++b) {
        std::vector<json> changes;
        for (int i = 0; i < 100; ++i) {
            const auto id = "m-" + std::to_string(b * 100 + i);
            changes.push_back(put_change("c-" + id, "members", id, 0,
                                         {{"name", "Trương Công Định"}, {"cell", "Chi bộ ấp 4"}, {"notes", notes}}));
        }
        f.sync(batch("seed-" + std::to_string(b), std::move(changes)));
    }
    const auto pull = batch("pull", {}).dump();
    const auto one = "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + f.token() +
                     "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(pull.size()) + "\r\n\r\n" + pull;
    std::string pipelined;
    for (int i = 0; i < 40; ++i) pipelined += one;
    const auto page = f.post_sync_text(pull);
    REQUIRE(page.status == 200);
    const std::size_t all_answers = 40 * page.body.size();

    std::vector<std::unique_ptr<attack_socket>> readers;
    {
        session_watch watch(f.server());
        for (int i = 0; i < 8; ++i) {
            readers.push_back(std::make_unique<attack_socket>("127.0.0." + std::to_string(2 + i), f.port()));
            REQUIRE(readers.back()->ok());
            REQUIRE(readers.back()->send_some(pipelined));
        }
        honest_device(f, "never reading", 20);
        // Each is cut once a write has waited 1 s: none of their sessions is left.
        CHECK(eventually([&] { return f.server().open_connections() == 0; }, 10s));
        CHECK(watch.max() <= session_bound(o));
    }
    // What the kernel had buffered still arrives, then the end: far less than 40 answers
    // (60 MB, more than any socket buffers of this machine hold).
    for (auto& r : readers) {
        CHECK(r->wait_closed(10s));
        CHECK(r->received() > 0);
        CHECK(r->received() < all_answers);
    }
}

}  // namespace fieldsync::e2e
