// The fault proxy replays its faults from the seed: the same seed and the same traffic give
// the same truncations, another seed other ones; bytes it lets through are unchanged.

#include "e2e/e2e_support.hpp"

#include "proxy/fault_proxy.hpp"

#include <catch2/catch.hpp>

namespace fieldsync::test {
namespace {

// 30 requests, each on a connection of its own; what arrived (status, or 0 when cut) and the
// proxy's fault lines.
std::pair<std::vector<int>, std::vector<std::string>> traffic(live_server& server, std::uint64_t seed) {
    tools::fault_options fo;
    fo.target_port = server.port();
    fo.truncate_probability = 0.4;
    fo.truncate_within = 120;   // inside the header block of the answer
    fo.seed = seed;
    tools::fault_proxy proxy(fo);
    std::vector<std::string> events;
    proxy.on_event([&](const std::string& e) { events.push_back(e); });
    proxy.start();
    std::vector<int> statuses;
    for (int i = 0; i < 30; ++i) {
        auto t = client::make_http_transport();
        auto r = t->send({"GET", proxy.url() + "/v1/health", {}, ""}, std::chrono::seconds(10));
        statuses.push_back(r ? r->status : 0);
        if (r) CHECK(r->body == R"({"status":"ok"})");
    }
    proxy.stop();
    CHECK(proxy.seed() == seed);
    return {statuses, events};
}

TEST_CASE("the fault proxy's faults are replayed by its seed", "[client][e2e][proxy]") {
    live_server server;
    const auto a = traffic(server, 7);
    const auto b = traffic(server, 7);
    const auto c = traffic(server, 8);
    CHECK(a == b);
    CHECK(a.first != c.first);
    const auto cut = std::count(a.first.begin(), a.first.end(), 0);
    CHECK(cut > 0);
    CHECK(cut < 30);
    CHECK(static_cast<std::size_t>(cut) == a.second.size());
}

}  // namespace
}  // namespace fieldsync::test
