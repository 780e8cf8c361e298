// Hybrid logical clocks: the wire format "<wall_ms>-<counter>", ordering, and a clock that
// never goes backwards whatever the wall clock does (the wall clock is the seam).
#include <fieldsync/protocol/hlc.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <limits>
#include <set>
#include <thread>
#include <vector>

namespace fp = fieldsync::protocol;

TEST_CASE("hlc formats as <wall_ms>-<counter> and parses back", "[protocol][hlc]") {
    CHECK(fp::hlc{1764163200000, 3}.to_string() == "1764163200000-3");
    CHECK(fp::hlc{}.to_string() == "0-0");
    for (const fp::hlc h : {fp::hlc{0, 0}, fp::hlc{1, 0}, fp::hlc{1764163200000, 42},
                            fp::hlc{std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::uint32_t>::max()}}) {
        const auto back = fp::hlc::parse(h.to_string());
        REQUIRE(back);
        CHECK(*back == h);
    }
}

TEST_CASE("hlc::parse refuses anything but two decimal numbers", "[protocol][hlc]") {
    for (const char* bad : {"", "-", "1-", "-1", "1764163200000", "abc", "1-2-3", "1--2", "-1-2", "+1-2", "1-+2",
                            " 1-2", "1-2 ", "1 -2", "1.5-2", "1-2.5", "0x10-1", "1_000-1", "1-a",
                            "9223372036854775808-0", "1-4294967296", "99999999999999999999-1", "1,2"}) {
        INFO('"' << bad << '"');
        CHECK_FALSE(fp::hlc::parse(bad));
    }
}

TEST_CASE("hlcs order by wall time, then counter", "[protocol][hlc]") {
    CHECK(fp::hlc{1, 0} < fp::hlc{2, 0});
    CHECK(fp::hlc{1, 9} < fp::hlc{2, 0});
    CHECK(fp::hlc{2, 0} < fp::hlc{2, 1});
    CHECK(fp::hlc{2, 1} == fp::hlc{2, 1});
    CHECK_FALSE(fp::hlc{2, 1} < fp::hlc{2, 1});
    std::vector<fp::hlc> v{{5, 0}, {3, 7}, {5, 1}, {3, 2}, {4, 0}};
    std::sort(v.begin(), v.end());
    CHECK(v == std::vector<fp::hlc>{{3, 2}, {3, 7}, {4, 0}, {5, 0}, {5, 1}});
}

TEST_CASE("hlc_clock follows a moving wall clock", "[protocol][hlc]") {
    std::int64_t wall = 1000;
    fp::hlc_clock clock([&] { return wall; });
    CHECK(clock.wall_ms() == 1000);
    CHECK(clock.now() == fp::hlc{1000, 0});
    wall = 1005;
    CHECK(clock.now() == fp::hlc{1005, 0});
    wall = 2000;
    CHECK(clock.now() == fp::hlc{2000, 0});
}

TEST_CASE("hlc_clock is monotonic under a frozen wall clock", "[protocol][hlc]") {
    fp::hlc_clock clock([] { return std::int64_t{1764163200000}; });
    fp::hlc last = clock.now();
    for (int i = 0; i < 10'000; ++i) {
        const auto next = clock.now();
        REQUIRE(next > last);
        last = next;
    }
    CHECK(last == fp::hlc{1764163200000, 10'000});
}

TEST_CASE("hlc_clock is monotonic when the wall clock goes backwards", "[protocol][hlc]") {
    std::int64_t wall = 5000;
    fp::hlc_clock clock([&] { return wall; });
    const auto a = clock.now();
    wall = 1000;  // NTP stepped the clock back, or the user changed the date
    const auto b = clock.now();
    const auto c = clock.now();
    CHECK(b > a);
    CHECK(c > b);
    CHECK(b.wall_ms == 5000);
    wall = 5001;
    const auto d = clock.now();
    CHECK(d == fp::hlc{5001, 0});
}

TEST_CASE("hlc_clock orders after observed remote clocks", "[protocol][hlc]") {
    std::int64_t wall = 1000;
    fp::hlc_clock clock([&] { return wall; });
    clock.observe({9000, 4});
    const auto a = clock.now();
    CHECK(a > fp::hlc{9000, 4});
    CHECK(a == fp::hlc{9000, 5});
    // An older remote stamp changes nothing.
    clock.observe({10, 0});
    CHECK(clock.now() == fp::hlc{9000, 6});
    wall = 9500;
    CHECK(clock.now() == fp::hlc{9500, 0});
}

TEST_CASE("hlc_clock stays monotonic when the counter is exhausted", "[protocol][hlc]") {
    // A client may send (within the future bound) a stamp whose counter is at its maximum;
    // the next local stamp must still order after it.
    const std::int64_t wall = 1764163200000;
    fp::hlc_clock clock([&] { return wall; });
    const fp::hlc remote{wall, std::numeric_limits<std::uint32_t>::max()};
    clock.observe(remote);
    const auto next = clock.now();
    CHECK(next > remote);
    const auto after = clock.now();
    CHECK(after > next);
}

TEST_CASE("hlc_clock hands out unique, increasing stamps across threads", "[protocol][hlc]") {
    fp::hlc_clock clock([] { return std::int64_t{42}; });
    constexpr int k_threads = 4;
    constexpr int k_each = 5000;
    std::vector<std::vector<fp::hlc>> got(k_threads);
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < k_each; ++i) got[t].push_back(clock.now());
        });
    for (auto& th : threads) th.join();
    std::set<fp::hlc> all;
    for (const auto& v : got) {
        CHECK(std::is_sorted(v.begin(), v.end()));
        all.insert(v.begin(), v.end());
    }
    CHECK(all.size() == static_cast<std::size_t>(k_threads * k_each));
}

TEST_CASE("system_wall_ms is the Unix time in milliseconds", "[protocol][hlc]") {
    const auto ms = fp::hlc_clock::system_wall_ms();
    CHECK(ms > 1'600'000'000'000);  // after 2020
    CHECK(ms < 4'102'444'800'000);  // before 2100
    fp::hlc_clock clock;
    CHECK(clock.now().wall_ms >= ms);
}
