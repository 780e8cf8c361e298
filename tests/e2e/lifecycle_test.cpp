// Connections over their life (keep-alive, 100-continue), a graceful stop with requests in
// flight, and the two executables driven as an operator would: fieldsync-admin and
// fieldsync-server under SIGTERM.

#include "e2e/support.hpp"
#include "store_under_test.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <future>
#include <sstream>
#include <thread>

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace fieldsync::e2e {
namespace {

json member(const std::string& name) { return {{"name", name}, {"cell", "Chi bộ ấp 5"}}; }

std::string auth_header(const std::string& token) { return "Authorization: Bearer " + token + "\r\n"; }

// A child process with its stdout on a pipe.
struct child {
    pid_t pid = -1;
    int out = -1;

    static child spawn(const std::vector<std::string>& args) {
        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&actions, fds[0]);
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        child c;
        const int rc = posix_spawn(&c.pid, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        close(fds[1]);
        if (rc != 0) {
            close(fds[0]);
            throw std::runtime_error("cannot start " + args[0]);
        }
        c.out = fds[0];
        return c;
    }

    // Reads stdout up to the first newline (or EOF), waiting at most `timeout`.
    std::string read_line(std::chrono::milliseconds timeout) {
        std::string line;
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            pollfd p{out, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            char ch;
            const auto n = ::read(out, &ch, 1);
            if (n <= 0 || ch == '\n') break;
            line.push_back(ch);
        }
        return line;
    }

    std::string read_all(std::chrono::milliseconds timeout) {
        std::string all;
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            pollfd p{out, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            char buf[4096];
            const auto n = ::read(out, buf, sizeof buf);
            if (n <= 0) break;
            all.append(buf, static_cast<std::size_t>(n));
        }
        return all;
    }

    // The exit code, or -1 if it did not exit in time (it is then killed).
    int wait_exit(std::chrono::milliseconds timeout) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        int status = 0;
        while (std::chrono::steady_clock::now() < end) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(20ms);
        }
        return -1;
    }

    ~child() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
        if (out >= 0) close(out);
    }
};

// Runs a command to completion; returns {exit code, stdout}.
std::pair<int, std::string> run(const std::vector<std::string>& args) {
    auto c = child::spawn(args);
    auto out = c.read_all(20s);
    return {c.wait_exit(20s), out};
}

std::string binary(const std::string& rel) {
    const std::string path = std::string(FIELDSYNC_BINARY_DIR) + "/" + rel;
    if (access(path.c_str(), X_OK) != 0) throw std::runtime_error(path + " is not built");
    return path;
}

}  // namespace

TEST_CASE("keep-alive serves several requests on one connection", "[e2e][lifecycle]") {
    server_fixture f;
    raw_connection c(f.port());
    REQUIRE(c.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.read_reply();
    REQUIRE(r);
    CHECK(r->status == 200);
    const auto body = batch("b-1", {put_change("c-1", "members", "m-1", 0, member("Lê Thị Hương"))}).dump();
    REQUIRE(c.send("POST /v1/sync HTTP/1.1\r\nHost: x\r\n" + auth_header(f.token()) +
                   "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
    r = c.read_reply();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(only_result(r->body_json())["status"] == "applied");
    // A refused request on the same connection is answered too, and the connection goes on.
    REQUIRE(c.send("GET /v1/nowhere HTTP/1.1\r\nHost: x\r\n\r\n"));
    r = c.read_reply();
    REQUIRE(r);
    CHECK(r->status == 404);
    REQUIRE(c.send("GET /v1/records/members/m-1 HTTP/1.1\r\nHost: x\r\n" + auth_header(f.token()) + "\r\n"));
    r = c.read_reply();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("a client that asks for 100-continue gets it before sending its body", "[e2e][lifecycle]") {
    server_fixture f;
    const auto body = batch("b-1", {put_change("c-1", "members", "m-1", 0, member("Vũ Đức Cường"))}).dump();
    raw_connection c(f.port());
    REQUIRE(c.send("POST /v1/sync HTTP/1.1\r\nHost: x\r\n" + auth_header(f.token()) +
                   "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n"));
    auto interim = c.read_reply();
    REQUIRE(interim);
    CHECK(interim->status == 100);
    REQUIRE(c.send(body));
    auto r = c.read_reply();
    REQUIRE(r);
    CHECK(r->status == 200);

    // A request that will be refused is refused at once: no 100, no body needed.
    raw_connection d(f.port());
    REQUIRE(d.send("POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
                   "Content-Length: 100\r\n\r\n"));
    r = d.read_reply();
    REQUIRE(r);
    CHECK(r->status == 401);
}

TEST_CASE("stop() finishes a request in flight, closes idle connections, and what was answered is durable",
          "[e2e][lifecycle]") {
    server_fixture f;
    raw_connection idle(f.port());
    REQUIRE(idle.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(idle.read_reply());

    const auto body = batch("b-1", {put_change("c-1", "members", "m-1", 0, member("Đỗ Văn Hải"))}).dump();
    raw_connection in_flight(f.port());
    REQUIRE(in_flight.send("POST /v1/sync HTTP/1.1\r\nHost: x\r\n" + auth_header(f.token()) +
                           "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                           body.substr(0, body.size() / 2)));
    std::this_thread::sleep_for(100ms);  // lets the server take the header in; not a timing assertion

    auto stopped = std::async(std::launch::async, [&] { f.shut_down(); });
    // The idle connection is closed while the request in flight is still being received.
    CHECK(idle.wait_closed(5s));
    REQUIRE(in_flight.send(body.substr(body.size() / 2)));
    const auto r = in_flight.read_reply();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(only_result(r->body_json())["status"] == "applied");
    CHECK(r->headers.count("connection"));
    if (r->headers.count("connection")) CHECK(r->headers.at("connection") == "close");
    REQUIRE(stopped.wait_for(10s) == std::future_status::ready);

    f.restart();
    CHECK(f.get("/v1/records/members/m-1").status == 200);
}

TEST_CASE("many clients syncing through a stop: every change answered 200 is in the store afterwards", "[e2e][lifecycle]") {
    server_fixture f;
    const auto port = f.port();
    std::atomic<bool> go_on{true};
    std::vector<std::vector<std::string>> acknowledged(4);  // each written by its own thread only
    std::array<std::atomic<int>, 4> acknowledged_count{};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t) {
        clients.emplace_back([&, t] {
            for (int i = 0; go_on; ++i) {
                const auto id = "m-" + std::to_string(t) + "-" + std::to_string(i);
                http_reply r;
                try {
                    r = http_request(port, "POST", "/v1/sync",
                                     batch("b-" + id, {put_change("c-" + id, "members", id, 0, member("Lý Văn Sơn"))}).dump(),
                                     {{"Authorization", "Bearer " + f.token()}, {"Content-Type", "application/json"}});
                } catch (const std::exception&) {
                    break;  // refused: the server has stopped listening
                }
                if (r.status == 200 && only_result(r.body_json())["status"] == "applied") {
                    acknowledged[t].push_back(id);
                    ++acknowledged_count[t];
                }
                if (r.status == 0) break;
            }
        });
    }
    REQUIRE(eventually([&] { return acknowledged_count[0] > 0 && acknowledged_count[3] > 0; }));
    f.shut_down();
    go_on = false;
    for (auto& c : clients) c.join();

    f.restart();
    std::size_t total = 0;
    for (const auto& ids : acknowledged) {
        for (const auto& id : ids) {
            INFO(id);
            auto rec = f.store().get("members", id);
            REQUIRE(rec);
            CHECK(rec->has_value());
            ++total;
        }
    }
    CHECK(total > 0);
}

TEST_CASE("fieldsync-admin and fieldsync-server work as the README says, and SIGTERM stops cleanly", "[e2e][lifecycle][exe]") {
    const auto admin = binary("tools/fieldsync-admin");
    const auto server_bin = binary("server/fieldsync-server");
    temp_dir dir;
    const auto db = (dir.path() / "fieldsync.db").string();

    CHECK(run({admin, "--help"}).first == 0);
    CHECK(run({admin, "--db", db, "device", "add", "--help"}).first == 0);
    CHECK(run({admin, "--db", db, "frobnicate"}).first == 2);
    CHECK(run({admin, "--db", db, "device", "add", "--name", "x"}).first == 2);  // no --unit
    CHECK(run({admin, "--db", db, "device", "add", "--name", "x", "--unit", "u", "--role", "king"}).first == 2);
    REQUIRE(run({admin, "--db", db, "init"}).first == 0);
    const auto [add_rc, add_out] = run({admin, "--db", db, "device", "add", "--name", "Máy demo", "--unit", "xa-binh-hoa", "--unit-later"});
    REQUIRE(add_rc == 0);
    // Only the token, on one line.
    REQUIRE(!add_out.empty());
    CHECK(add_out.back() == '\n');
    const auto token = add_out.substr(0, add_out.size() - 1);
    CHECK(token.find_first_of(" \t\n") == std::string::npos);

    CHECK(run({server_bin, "--help"}).first == 0);
    CHECK(run({server_bin, "--db", db}).first == 2);
    CHECK(run({server_bin, "--db", db, "--listen", "nowhere"}).first == 2);
    CHECK(run({server_bin, "--db", db, "--listen", "example.org:80"}).first == 2);
    CHECK(run({server_bin, "--db", db, "--listen", "127.0.0.1:65536"}).first == 2);
    CHECK(run({server_bin, "--db", db, "--listen", "127.0.0.1:0", "--threads", "zero"}).first == 2);
    CHECK(run({server_bin, "--db", db, "--listen", "127.0.0.1:0", "--schema", (dir.path() / "missing.json").string()}).first == 2);

    auto srv_proc = child::spawn({server_bin, "--db", db, "--listen", "127.0.0.1:0", "--threads", "2"});
    const auto line = srv_proc.read_line(10s);
    const std::string prefix = "fieldsync-server listening on 127.0.0.1:";
    REQUIRE(line.rfind(prefix, 0) == 0);
    const auto port = static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));

    const auto body = batch("b-1", {put_change("c-1", "members", "m-1", 0, member("Nguyễn Thị Giang"))}).dump();
    auto r = http_request(port, "POST", "/v1/sync", body, {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
    REQUIRE(r.status == 200);
    CHECK(only_result(r.body_json())["status"] == "applied");

    // A device added while the server runs can sync at once.
    const auto [add2_rc, add2_out] = run({admin, "--db", db, "device", "add", "--name", "Máy thứ hai", "--unit", "xa-binh-hoa", "--unit-later", "--role", "reviewer"});
    REQUIRE(add2_rc == 0);
    const auto token2 = add2_out.substr(0, add2_out.size() - 1);
    CHECK(http_request(port, "GET", "/v1/records/members/m-1", "", {{"Authorization", "Bearer " + token2}}).status == 200);
    const auto [list_rc, list_out] = run({admin, "--db", db, "device", "list"});
    CHECK(list_rc == 0);
    CHECK(list_out.find("Máy demo") != std::string::npos);
    CHECK(list_out.find("Máy thứ hai") != std::string::npos);
    CHECK(list_out.find("reviewer") != std::string::npos);

    // Device and unit administration, also while the server runs.
    std::string id2;
    {
        std::istringstream lines(list_out);
        for (std::string l; std::getline(lines, l);)
            if (l.find("Máy thứ hai") != std::string::npos) id2 = l.substr(0, l.find(' '));
    }
    REQUIRE_FALSE(id2.empty());
    const auto [rot_rc, rot_out] = run({admin, "--db", db, "device", "rotate", id2});
    REQUIRE(rot_rc == 0);
    const auto token3 = rot_out.substr(0, rot_out.size() - 1);
    CHECK(http_request(port, "GET", "/v1/conflicts", "", {{"Authorization", "Bearer " + token2}}).status == 401);
    CHECK(http_request(port, "GET", "/v1/conflicts", "", {{"Authorization", "Bearer " + token3}}).status == 200);
    CHECK(run({admin, "--db", db, "device", "revoke", id2}).first == 0);
    CHECK(http_request(port, "GET", "/v1/conflicts", "", {{"Authorization", "Bearer " + token3}}).status == 401);
    CHECK(run({admin, "--db", db, "device", "revoke", "no-such-device"}).first == 1);
    CHECK(run({admin, "--db", db, "device", "move"}).first == 2);

    CHECK(run({admin, "--db", db, "unit", "add", "--id", "giong-trom", "--name", "Huyện ủy Giồng Trôm", "--kind", "district"}).first == 0);
    CHECK(run({admin, "--db", db, "unit", "add", "--id", "xa-binh-hoa", "--name", "Đảng bộ xã Bình Hòa", "--kind", "commune",
               "--parent", "giong-trom"}).first == 0);
    CHECK(run({admin, "--db", db, "unit", "add", "--id", "x", "--name", "x", "--kind", "planet"}).first == 2);
    const auto [units_rc, units_out] = run({admin, "--db", db, "unit", "list"});
    CHECK(units_rc == 0);
    CHECK(units_out.find("/giong-trom/xa-binh-hoa/") != std::string::npos);
    CHECK(units_out.find("Đảng bộ xã Bình Hòa") != std::string::npos);
    // The first device keeps working in its unit, now placed in the tree.
    CHECK(http_request(port, "GET", "/v1/records/members/m-1", "", {{"Authorization", "Bearer " + token}}).status == 200);

    REQUIRE(kill(srv_proc.pid, SIGTERM) == 0);
    CHECK(srv_proc.wait_exit(15s) == 0);

    // Closed cleanly: the store opens and holds the record.
    srv::store_options so;
    so.path = db;
    auto st = srv::open_sqlite_store(so);
    REQUIRE(st);
    auto rec = (*st)->get("members", "m-1");
    REQUIRE(rec);
    CHECK(rec->has_value());
    (*st)->close();
}

}  // namespace fieldsync::e2e

namespace fieldsync::e2e {

TEST_CASE("a store that stopped taking writes answers 503 unavailable while health goes on", "[e2e][lifecycle]") {
    server_fixture f;
    f.sync(batch("b-1", {put_change("c-1", "members", "m-1", 0, {{"name", "Trần Văn Dũng"}, {"cell", "Chi bộ ấp 1"}})}));
    f.store().close();  // what the owner does at shutdown; the server must cope if a request comes late
    const auto r = f.post_sync(batch("b-2", {put_change("c-2", "members", "m-2", 0, {{"name", "Trần Văn Dũng"}, {"cell", "Chi bộ ấp 1"}})}));
    INFO(r.body);
    CHECK(r.status == 503);
    CHECK(r.error_code() == "unavailable");
    CHECK(http_request(f.port(), "GET", "/v1/health").status == 200);
}


TEST_CASE("fieldsync-server serves plain HTTP only on loopback unless --insecure-listen", "[e2e][lifecycle][exe][tls]") {
    const auto server_bin = binary("server/fieldsync-server");
    temp_dir dir;
    const auto db = (dir.path() / "refused.db").string();

    // Refused before the store is opened: exit 2, a message naming the way out, no file made.
    for (const char* listen : {"0.0.0.0:0", "[::]:0"}) {
        INFO(listen);
        auto c = child::spawn({server_bin, "--db", db, "--listen", listen});
        CHECK(c.read_all(20s).empty());
        CHECK(c.wait_exit(20s) == 2);
        CHECK_FALSE(std::filesystem::exists(db));
    }
    CHECK(run({server_bin, "--db", db, "--listen", "127.0.0.1:0", "--tls-cert", "server.crt"}).first == 2);
    CHECK(run({server_bin, "--db", db, "--listen", "127.0.0.1:0", "--tls-key", "server.key"}).first == 2);
    // Both files given but unreadable: the server says so and does not listen.
    CHECK(run({server_bin, "--db", db, "--listen", "0.0.0.0:0", "--tls-cert", (dir.path() / "none.crt").string(),
               "--tls-key", (dir.path() / "none.key").string()})
              .first != 0);

    // Allowed when asked for explicitly.
    auto srv_proc = child::spawn({server_bin, "--db", db, "--create", "--listen", "0.0.0.0:0", "--insecure-listen"});
    const auto line = srv_proc.read_line(10s);
    CHECK(line.rfind("fieldsync-server listening on 0.0.0.0:", 0) == 0);
    REQUIRE(kill(srv_proc.pid, SIGTERM) == 0);
    CHECK(srv_proc.wait_exit(15s) == 0);
}

TEST_CASE("fieldsync-server as a relay hub reads its upstream token from a file and checks its hub flags",
          "[e2e][lifecycle][exe][hub]") {
    const auto admin = binary("tools/fieldsync-admin");
    const auto server_bin = binary("server/fieldsync-server");
    server_fixture district;
    const auto hub_token = district.add_device("Máy chủ xã Bình Hòa", "xa-binh-hoa");
    const auto upstream = "http://127.0.0.1:" + std::to_string(district.port());
    temp_dir dir;
    const auto db = (dir.path() / "binh-hoa.db").string();
    const auto token_file = (dir.path() / "upstream.token").string();
    const auto blank_file = (dir.path() / "blank.token").string();
    std::ofstream(token_file) << "  " << hub_token << "\n";  // as `echo` writes it, with stray blanks
    std::ofstream(blank_file) << "\n";

    // Refused before the store is opened: exit 2, no file made.
    const std::vector<std::vector<std::string>> refused = {
        {"--upstream", upstream, "--upstream-token-file", (dir.path() / "none.token").string()},
        {"--upstream", upstream, "--upstream-token-file", blank_file},
        {"--upstream", upstream, "--upstream-token", hub_token, "--upstream-token-file", token_file},
        {"--upstream-token-file", token_file},
        {"--upstream", upstream, "--upstream-token-file", token_file, "--upstream-ca", (dir.path() / "none.pem").string()},
        {"--upstream-ca", token_file},
    };
    for (const auto& extra : refused) {
        std::vector<std::string> args = {server_bin, "--db", db, "--listen", "127.0.0.1:0"};
        args.insert(args.end(), extra.begin(), extra.end());
        INFO(extra.front() << " ... " << extra.back());
        CHECK(run(args).first == 2);
        CHECK_FALSE(std::filesystem::exists(db));
    }

    // A commune hub with a hamlet phone, its token only in the file.
    REQUIRE(run({admin, "--db", db, "init"}).first == 0);
    const auto [add_rc, add_out] = run({admin, "--db", db, "device", "add", "--name", "Điện thoại ấp 3", "--unit", "xa-binh-hoa", "--unit-later"});
    REQUIRE(add_rc == 0);
    const auto phone = add_out.substr(0, add_out.size() - 1);
    auto hub = child::spawn({server_bin, "--db", db, "--listen", "127.0.0.1:0", "--upstream", upstream,
                             "--upstream-token-file", token_file, "--upstream-interval", "200"});
    const auto line = hub.read_line(10s);
    const std::string prefix = "fieldsync-server listening on 127.0.0.1:";
    REQUIRE(line.rfind(prefix, 0) == 0);
    const auto port = static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));
    {
        std::ifstream cmdline("/proc/" + std::to_string(hub.pid) + "/cmdline");
        const std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
        CHECK(args.find("--upstream-token-file") != std::string::npos);
        CHECK(args.find(hub_token) == std::string::npos);
    }

    // The phone's change is queued at the hub, reaches the district through the token read
    // from the file, and the phone's resend gets the district's answer.
    const auto body = batch("b-1", {put_change("c-1", "members", "m-1", 0, member("Nguyễn Thị Giang"))}).dump();
    const std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + phone},
                                                                      {"Content-Type", "application/json"}};
    auto first = http_request(port, "POST", "/v1/sync", body, headers);
    REQUIRE(first.status == 200);
    CHECK(only_result(first.body_json())["status"] == "queued");
    std::string status;
    for (auto until = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < until;) {
        auto again = http_request(port, "POST", "/v1/sync", body, headers);
        REQUIRE(again.status == 200);
        status = only_result(again.body_json())["status"];
        if (status != "queued") break;
        std::this_thread::sleep_for(50ms);
    }
    CHECK(status == "applied");
    auto at_district = district.store().get("members", "m-1");
    REQUIRE(at_district);
    REQUIRE(at_district->has_value());
    CHECK((*at_district)->data["name"] == "Nguyễn Thị Giang");

    REQUIRE(kill(hub.pid, SIGTERM) == 0);
    CHECK(hub.wait_exit(15s) == 0);
}

// Runs on both stores (tests/CMakeLists.txt picks [stores] from this file for PostgreSQL):
// the operator's commands take --store for either, and on PostgreSQL two servers serve one
// database at once, each seeing the other's writes, where SQLite allows one.
TEST_CASE("fieldsync-admin and fieldsync-server take --store, and PostgreSQL lets two servers serve one store",
          "[e2e][lifecycle][exe][stores]") {
    const auto admin = binary("tools/fieldsync-admin");
    const auto server_bin = binary("server/fieldsync-server");
    const bool postgres = fieldsync::test::store_engine_under_test() == "postgres";
    temp_dir dir;
    // On PostgreSQL with a password file named in the connection string, as tools/cluster's is:
    // init makes no folders of it.
    const auto store = fieldsync::test::store_argument_under_test((dir.path() / "huyen.db").string()) +
                       (postgres ? " passfile=" + (dir.path() / "pgpass.d" / "none").string() : std::string());
    INFO("--store " << (postgres ? "postgres:..." : store));

    REQUIRE(run({admin, "--store", store, "init"}).first == 0);
    // (What a path's parent would be, made relative to the working directory both share.)
    if (postgres) CHECK_FALSE(std::filesystem::exists(std::filesystem::path(store).parent_path()));
    const auto [add_rc, add_out] =
        run({admin, "--store", store, "device", "add", "--name", "Điện thoại chi bộ ấp Phước Hòa", "--unit",
             "xa-binh-hoa", "--unit-later"});
    REQUIRE(add_rc == 0);
    const auto phone = add_out.substr(0, add_out.size() - 1);
    const std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + phone},
                                                                      {"Content-Type", "application/json"}};
    const auto [reader_rc, reader_out] = run({admin, "--store", store, "device", "add", "--name",
                                              "Máy tính văn phòng xã", "--unit", "xa-binh-hoa", "--unit-later"});
    REQUIRE(reader_rc == 0);
    const std::vector<std::pair<std::string, std::string>> reader = {
        {"Authorization", "Bearer " + reader_out.substr(0, reader_out.size() - 1)},
        {"Content-Type", "application/json"}};
    auto start = [&](child& c) {
        const auto line = c.read_line(10s);
        const std::string prefix = "fieldsync-server listening on 127.0.0.1:";
        REQUIRE(line.rfind(prefix, 0) == 0);
        return static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));
    };
    // Attachments beside the file, or (PostgreSQL) in the folder both servers share.
    const auto blobs = (dir.path() / "blobs").string();
    auto first = child::spawn({server_bin, "--store", store, "--blobs", blobs, "--listen", "127.0.0.1:0"});
    const auto port1 = start(first);
    const auto pushed =
        http_request(port1, "POST", "/v1/sync",
                     batch("b-1", {put_change("c-1", "members", "m-1", 0, member("Trần Văn Phước"))}).dump(), headers);
    REQUIRE(pushed.status == 200);
    CHECK(only_result(pushed.body_json())["status"] == "applied");

    auto second = child::spawn({server_bin, "--store", store, "--blobs", blobs, "--listen", "127.0.0.1:0"});
    if (!postgres) {
        // One server a file: the second is refused and exits.
        CHECK(second.wait_exit(15s) == 1);
    } else {
        const auto port2 = start(second);
        // The same change-set sent again, to the other server, is answered from the first answer.
        const auto again = http_request(
            port2, "POST", "/v1/sync",
            batch("b-1", {put_change("c-1", "members", "m-1", 0, member("Trần Văn Phước"))}).dump(), headers);
        REQUIRE(again.status == 200);
        CHECK(only_result(again.body_json())["status"] == "applied");
        CHECK(only_result(again.body_json())["version"] == 1);
        const auto other = http_request(
            port2, "POST", "/v1/sync",
            batch("b-2", {put_change("c-2", "members", "m-2", 0, member("Lê Thị Hòa"))}).dump(), headers);
        REQUIRE(other.status == 200);
        CHECK(only_result(other.body_json())["status"] == "applied");
        // Another device's pull from the first server holds both records, each once.
        const auto pulled = http_request(port1, "POST", "/v1/sync", batch("b-3", {}).dump(), reader);
        REQUIRE(pulled.status == 200);
        const auto page = pulled.body_json();
        std::vector<std::string> ids;
        for (const auto& c : page["changes"]) ids.push_back(c["id"].get<std::string>());
        std::sort(ids.begin(), ids.end());
        CHECK(ids == std::vector<std::string>{"m-1", "m-2"});
        REQUIRE(kill(second.pid, SIGTERM) == 0);
        CHECK(second.wait_exit(15s) == 0);
    }
    REQUIRE(kill(first.pid, SIGTERM) == 0);
    CHECK(first.wait_exit(15s) == 0);

    const auto [list_rc, list_out] = run({admin, "--store", store, "device", "list"});
    CHECK(list_rc == 0);
    CHECK(list_out.find("Điện thoại chi bộ ấp Phước Hòa") != std::string::npos);
    // backup copies a SQLite file; on PostgreSQL it is refused (pg_dump is the tool there).
    CHECK(run({admin, "--store", store, "backup", (dir.path() / "copy.db").string()}).first == (postgres ? 1 : 0));
}

// Moving a district over (issue 17): the Giồng Trôm demo store is migrated from its file into
// PostgreSQL, and its devices go on with the cursors and tokens they hold: nothing pulled
// twice, nothing missed, an answered change-set answered the same and not applied again.
TEST_CASE("migrate copies the Giồng Trôm demo store into PostgreSQL and devices sync on with their old cursors",
          "[e2e][lifecycle][exe][postgres]") {
    const auto admin = binary("tools/fieldsync-admin");
    const auto server_bin = binary("server/fieldsync-server");
    temp_dir dir;
    const auto file = (dir.path() / "giong-trom.db").string();
    const auto target = fieldsync::test::store_argument_under_test((dir.path() / "giong-trom-pg").string());
    REQUIRE(target.rfind("postgres:", 0) == 0);

    // The demo's devices: ROLE, UNIT, NAME, TOKEN a line.
    const auto [demo_rc, demo_out] =
        run({admin, "--db", file, "demo", "--district", "Giồng Trôm", "--communes", "3", "--members", "300"});
    REQUIRE(demo_rc == 0);
    std::string admin_token, field_token, field_unit;
    {
        std::istringstream lines(demo_out);
        for (std::string line; std::getline(lines, line);) {
            std::vector<std::string> cols;
            std::istringstream fields(line);
            for (std::string col; std::getline(fields, col, '\t');) cols.push_back(col);
            REQUIRE(cols.size() == 4);
            if (cols[0] == "admin" && admin_token.empty()) admin_token = cols[3];
            if (cols[0] == "field" && field_token.empty()) field_unit = cols[1], field_token = cols[3];
        }
    }
    REQUIRE(!admin_token.empty());
    REQUIRE(!field_token.empty());
    auto as = [](const std::string& token) {
        return std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer " + token},
                                                                {"Content-Type", "application/json"}};
    };
    auto port_of = [](child& c) {
        const auto line = c.read_line(10s);
        const std::string prefix = "fieldsync-server listening on 127.0.0.1:";
        REQUIRE(line.rfind(prefix, 0) == 0);
        return static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));
    };
    // Pages from `cursor` to the end: each record's version as pulled, counting any pulled twice.
    struct pulled {
        std::map<std::string, std::int64_t> versions;
        int twice = 0;
        bool reset = false;
        std::string cursor, incarnation;
    };
    auto pull_all = [&](std::uint16_t port, std::string cursor) {
        pulled p;
        for (int page = 0; page < 1000; ++page) {
            const auto r = http_request(port, "POST", "/v1/sync",
                                        batch("pull-" + std::to_string(page), {}, cursor).dump(), as(admin_token));
            REQUIRE(r.status == 200);
            const auto body = r.body_json();
            p.reset = p.reset || body.value("reset", false);
            p.incarnation = body["incarnation"];
            for (const auto& c : body["changes"]) {
                const auto key = c["collection"].get<std::string>() + "/" + c["id"].get<std::string>();
                if (!p.versions.emplace(key, c["version"].get<std::int64_t>()).second) ++p.twice;
            }
            cursor = body["cursor"];
            if (!body.value("more", false)) break;
        }
        p.cursor = cursor;
        return p;
    };
    const json before = batch("b-before", {put_change("c-before", "members", "m-truoc", 0,
                                                       member("Nguyễn Thị Trước"), field_unit)});

    // On the file: a phone writes, the district pulls everything and keeps its cursor.
    pulled on_file;
    {
        auto srv = child::spawn({server_bin, "--db", file, "--listen", "127.0.0.1:0"});
        const auto port = port_of(srv);
        const auto w = http_request(port, "POST", "/v1/sync", before.dump(), as(field_token));
        REQUIRE(w.status == 200);
        REQUIRE(only_result(w.body_json())["status"] == "applied");
        on_file = pull_all(port, "");
        CHECK(on_file.twice == 0);
        REQUIRE(on_file.versions.size() > 300);
        // Not while a server serves the file: what it wrote afterwards would be lost.
        CHECK(run({admin, "migrate", "--from", "sqlite:" + file, "--to", target}).first == 1);
        REQUIRE(kill(srv.pid, SIGTERM) == 0);
        REQUIRE(srv.wait_exit(15s) == 0);
    }

    const auto [rc, out] = run({admin, "migrate", "--from", "sqlite:" + file, "--to", target});
    REQUIRE(rc == 0);
    CHECK(out.find("history") != std::string::npos);
    CHECK(out.find("devices") != std::string::npos);
    // Only into an empty store: a second copy is refused and changes nothing.
    CHECK(run({admin, "migrate", "--from", "sqlite:" + file, "--to", target}).first == 2);

    // On PostgreSQL, with the tokens, cursor and answers the devices hold.
    // The file's attachments stay where they were; the server on PostgreSQL is pointed at them.
    auto srv = child::spawn({server_bin, "--store", target, "--blobs", file + ".blobs", "--listen", "127.0.0.1:0"});
    const auto port = port_of(srv);
    const auto again = http_request(port, "POST", "/v1/sync", before.dump(), as(field_token));
    REQUIRE(again.status == 200);
    CHECK(only_result(again.body_json())["status"] == "applied");
    CHECK(only_result(again.body_json())["version"] == 1);
    const auto after = http_request(port, "POST", "/v1/sync",
                                    batch("b-after", {put_change("c-after", "members", "m-sau", 0,
                                                                 member("Trần Văn Sau"), field_unit)})
                                        .dump(),
                                    as(field_token));
    REQUIRE(after.status == 200);
    CHECK(only_result(after.body_json())["status"] == "applied");

    const auto next = pull_all(port, on_file.cursor);
    CHECK_FALSE(next.reset);
    CHECK(next.incarnation == on_file.incarnation);
    CHECK(next.versions == std::map<std::string, std::int64_t>{{"members/m-sau", 1}});
    // From the start, PostgreSQL's feed is the file's and the one new record: none missed.
    const auto whole = pull_all(port, "");
    auto expected = on_file.versions;
    expected["members/m-sau"] = 1;
    CHECK(whole.twice == 0);
    CHECK(whole.versions == expected);
    REQUIRE(kill(srv.pid, SIGTERM) == 0);
    CHECK(srv.wait_exit(15s) == 0);
}

}  // namespace fieldsync::e2e

namespace fieldsync::e2e {
namespace {

// The sync role of a store (the only role it stands in for: the server gets the SQLite store's
// other roles as they are) that answers like the SQLite one but keeps each answered callback
// for `hold` after running it, as a writer thread busy with the rest of its group would: what the
// callback owns is released late, on the writer thread, long after the answer went out.
// Counts the callbacks it was handed, those it has released, and those released after the
// test said the server had stopped.
class slow_release_store final : public srv::sync_store {
public:
    slow_release_store(srv::sync_store& inner, std::chrono::milliseconds hold) : inner_(inner), hold_(hold) {}

    std::atomic<int> handed{0};
    std::atomic<int> released{0};
    std::atomic<int> released_after_stop{0};
    std::atomic<bool> server_stopped{false};  // set by the test once server::stop() has returned

    void submit(const srv::device& dev, proto::change_set cs, push_done done) override {
        ++handed;
        struct held_callback {
            held_callback(slow_release_store& o, push_done d) : owner(&o), done(std::move(d)) {}
            held_callback(const held_callback&) = delete;
            slow_release_store* owner;
            push_done done;
            ~held_callback() {
                // Looked at before `done` (and all it owns) goes.
                if (owner->server_stopped) ++owner->released_after_stop;
                done = nullptr;
                ++owner->released;
            }
        };
        auto held = std::make_shared<held_callback>(*this, std::move(done));
        inner_.submit(dev, std::move(cs), [held, hold = hold_](proto::expected<std::vector<proto::change_result>> r) {
            held->done(std::move(r));
            std::this_thread::sleep_for(hold);
        });
    }
    proto::expected<srv::pull_page> pull(const srv::scope& sc, std::int64_t after, std::int64_t limit) override {
        return inner_.pull(sc, after, limit);
    }
    proto::expected<srv::pull_page> device_pull(const srv::device& dev, std::int64_t after, std::int64_t limit) override {
        return inner_.device_pull(dev, after, limit);
    }
    proto::expected<std::vector<std::optional<srv::held_version>>> versions_at(
        const std::vector<proto::pulled_change>& page, std::int64_t after_seq) override {
        return inner_.versions_at(page, after_seq);
    }
    proto::expected<std::vector<proto::resolution_notice>> held_outcomes(
        const srv::device& dev, const std::vector<std::string>& ids) override {
        return inner_.held_outcomes(dev, ids);
    }
    proto::expected<std::optional<srv::record_view>> get(const srv::scope& sc, const std::string& c,
                                                         const std::string& id) override {
        return inner_.get(sc, c, id);
    }
    proto::expected<std::vector<srv::history_entry>> history(const srv::scope& sc, const std::string& c,
                                                             const std::string& id) override {
        return inner_.history(sc, c, id);
    }
    void close() override { inner_.close(); }
    const proto::schema& schema() const override { return inner_.schema(); }
    const srv::store_metrics& metrics() const override { return inner_.metrics(); }
    const std::string& incarnation() const override { return inner_.incarnation(); }
    proto::hlc now_hlc() override { return inner_.now_hlc(); }

private:
    srv::sync_store& inner_;
    std::chrono::milliseconds hold_;
};

}  // namespace

// The store runs a change-set's callback on its writer thread and destroys it afterwards;
// the callback owns a work guard on the session's strand and the session. stop() must not
// let the io_context go while the store still holds one (under ASan: heap-use-after-free
// of the strand, issue 7).
TEST_CASE("stop() waits until the store has let go of every change-set in flight", "[e2e][lifecycle][stop]") {
    temp_dir dir;
    srv::store_options so;
    so.path = (dir.path() / "central.db").string();
    auto opened = srv::open_sqlite_store(so);
    REQUIRE(opened);
    auto& sqlite = **opened;
    slow_release_store st(sqlite, 300ms);
    const auto added = sqlite.add_device("Máy tính bảng ấp Giồng Trôm", "xa-binh-hoa", srv::device_role::field);
    REQUIRE(added);
    const auto token = added->second;

    auto server = std::make_unique<srv::server>(server_fixture::quick_options(), srv::store_roles::of(sqlite).with_sync(st));
    const auto port = server->start();
    REQUIRE(port);

    // Several clients at once, so change-sets are queued behind one another in the writer.
    constexpr int n = 6;
    std::vector<std::future<http_reply>> replies;
    for (int i = 0; i < n; ++i) {
        replies.push_back(std::async(std::launch::async, [&, i] {
            const auto id = "m-" + std::to_string(i);
            return http_request(*port, "POST", "/v1/sync",
                                batch("b-" + id, {put_change("c-" + id, "members", id, 0, member("Nguyễn Thị Ánh"))}).dump(),
                                {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
        }));
    }
    // Stop once all are in the store: the writer answers one every 300 ms.
    REQUIRE(eventually([&] { return st.handed.load() == n; }, 10s));
    server->stop();
    st.server_stopped = true;
    server.reset();
    for (auto& r : replies) {
        const auto reply = r.get();
        CHECK(reply.status == 200);
    }
    for (int i = 0; i < n; ++i) CHECK(sqlite.get("members", "m-" + std::to_string(i))->has_value());
    sqlite.close();  // joins the writer: every callback is gone now
    CHECK(st.released.load() == n);
    // None was released after stop() had returned (and the io_context was gone).
    CHECK(st.released_after_stop.load() == 0);
}

}  // namespace fieldsync::e2e
