// Seeded random damage to well-formed requests: whatever arrives, the server answers with a
// JSON error or closes the connection, never answers 500, and goes on serving. The seed is
// printed on failure so a run can be replayed (FIELDSYNC_E2E_SEED overrides it).

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>

namespace fieldsync::e2e {
namespace {

std::uint32_t seed() {
    if (const char* s = std::getenv("FIELDSYNC_E2E_SEED")) return static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10));
    return 20141126;
}

std::string valid_sync_body(int n) {
    const auto& d = giong_trom();
    return batch("b-g" + std::to_string(n),
                 {put_change("c-g" + std::to_string(n), "registrations", "r-" + std::to_string(n % 7), 0,
                             {{"member", "m-1"},
                              {"year", 2014},
                              {"theme", d["theme_2014"]},
                              {"commitments", d["concrete_commitments"]},
                              {"status", "draft"}}),
                  delete_change("c-gd" + std::to_string(n), "members", "m-" + std::to_string(n % 5), 1)},
                 std::to_string(n % 3))
        .dump();
}

// One random edit: flip, insert, delete or duplicate a byte range.
void damage(std::string& s, std::mt19937& rng) {
    if (s.empty()) {
        s.push_back(static_cast<char>(rng()));
        return;
    }
    std::uniform_int_distribution<std::size_t> pos(0, s.size() - 1);
    static const char interesting[] = {'{', '}', '[', ']', '"', '\\', ',', ':', '0', '-', '.', 'e', '\r', '\n',
                                       '\0', '\x7f', '\xc3', '\xff', ' ', 'n'};
    switch (rng() % 5) {
        case 0: s[pos(rng)] = static_cast<char>(rng()); break;
        case 1: s.insert(pos(rng), 1, interesting[rng() % sizeof interesting]); break;
        case 2: s.erase(pos(rng), 1 + rng() % 8); break;
        case 3: {
            const auto p = pos(rng);
            s.insert(p, s.substr(p, 1 + rng() % 16));
            break;
        }
        default: s[pos(rng)] = interesting[rng() % sizeof interesting]; break;
    }
}

}  // namespace

TEST_CASE("damaged sync bodies get JSON answers, never a 500, and the server goes on", "[e2e][garbage]") {
    server_fixture f;
    const auto s = seed();
    INFO("seed " << s);
    std::mt19937 rng(s);
    for (int i = 0; i < 150; ++i) {
        auto body = valid_sync_body(i);
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < edits; ++k) damage(body, rng);
        const auto r = f.post_sync_text(body);
        INFO("case " << i << ": " << body);
        REQUIRE(r.status != 0);
        REQUIRE(r.status < 500);
        if (r.status != 200) REQUIRE_FALSE(r.error_code().empty());
        else REQUIRE(r.body_json().contains("results"));
    }
    REQUIRE(http_request(f.port(), "GET", "/v1/health").status == 200);
    REQUIRE(f.post_sync(json{{"cursor", ""}}).status == 200);
}

TEST_CASE("damaged request heads are answered 4xx or cut, and the server goes on", "[e2e][garbage]") {
    // Damaged tokens are failed sign-ins; this test is about damage, not about their limit
    // (abuse_test.cpp), so the address may fail as often as it likes.
    auto options = server_fixture::quick_options();
    options.max_auth_failures = 1'000'000;
    server_fixture f(options);
    const auto s = seed() + 1;
    INFO("seed " << s);
    std::mt19937 rng(s);
    const auto body = valid_sync_body(0);
    const auto request = format_request("POST", "/v1/sync", body,
                                        {{"Authorization", "Bearer " + f.token()}, {"Content-Type", "application/json"}});
    const auto head_size = request.size() - body.size();
    for (int i = 0; i < 60; ++i) {
        std::string head = request.substr(0, head_size);
        const int edits = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < edits; ++k) damage(head, rng);
        raw_connection c(f.port());
        if (!c.send(head + body)) continue;  // the server may already have cut it
        INFO("case " << i << ": " << head);
        // Either an answer that is not a server failure, or the connection is closed (a head
        // that never ends waits out the read timeout).
        const auto r = c.read_reply(5s);
        if (r) {
            if (r->status >= 500) FAIL_CHECK("answered " << r->status << ": " << r->body);
            if (r->status >= 400) CHECK_FALSE(r->error_code().empty());
        } else {
            CHECK(c.wait_closed(5s));
        }
    }
    REQUIRE(http_request(f.port(), "GET", "/v1/health").status == 200);
    REQUIRE(f.post_sync(json{{"cursor", ""}}).status == 200);
}

}  // namespace fieldsync::e2e
