// Pulling with cursors while another device keeps writing: every record's final head arrives,
// no (record, version) arrives twice, and no older version arrives after a newer one.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <set>
#include <thread>

namespace fieldsync::e2e {

TEST_CASE("paging with cursors returns every record's head exactly once while writes continue", "[e2e][paging]") {
    server_fixture f;
    const auto writer_token = f.add_device("Máy nhập liệu xã", "xa-binh-hoa");
    constexpr int k_records = 60;
    constexpr int k_versions = 4;
    constexpr int k_batch = 15;

    std::atomic<bool> writer_done{false};
    std::string writer_error;
    std::thread writer([&] {
        try {
            int batch_no = 0;
            for (int v = 1; v <= k_versions; ++v) {
                for (int first = 0; first < k_records; first += k_batch) {
                    std::vector<json> changes;
                    for (int r = first; r < first + k_batch; ++r) {
                        const auto id = "m-" + std::to_string(r);
                        changes.push_back(put_change("w-" + id + "-v" + std::to_string(v), "members", id, v - 1,
                                                     {{"name", "Nguyễn Văn " + std::to_string(r)},
                                                      {"cell", "Chi bộ ấp " + std::to_string(v)}}));
                    }
                    auto body = batch("wb-" + std::to_string(batch_no++), std::move(changes));
                    body["limit"] = 1;  // the writer is not the one paging
                    const auto r = f.sync(body, writer_token);
                    for (const auto& res : r["results"])
                        if (res["status"] != "applied") throw std::runtime_error("writer got " + res.dump());
                }
            }
        } catch (const std::exception& e) {
            writer_error = e.what();
        }
        writer_done = true;
    });

    std::set<std::pair<std::string, std::int64_t>> seen;
    std::map<std::string, std::int64_t> latest;
    std::vector<std::string> problems;
    std::string cursor;
    int pages = 0;
    bool drained_after_writer = false;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!drained_after_writer && std::chrono::steady_clock::now() < deadline) {
        const bool writer_finished_before_page = writer_done.load();
        const auto page = f.sync(json{{"cursor", cursor}, {"limit", 7}});
        ++pages;
        for (const auto& ch : page["changes"]) {
            const auto id = ch["id"].get<std::string>();
            const auto version = ch["version"].get<std::int64_t>();
            if (!seen.insert({id, version}).second) problems.push_back(id + " v" + std::to_string(version) + " twice");
            if (latest.count(id) && latest[id] >= version)
                problems.push_back(id + " v" + std::to_string(version) + " after v" + std::to_string(latest[id]));
            latest[id] = std::max(latest[id], version);
        }
        REQUIRE(page["cursor"].is_string());
        if (page["changes"].empty()) CHECK(page["cursor"] == cursor);
        cursor = page["cursor"].get<std::string>();
        // Done once a page taken after the writer finished says nothing more is waiting.
        if (writer_finished_before_page && !page["more"].get<bool>()) drained_after_writer = true;
    }
    writer.join();
    REQUIRE(writer_error.empty());
    REQUIRE(drained_after_writer);
    INFO("pages: " << pages);
    CHECK(problems.empty());
    for (const auto& p : problems) UNSCOPED_INFO(p);
    REQUIRE(latest.size() == static_cast<std::size_t>(k_records));
    for (const auto& [id, version] : latest) {
        INFO(id);
        CHECK(version == k_versions);
    }

    // From the last cursor there is nothing new; from the start, every head once.
    const auto again = f.sync(json{{"cursor", cursor}});
    CHECK(again["changes"].empty());
    CHECK(again["cursor"] == cursor);
    CHECK(again["more"] == false);
    std::set<std::string> from_start;
    std::string c;
    for (int i = 0; i < 100; ++i) {
        const auto page = f.sync(json{{"cursor", c}, {"limit", 25}});
        for (const auto& ch : page["changes"]) CHECK(from_start.insert(ch["id"].get<std::string>()).second);
        c = page["cursor"].get<std::string>();
        if (!page["more"].get<bool>()) break;
    }
    CHECK(from_start.size() == static_cast<std::size_t>(k_records));
}

}  // namespace fieldsync::e2e

namespace fieldsync::e2e {

TEST_CASE("a cursor past the feed's end (issued before a restore) is answered reset and from the beginning", "[e2e][paging][restore]") {
    server_fixture f;
    const auto writer = f.add_device("Máy nhập liệu xã", "xa-binh-hoa");
    const auto r1 = f.sync(batch("b-1", {put_change("c-1", "members", "m-1", 0, {{"name", "Trần Thị Lụa"}, {"cell", "Chi bộ ấp 1"}}),
                                         put_change("c-2", "members", "m-2", 0, {{"name", "Nguyễn Văn Út"}, {"cell", "Chi bộ ấp 2"}})}),
                           writer);
    REQUIRE(r1["results"].size() == 2);
    for (const auto& res : r1["results"]) REQUIRE(res["status"] == "applied");
    const auto all = f.sync(json{{"cursor", ""}});
    REQUIRE(all["changes"].size() == 2);
    const std::string end = all["cursor"];
    const auto current = f.sync(json{{"cursor", end}});
    CHECK(current["changes"].empty());  // nothing more, and no reset
    CHECK_FALSE(current.contains("reset"));

    // The store restored from a backup is behind the cursors its devices hold.
    const auto past = std::to_string(std::stoll(end) + 5);
    const auto answer = f.sync(json{{"cursor", past}});
    CHECK(answer["reset"] == true);
    CHECK(answer["changes"].size() == 2);
    CHECK(answer["cursor"] == end);
}

}  // namespace fieldsync::e2e
