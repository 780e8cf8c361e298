// Hardened access through HTTP: token guessing is slowed per address, one address cannot hold
// every connection, and every refused request is logged without its token.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
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

TEST_CASE("guessing tokens is slowed: past the allowance an address gets 429 until its window ends",
          "[e2e][abuse][auth]") {
    auto options = server_fixture::quick_options();
    options.max_auth_failures = 5;
    options.auth_failure_window = std::chrono::seconds(2);
    server_fixture f(options);
    CHECK(get_with(f, f.token()).status == 200);

    for (int i = 0; i < 5; ++i) {
        const auto r = get_with(f, "fs1_" + std::string(64, static_cast<char>('a' + i)));
        CHECK(r.status == 401);
        CHECK(r.error_code() == "unauthorized");
    }
    // The sixth guess is not even looked at; nor is a good token from the same address.
    const auto limited = get_with(f, "fs1_" + std::string(64, 'z'));
    CHECK(limited.status == 429);
    CHECK(limited.error_code() == "rate_limited");
    REQUIRE(limited.headers.count("retry-after"));
    const int wait = std::stoi(limited.headers.at("retry-after"));
    CHECK(wait >= 1);
    CHECK(wait <= 2);
    CHECK(get_with(f, f.token()).status == 429);
    // Requests that need no token are not held up.
    CHECK(http_request(f.port(), "GET", "/v1/health").status == 200);

    // The window ends: the address has a fresh allowance and the right token works again.
    REQUIRE(eventually([&] { return get_with(f, f.token()).status == 200; }, 5s));
    CHECK(get_with(f, "fs1_" + std::string(64, 'y')).status == 401);
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

TEST_CASE("every refused request is logged with address, device and reason, never with the token",
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
    REQUIRE(std::system((admin + " --db " + db + " device add --name 'Máy chi bộ' --unit ap-1 > " + token_file).c_str()) == 0);
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
    CHECK(http_request(port, "GET", "/v1/health").status == 200);

    std::string log;
    REQUIRE(eventually([&] {
        std::stringstream ss;
        ss << std::ifstream(err_file).rdbuf();
        log = ss.str();
        return log.find("\"status\":405") != std::string::npos;
    }, 5s));
    std::vector<json> lines;
    std::istringstream in(log);
    for (std::string l; std::getline(in, l);) {
        auto j = json::parse(l, nullptr, false);
        if (j.is_object() && j.value("event", "") == "refused") lines.push_back(j);
    }
    REQUIRE(lines.size() == 3);
    CHECK(lines[0]["code"] == "unauthorized");
    CHECK(lines[0]["address"] == "127.0.0.1");
    CHECK(lines[0]["path"] == "/v1/conflicts");
    CHECK_FALSE(lines[0].contains("device"));
    CHECK(lines[1]["code"] == "not_found");
    CHECK(lines[1].contains("device"));  // a known device is named
    CHECK(lines[2]["code"] == "method_not_allowed");
    // No token, right or wrong, is ever written.
    CHECK(log.find(token.substr(4)) == std::string::npos);
    CHECK(log.find("Bearer") == std::string::npos);
}

}  // namespace fieldsync::e2e
