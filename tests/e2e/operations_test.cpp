// Operations (issue 7): one structured log line per request, through the server's log seam,
// and GET /metrics in the Prometheus text format, against a real server.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <cstring>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace fieldsync::e2e {
namespace {

// Collects the server's log lines (the seam in server_options), thread-safe.
struct log_capture {
    std::mutex mutex;
    std::vector<std::string> lines;

    srv::server_options options() {
        auto o = server_fixture::quick_options();
        o.log = [this](std::string_view line) {
            std::lock_guard lock(mutex);
            lines.emplace_back(line);
        };
        return o;
    }
    std::size_t size() {
        std::lock_guard lock(mutex);
        return lines.size();
    }
    std::vector<std::string> take() {
        std::lock_guard lock(mutex);
        return std::exchange(lines, {});
    }
    // Waits for exactly n lines (the line is written once the answer is, so it may trail the
    // client's read by a moment), then makes sure no more come.
    std::vector<std::string> expect(std::size_t n) {
        REQUIRE(eventually([&] { return size() >= n; }));
        std::this_thread::sleep_for(50ms);
        auto got = take();
        REQUIRE(got.size() == n);
        return got;
    }
};

json member(const std::string& name, const std::string& notes) {
    return {{"name", name}, {"cell", "Chi bộ ấp 3"}, {"notes", notes}};
}

std::vector<std::pair<std::string, std::string>> bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
}

// The exposition parsed into sample lines (name{labels} -> value), checking the format on the
// way: every sample belongs to a family announced by # HELP and # TYPE before it, counters
// end in _total, histogram samples are _bucket/_sum/_count with le on every bucket.
std::map<std::string, double> parse_exposition(const std::string& text) {
    std::map<std::string, std::string> types;
    std::map<std::string, double> samples;
    const std::regex sample_re(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (-?[0-9.eE+-]+|\+Inf)$)");
    std::istringstream in(text);
    std::string pending_help;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("# HELP ", 0) == 0) {
            std::istringstream l(line.substr(7));
            l >> pending_help;
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            std::istringstream l(line.substr(7));
            std::string name, type;
            l >> name >> type;
            CHECK(name == pending_help);
            CHECK((type == "counter" || type == "gauge" || type == "histogram"));
            if (type == "counter") CHECK(name.ends_with("_total"));
            types[name] = type;
            continue;
        }
        std::smatch m;
        INFO(line);
        REQUIRE(std::regex_match(line, m, sample_re));
        const std::string name = m[1];
        std::string family = name;
        for (const auto* suffix : {"_bucket", "_sum", "_count"})
            if (name.ends_with(suffix) && types.count(name.substr(0, name.size() - std::strlen(suffix))))
                family = name.substr(0, name.size() - std::strlen(suffix));
        REQUIRE(types.count(family) == 1);
        if (types[family] == "histogram") {
            CHECK(family != name);
            if (name.ends_with("_bucket")) CHECK(std::string(m[2]).find("le=\"") != std::string::npos);
        }
        samples[name + std::string(m[2])] = std::stod(m[3]);
    }
    return samples;
}

}  // namespace

TEST_CASE("each request, refusal and sync writes exactly one log line with its fields, never a token or a record",
          "[e2e][operations][log]") {
    log_capture logs;
    server_fixture f(logs.options());
    const auto secret_notes = to_nfd("Bí thư chi bộ ghi chú: hộ nghèo ở Giồng Trôm");

    SECTION("a plain request") {
        REQUIRE(http_request(f.port(), "GET", "/v1/health").status == 200);
        const auto lines = logs.expect(1);
        const auto j = json::parse(lines[0]);
        CHECK(j["route"] == "/v1/health");
        CHECK(j["method"] == "GET");
        CHECK(j["status"] == 200);
        CHECK(j["remote"] == "127.0.0.1");
        CHECK(j["bytes_in"].get<std::int64_t>() > 0);
        CHECK(j["bytes_out"].get<std::int64_t>() > 0);
        CHECK(j["ms"].get<double>() >= 0);
        CHECK(j["time"].get<std::string>().ends_with("Z"));
        CHECK_FALSE(j.contains("device"));
        CHECK_FALSE(j.contains("code"));
        CHECK_FALSE(j.contains("changes"));
    }
    SECTION("a refusal: a wrong token for a record path with ids") {
        const std::string wrong = f.token() + "x";
        CHECK(http_request(f.port(), "GET", "/v1/records/members/m-bi-mat-42", "", bearer(wrong)).status == 401);
        const auto lines = logs.expect(1);
        const auto j = json::parse(lines[0]);
        CHECK(j["route"] == "/v1/records/{collection}/{id}");
        CHECK(j["status"] == 401);
        CHECK(j["code"] == "unauthorized");
        CHECK_FALSE(j.contains("device"));
        CHECK(lines[0].find("m-bi-mat-42") == std::string::npos);
        CHECK(lines[0].find(f.token().substr(4)) == std::string::npos);
        CHECK(lines[0].find("Bearer") == std::string::npos);
    }
    SECTION("a refusal of a known device, and a path that matches no route") {
        CHECK(f.get("/v1/records/members/khong-co").status == 404);
        CHECK(http_request(f.port(), "GET", "/v2/khong-co-gi").status == 404);
        const auto lines = logs.expect(2);
        // Each line is written once its answer is: the order of two lines may differ from
        // the order of the requests.
        auto a = json::parse(lines[0]);
        auto b = json::parse(lines[1]);
        if (a["route"] == "unmatched") std::swap(a, b);
        CHECK(a["route"] == "/v1/records/{collection}/{id}");
        CHECK(a["code"] == "not_found");
        CHECK(a["device"] == f.device().id);
        CHECK(b["route"] == "unmatched");
        CHECK(b["code"] == "not_found");
        for (const auto& l : lines) CHECK(l.find("khong-co") == std::string::npos);
    }
    SECTION("a sync with two changes") {
        const auto body = batch("b-log", {put_change("c-1", "members", "m-1", 0, member("Nguyễn Thị Lựu", secret_notes)),
                                          put_change("c-2", "members", "m-2", 0, member("Trần Văn Đức", "Đã thăm"))});
        const auto r = f.sync(body);
        CHECK(r["results"].size() == 2);
        const auto lines = logs.expect(1);
        const auto j = json::parse(lines[0]);
        CHECK(j["route"] == "/v1/sync");
        CHECK(j["method"] == "POST");
        CHECK(j["status"] == 200);
        CHECK(j["changes"] == 2);
        CHECK(j["device"] == f.device().id);
        CHECK(j["bytes_in"].get<std::size_t>() >= body.dump().size());
        // Neither a record's text (NFC or NFD), nor an id, nor the token.
        for (const auto* text : {"Lựu", "Đức", "Đã thăm", "m-1", "m-2", "b-log"})
            CHECK(lines[0].find(text) == std::string::npos);
        CHECK(lines[0].find(secret_notes) == std::string::npos);
        CHECK(lines[0].find(f.token().substr(4)) == std::string::npos);
    }
}

TEST_CASE("GET /metrics: an admin token only, Prometheus text with routes, outcomes, conflicts, latencies and last syncs",
          "[e2e][operations][metrics]") {
    server_fixture f;
    const auto admin = f.add_device("Máy chủ giám sát", "xa-binh-hoa", srv::device_role::admin);
    const auto other = f.add_device("Máy đảng viên", "xa-binh-hoa");

    CHECK(http_request(f.port(), "GET", "/metrics").status == 401);
    const auto field = http_request(f.port(), "GET", "/metrics", "", bearer(f.token()));
    CHECK(field.status == 403);
    CHECK(field.error_code() == "forbidden");
    CHECK(http_request(f.port(), "POST", "/metrics", "", bearer(admin)).status == 405);

    // Two new records, an edit of each by both devices from version 1: one lww-free
    // conflict, one merge; and a change the store rejects.
    f.sync(batch("b-1", {put_change("c-1", "members", "m-1", 0, member("Lê Thị Hồng", "ghi chú gốc")),
                         put_change("c-2", "members", "m-2", 0, member("Võ Văn Kiệt", "gốc"))}));
    f.sync(batch("b-2", {put_change("c-3", "members", "m-1", 1, member("Lê Thị Hồng", "bản của máy một"))}));
    const auto r = f.sync(batch("b-3", {put_change("c-4", "members", "m-1", 1, member("Lê Thị Hồng", to_nfd("bản của máy hai"))),
                                        put_change("c-5", "members", "m-9", 7, member("Không Có", "x"))}),
                          other);
    REQUIRE(r["results"][0]["status"] == "conflict");
    REQUIRE(r["results"][1]["status"] == "rejected");
    CHECK(f.get("/v1/records/members/khong-co").status == 404);

    // A request is counted once its answer is written, which may trail the client's read.
    // Each request came on a connection of its own, whose sessions may finish on either I/O
    // thread in any order (under load the last sync was counted after the 404): wait for the
    // request of each kind.
    http_reply scrape;
    REQUIRE(eventually([&] {
        scrape = http_request(f.port(), "GET", "/metrics", "", bearer(admin));
        if (scrape.status != 200) return false;
        for (const char* counted : {R"(fieldsync_http_requests_total{route="/v1/records/{collection}/{id}",status="404"} 1)",
                                    R"(fieldsync_http_requests_total{route="/v1/sync",status="200"} 3)",
                                    R"(fieldsync_http_requests_total{route="/metrics",status="405"} 1)"})
            if (scrape.body.find(counted) == std::string::npos) return false;
        return true;
    }));
    CHECK(scrape.headers.at("content-type") == "text/plain; version=0.0.4; charset=utf-8");
    const auto m = parse_exposition(scrape.body);

    CHECK(m.at(R"(fieldsync_http_requests_total{route="/v1/sync",status="200"})") == 3);
    CHECK(m.at(R"(fieldsync_http_requests_total{route="/v1/records/{collection}/{id}",status="404"})") == 1);
    CHECK(m.at(R"(fieldsync_http_requests_total{route="/metrics",status="401"})") == 1);
    CHECK(m.at(R"(fieldsync_http_requests_total{route="/metrics",status="403"})") == 1);
    CHECK(m.at(R"(fieldsync_http_requests_total{route="/metrics",status="405"})") == 1);
    // No series is labelled with a raw path.
    for (const auto& [k, v] : m) CHECK(k.find("khong-co") == std::string::npos);
    CHECK(m.at(R"(fieldsync_http_request_duration_seconds_count{route="/v1/sync"})") == 3);
    CHECK(m.at(R"(fieldsync_http_request_duration_seconds_bucket{route="/v1/sync",le="+Inf"})") == 3);
    CHECK(m.at(R"(fieldsync_change_sets_total{result="answered"})") == 3);
    CHECK(m.at(R"(fieldsync_change_sets_total{result="failed"})") == 0);
    CHECK(m.at(R"(fieldsync_changes_total{outcome="applied"})") == 3);
    CHECK(m.at(R"(fieldsync_changes_total{outcome="merged"})") == 0);
    CHECK(m.at(R"(fieldsync_changes_total{outcome="conflict"})") == 1);
    CHECK(m.at(R"(fieldsync_changes_total{outcome="rejected"})") == 1);
    CHECK(m.at(R"(fieldsync_changes_total{outcome="queued"})") == 0);  // a relay hub's answer only
    CHECK(m.at("fieldsync_open_conflicts") == 1);
    CHECK(m.at("fieldsync_store_commit_duration_seconds_count") >= 1);
    CHECK(m.at(R"(fieldsync_store_commit_duration_seconds_bucket{le="+Inf"})") ==
          m.at("fieldsync_store_commit_duration_seconds_count"));
    CHECK(m.at("fieldsync_scrape_errors") == 0);
    const auto now_s = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    const auto mine = "fieldsync_device_last_sync_timestamp_seconds{device=\"" + f.device().id + "\"}";
    REQUIRE(m.count(mine) == 1);
    CHECK(std::abs(m.at(mine) - now_s) < 60);
    // The admin device never synced: it has no last-sync series.
    std::size_t devices_with_sync = 0;
    for (const auto& [k, v] : m) devices_with_sync += k.rfind("fieldsync_device_last_sync_timestamp_seconds{", 0) == 0;
    CHECK(devices_with_sync == 2);

    // Histogram buckets are cumulative.
    double previous = 0;
    for (const auto le : {"0.0005", "0.001", "0.01", "0.1", "1", "10", "+Inf"}) {
        const auto v = m.at(std::string(R"(fieldsync_http_request_duration_seconds_bucket{route="/v1/sync",le=")") + le + "\"}");
        CHECK(v >= previous);
        previous = v;
    }

    SECTION("last sync times are written to the store: they survive a restart") {
        const auto before = m.at(mine);
        f.restart();
        const auto again = parse_exposition(http_request(f.port(), "GET", "/metrics", "", bearer(admin)).body);
        REQUIRE(again.count(mine) == 1);
        CHECK(again.at(mine) == before);
        CHECK(again.at("fieldsync_open_conflicts") == 1);
    }
}

TEST_CASE("a backup taken while devices write is one sound snapshot, and a restore gives the store a new incarnation",
          "[e2e][operations][backup][sqlite]") {
    server_fixture f;
    const auto backup = (f.db_path() + ".backup");
    const auto before = f.store().incarnation();
    CHECK(f.sync(json{{"cursor", ""}})["incarnation"] == before);

    // Devices keep writing while the backup runs.
    std::atomic<bool> stop{false};
    std::atomic<int> answered{0};
    std::thread writer([&] {
        for (int n = 0; !stop.load() || n < 20; ++n) {
            std::vector<json> changes;
            for (int k = 0; k < 5; ++k)
                changes.push_back(put_change("c-" + std::to_string(n) + "-" + std::to_string(k), "members",
                                             "m-" + std::to_string(n) + "-" + std::to_string(k), 0,
                                             {{"name", "Đoàn Thị Điểm"}, {"cell", "Chi bộ ấp " + std::to_string(k)}}));
            if (f.post_sync(batch("b-" + std::to_string(n), changes)).status == 200) ++answered;
        }
    });
    const bool writing = eventually([&] { return answered.load() >= 5; });
    const auto r = srv::backup_sqlite_store(f.db_path(), backup);
    stop = true;
    writer.join();
    CHECK(writing);
    INFO((r ? std::string() : r.err().message));
    REQUIRE(r);
    CHECK(r->incarnation == before);
    CHECK(r->seq > 0);
    CHECK(r->seq % 5 == 0);  // whole change-sets only: one consistent snapshot
    CHECK(r->bytes == static_cast<std::int64_t>(std::filesystem::file_size(backup)));
    CHECK_FALSE(std::filesystem::exists(backup + "-wal"));

    // The snapshot holds exactly the first r->seq versions: the feed of the copy, read back.
    {
        srv::store_options so;
        so.path = backup;
        auto copy = srv::open_sqlite_store(so);
        REQUIRE(copy);
        auto page = (*copy)->pull(0, 100000);
        REQUIRE(page);
        CHECK(static_cast<std::int64_t>(page->changes.size()) == r->seq);
        CHECK(page->last_seq == r->seq);
        (*copy)->close();
    }

    SECTION("a backup never overwrites, and a missing store is not created") {
        const auto again = srv::backup_sqlite_store(f.db_path(), backup);
        REQUIRE_FALSE(again);
        CHECK(again.err().code == proto::errc::bad_request);
        const auto missing = srv::backup_sqlite_store(f.db_path() + ".khong-co", backup + "2");
        REQUIRE_FALSE(missing);
        CHECK(missing.err().code == proto::errc::not_found);
        CHECK_FALSE(std::filesystem::exists(f.db_path() + ".khong-co"));
        CHECK_FALSE(std::filesystem::exists(backup + "2"));
    }
    SECTION("a restore refuses what is not a sound store and changes nothing") {
        f.shut_down();
        const auto junk = f.db_path() + ".junk";
        std::ofstream(junk) << "đây không phải là một cơ sở dữ liệu";
        const auto refused = srv::restore_sqlite_store(junk, f.db_path());
        REQUIRE_FALSE(refused);
        srv::store_options so;
        so.path = f.db_path();
        auto st = srv::open_sqlite_store(so);
        REQUIRE(st);
        CHECK((*st)->incarnation() == before);
        (*st)->close();
    }
    SECTION("a restore installs the copy under a new incarnation and keeps the replaced store") {
        f.shut_down();
        std::string replaced;
        const auto restored = srv::restore_sqlite_store(backup, f.db_path(), &replaced);
        INFO((restored ? std::string() : restored.err().message));
        REQUIRE(restored);
        CHECK(restored->seq == r->seq);
        CHECK(restored->incarnation != before);
        CHECK(restored->incarnation.size() == 32);
        REQUIRE_FALSE(replaced.empty());
        CHECK(std::filesystem::exists(replaced));
        srv::store_options so;
        so.path = f.db_path();
        auto st = srv::open_sqlite_store(so);
        REQUIRE(st);
        CHECK((*st)->incarnation() == restored->incarnation);
        auto page = (*st)->pull(0, 100000);
        REQUIRE(page);
        CHECK(page->last_seq == r->seq);
        (*st)->close();
    }
}

}  // namespace fieldsync::e2e
