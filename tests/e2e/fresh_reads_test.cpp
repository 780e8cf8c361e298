// Every request reads the store as it is. A refused request (a 404 out of scope, a 403, a bad
// cursor, a bad body) must not leave its read connection holding a snapshot: the writes after
// it are pulled and read, and a revoke or rotate takes effect on the very next request.
//
// The server runs one I/O thread, so every read goes through the same pooled connection: a
// read that let its snapshot stay open would freeze what all the later ones see.

#include "e2e/support.hpp"
#include "http/router.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

namespace fieldsync::e2e {
namespace {

using dev = std::pair<srv::device, std::string>;

srv::server_options one_thread() {
    auto o = server_fixture::quick_options();
    o.threads = 1;
    o.max_auth_failures = 1'000'000;  // the walk's revoked probes are not a guesser
    return o;
}

struct district {
    server_fixture f{one_thread()};
    dev ap1, ap2, admin, reviewer1;
    std::string admin_cursor;
    int n = 0;

    district() {
        put({"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""});
        put({"binh-hoa", "giong-trom", "Đảng bộ xã Bình Hòa", "commune", ""});
        put({"ap-1", "binh-hoa", "Chi bộ ấp Bình Thạnh", "cell", ""});
        put({"ap-2", "binh-hoa", "Chi bộ ấp Bình Lợi", "cell", ""});
        ap1 = add("Bí thư chi bộ ấp Bình Thạnh", "ap-1", srv::device_role::field);
        ap2 = add("Bí thư chi bộ ấp Bình Lợi", "ap-2", srv::device_role::field);
        admin = add("Văn phòng Huyện ủy", "giong-trom", srv::device_role::admin);
        reviewer1 = add("Tổ kiểm tra ấp Bình Thạnh", "ap-1", srv::device_role::reviewer);
    }
    void put(const srv::unit& u) { REQUIRE(f.store().put_unit(u).has_value()); }
    dev add(const std::string& name, const std::string& unit, srv::device_role role) {
        auto d = f.store().add_device(name, unit, role);
        REQUIRE(d.has_value());
        return *d;
    }
    static json registration(const std::string& notes) {
        return {{"member", "m-thu"},
                {"year", 2014},
                {"theme", "Làm gương trong công việc hằng ngày"},
                {"commitments", {"Hướng dẫn bà con trồng dừa xen ca cao"}},
                {"status", "draft"},
                {"notes", notes}};
    }
    json write(const dev& d, const std::string& id, const std::string& unit, std::int64_t base = 0,
               const json& data = registration("Đăng ký tiết kiệm điện ở trụ sở")) {
        const auto c = "c-" + std::to_string(n++);
        return only_result(f.sync(batch("b-" + c, {put_change(c, "registrations", id, base, data, unit)}), d.second));
    }
    // The ids the admin pulls from its last cursor to the end of the feed.
    std::set<std::string> admin_pulls() {
        std::set<std::string> ids;
        for (int i = 0; i < 100; ++i) {
            const auto page = f.sync(json{{"cursor", admin_cursor}}, admin.second);
            for (const auto& c : page["changes"]) ids.insert(c["id"].get<std::string>());
            admin_cursor = page["cursor"].get<std::string>();
            if (!page["more"].get<bool>()) break;
        }
        return ids;
    }
    http_reply post(const std::string& target, const std::string& body, const std::string& token,
                    const std::string& content_type = "application/json") const {
        std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", content_type}};
        if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
        return http_request(f.port(), "POST", target, body, headers);
    }
    // A conflict on a registration of ap-2: two edits of version 1 that change the same field.
    std::string make_conflict(const std::string& id) {
        REQUIRE(write(ap2, id, "ap-2")["status"] == "applied");
        REQUIRE(write(ap2, id, "ap-2", 1, registration("Bổ sung việc làm cụ thể"))["status"] == "applied");
        const auto r = write(admin, id, "ap-2", 1, registration("Huyện ủy đề nghị ghi rõ thời hạn"));
        REQUIRE(r["status"] == "conflict");
        return r["conflict_id"].get<std::string>();
    }
};

}  // namespace

TEST_CASE("a 404 out of scope leaves later writes visible and a revoke effective at once", "[e2e][fresh]") {
    district d;
    REQUIRE(d.write(d.ap1, "dk-x", "ap-1")["status"] == "applied");
    // Device B asks for A's record: not revealed.
    REQUIRE(d.f.get("/v1/records/registrations/dk-x", d.ap2.second).status == 404);

    // A writes again: the answer says applied, and so must every later read.
    const auto y = d.write(d.ap1, "dk-y", "ap-1");
    REQUIRE(y["status"] == "applied");
    CHECK(y["version"] == 1);
    CHECK(d.admin_pulls() == std::set<std::string>{"dk-x", "dk-y"});
    CHECK(d.f.get("/v1/records/registrations/dk-y", d.admin.second).status == 200);
    CHECK(d.f.get("/v1/records/registrations/dk-y/history", d.admin.second).status == 200);
    std::set<std::string> own;
    const auto page = d.f.sync(json{{"cursor", ""}}, d.ap1.second);
    for (const auto& c : page["changes"]) own.insert(c["id"].get<std::string>());
    CHECK(own == std::set<std::string>{"dk-x", "dk-y"});

    // A revoke (the admin tool, another connection) takes effect on A's next request.
    REQUIRE(d.f.get("/v1/records/registrations/dk-x", d.ap2.second).status == 404);
    REQUIRE(d.f.store().revoke_device(d.ap1.first.id));
    CHECK(d.f.post_sync(batch("b-late", {put_change("c-late", "registrations", "dk-z", 0,
                                                    district::registration("Sau khi thu hồi"), "ap-1")}),
                        d.ap1.second)
              .status == 401);
    CHECK(d.f.get("/v1/records/registrations/dk-z", d.admin.second).status == 404);

    // A rotate: the old token is refused, the new one served.
    REQUIRE(d.f.get("/v1/records/registrations/dk-x", d.ap1.second).status == 401);
    auto fresh = d.f.store().rotate_device(d.ap2.first.id);
    REQUIRE(fresh.has_value());
    CHECK(d.f.get("/v1/records/registrations/dk-missing", d.ap2.second).status == 401);
    CHECK(d.f.get("/v1/records/registrations/dk-missing", *fresh).status == 404);
}

TEST_CASE("every endpoint's refusals leave the store's later state visible and a revoke effective",
          "[e2e][fresh]") {
    district d;
    REQUIRE(d.write(d.ap1, "dk-own", "ap-1")["status"] == "applied");
    REQUIRE(d.write(d.ap2, "dk-other", "ap-2")["status"] == "applied");
    const auto conflict_id = d.make_conflict("dk-conflict");
    // A photo of ap-2's, named by a record of ap-2's: outside the probes' scope.
    const std::string photo("\xFF\xD8\xFF\xE0 anh bien ban", 17);
    const std::string photo_sha = "1170200ca00288ad73774fb07fb77075f32f0193d2d3c28684743301e0b46224";
    auto put_chunk = [&](const std::string& sha, const std::string& bytes, std::int64_t offset, std::int64_t length,
                         const std::string& type, const std::string& token) {
        return http_request(d.f.port(), "PUT", "/v1/uploads/" + sha, bytes,
                            {{"Authorization", "Bearer " + token}, {"Content-Type", type},
                             {"Upload-Offset", std::to_string(offset)}, {"Upload-Length", std::to_string(length)}});
    };
    REQUIRE(put_chunk(photo_sha, photo, 0, 17, "image/jpeg", d.ap2.second).status == 201);
    auto with_photo = district::registration("Ảnh bản đăng ký");
    with_photo["scans"] = json::array({{{"sha256", photo_sha}, {"size", 17}, {"content_type", "image/jpeg"}, {"name", "anh.jpg"}}});
    REQUIRE(d.write(d.ap2, "dk-photo", "ap-2", 0, with_photo)["status"] == "applied");
    d.admin_pulls();

    struct refusal {
        srv::detail::endpoint route;
        std::string what;
        int status;
        // Sends the refused request with the probe device's token.
        std::function<http_reply(district&, const std::string& token)> send;
    };
    using srv::detail::endpoint;
    const std::string resolve_body = json{{"choice", "keep_head"}, {"head_version", 2}}.dump();
    const std::vector<refusal> refusals{
        {endpoint::record, "a record outside the device's scope", 404,
         [](district& d, const std::string& t) { return d.f.get("/v1/records/registrations/dk-other", t); }},
        {endpoint::record, "a record that does not exist", 404,
         [](district& d, const std::string& t) { return d.f.get("/v1/records/registrations/dk-none", t); }},
        {endpoint::record, "a collection that does not exist", 404,
         [](district& d, const std::string& t) { return d.f.get("/v1/records/khong-co/dk-own", t); }},
        {endpoint::record, "a record with a bad %-escape", 400,
         [](district& d, const std::string& t) { return d.f.get("/v1/records/registrations/dk%zz", t); }},
        {endpoint::record, "a record by a POST", 405,
         [](district& d, const std::string& t) { return d.post("/v1/records/registrations/dk-own", "{}", t); }},
        {endpoint::history, "a history outside the device's scope", 404,
         [](district& d, const std::string& t) { return d.f.get("/v1/records/registrations/dk-other/history", t); }},
        {endpoint::history, "a history of no record", 404,
         [](district& d, const std::string& t) { return d.f.get("/v1/records/registrations/dk-none/history", t); }},
        {endpoint::conflicts, "conflicts with a bad limit", 400,
         [](district& d, const std::string& t) { return d.f.get("/v1/conflicts?limit=abc", t); }},
        {endpoint::conflicts, "conflicts with a bad status filter", 400,
         [](district& d, const std::string&) { return d.f.get("/v1/conflicts?status=bogus", d.reviewer1.second); }},
        {endpoint::conflict, "a conflict outside the reviewer's scope", 404,
         [&](district& d, const std::string&) { return d.f.get("/v1/conflicts/" + conflict_id, d.reviewer1.second); }},
        {endpoint::conflict, "a conflict that does not exist", 404,
         [](district& d, const std::string&) { return d.f.get("/v1/conflicts/khong-co", d.reviewer1.second); }},
        {endpoint::resolve, "a resolve by a field device", 403,
         [&](district& d, const std::string& t) {
             return d.post("/v1/conflicts/" + conflict_id + "/resolve", resolve_body, t);
         }},
        {endpoint::resolve, "a resolve outside the reviewer's scope", 404,
         [&](district& d, const std::string&) {
             return d.post("/v1/conflicts/" + conflict_id + "/resolve", resolve_body, d.reviewer1.second);
         }},
        {endpoint::resolve, "a resolve against a stale head", 409,
         [&](district& d, const std::string&) {
             return d.post("/v1/conflicts/" + conflict_id + "/resolve",
                           json{{"choice", "keep_head"}, {"head_version", 1}}.dump(), d.admin.second);
         }},
        {endpoint::resolve, "a resolve with a bad body", 400,
         [&](district& d, const std::string&) {
             return d.post("/v1/conflicts/" + conflict_id + "/resolve", "{\"choice\": 7}", d.admin.second);
         }},
        {endpoint::preview, "a preview by a field device", 403,
         [&](district& d, const std::string& t) {
             return d.post("/v1/conflicts/" + conflict_id + "/preview", resolve_body, t);
         }},
        {endpoint::preview, "a preview outside the reviewer's scope", 404,
         [&](district& d, const std::string&) {
             return d.post("/v1/conflicts/" + conflict_id + "/preview", resolve_body, d.reviewer1.second);
         }},
        {endpoint::preview, "a preview against a stale head", 409,
         [&](district& d, const std::string&) {
             return d.post("/v1/conflicts/" + conflict_id + "/preview",
                           json{{"choice", "keep_head"}, {"head_version", 1}}.dump(), d.admin.second);
         }},
        {endpoint::preview, "a preview with a bad pick", 400,
         [&](district& d, const std::string&) {
             return d.post("/v1/conflicts/" + conflict_id + "/preview",
                           json{{"choice", "pick"}, {"head_version", 2}, {"picks", {{"/khong-co", "head"}}}}.dump(),
                           d.admin.second);
         }},
        {endpoint::reports, "the reports for a field device", 403,
         [](district& d, const std::string& t) { return d.f.get("/v1/reports", t); }},
        {endpoint::report, "a report that does not exist", 404,
         [](district& d, const std::string&) { return d.f.get("/v1/reports/khong-co", d.reviewer1.second); }},
        {endpoint::report, "a report with a bad year", 400,
         [](district& d, const std::string&) {
             return d.f.get("/v1/reports/participation?year=0", d.reviewer1.second);
         }},
        {endpoint::metrics, "the metrics for a field device", 403,
         [](district& d, const std::string& t) { return d.f.get("/metrics", t); }},
        {endpoint::sync, "a pull from a cursor never issued", 400,
         [](district& d, const std::string& t) { return d.f.post_sync(json{{"cursor", "zzz"}}, t); }},
        {endpoint::sync, "a change-set that is not JSON", 400,
         [](district& d, const std::string& t) { return d.f.post_sync_text("{\"changes\": [", t); }},
        {endpoint::sync, "a change-set with the wrong content type", 415,
         [](district& d, const std::string& t) { return d.post("/v1/sync", "{}", t, "text/plain"); }},
        {endpoint::sync, "a sync without a token", 401,
         [](district& d, const std::string&) { return d.f.post_sync(json{{"cursor", ""}}, std::string()); }},
        {endpoint::sync, "a sync with an unknown token", 401,
         [](district& d, const std::string&) { return d.f.post_sync(json{{"cursor", ""}}, "fs1_khong-phai"); }},
        {endpoint::sync, "a sync from a newer protocol", 400,
         [](district& d, const std::string& t) {
             return http_request(d.f.port(), "POST", "/v1/sync", json{{"cursor", ""}}.dump(),
                                 {{"Content-Type", "application/json"},
                                  {"Authorization", "Bearer " + t},
                                  {"Fieldsync-Protocol", "999"}});
         }},
        {endpoint::admin_page, "a page file that does not exist", 404,
         [](district& d, const std::string&) { return d.f.get("/admin/khong-co.html"); }},
        {endpoint::app_page, "a field app file that does not exist", 404,
         [](district& d, const std::string&) { return d.f.get("/app/khong-co.js"); }},
        {endpoint::enrol, "an enrolment with a code never made", 404,
         [](district& d, const std::string&) {
             return d.post("/v1/enrol", json{{"code", "0000-0000-0000-0000"}, {"token", "fs1_" + std::string(64, 'e')}}.dump(),
                           std::string());
         }},
        {endpoint::enrol, "an enrolment by a GET", 405,
         [](district& d, const std::string& t) { return d.f.get("/v1/enrol", t); }},
        {endpoint::devices, "the devices for a field device", 403,
         [](district& d, const std::string& t) { return d.f.get("/v1/devices", t); }},
        {endpoint::device_enrol, "an enrolment code for a device that does not exist", 404,
         [](district& d, const std::string&) {
             return d.post("/v1/devices/khong-co/enrol", json{{"server", "https://huyen.example.vn"}}.dump(),
                           d.admin.second);
         }},
        {endpoint::device_enrol, "an enrolment code for a server that is not an origin", 400,
         [](district& d, const std::string&) {
             return d.post("/v1/devices/" + d.ap1.first.id + "/enrol", json{{"server", "javascript:alert(1)"}}.dump(),
                           d.admin.second);
         }},
        {endpoint::health, "the health check by a POST", 405,
         [](district& d, const std::string& t) { return d.post("/v1/health", "{}", t); }},
        {endpoint::schema, "the schema by a POST", 405,
         [](district& d, const std::string& t) { return d.post("/v1/schema", "{}", t); }},
        {endpoint::schema, "the schema without a token", 401,
         [](district& d, const std::string&) { return d.f.get("/v1/schema", std::string()); }},
        {endpoint::me, "who am I, with an unknown token", 401,
         [](district& d, const std::string&) { return d.f.get("/v1/me", "fs1_khong-phai"); }},
        {endpoint::me, "who am I, by a POST", 405,
         [](district& d, const std::string& t) { return d.post("/v1/me", "{}", t); }},
        {endpoint::upload_status, "an upload named by no hash", 400,
         [](district& d, const std::string& t) { return d.f.get("/v1/uploads/not-a-hash", t); }},
        {endpoint::upload_chunk, "an upload over the size limit", 413,
         [&](district&, const std::string& t) {
             return put_chunk(std::string(64, 'b'), photo, 0, 11 * 1024 * 1024, "image/jpeg", t);
         }},
        {endpoint::upload_chunk, "an upload whose first bytes are not its type", 415,
         [&](district&, const std::string& t) {
             return put_chunk(std::string(64, 'c'), "GIF89a not a photo", 0, 18, "image/jpeg", t);
         }},
        {endpoint::upload_chunk, "a chunk at an offset the server does not hold", 409,
         [&](district&, const std::string& t) {
             return put_chunk(std::string(64, 'd'), photo.substr(5), 5, 17, "image/jpeg", t);
         }},
        {endpoint::blob, "a blob named only by a record outside the device's scope", 404,
         [&](district& d, const std::string& t) { return d.f.get("/v1/blobs/" + photo_sha, t); }},
        {endpoint::blob, "a blob the server does not hold", 404,
         [&](district& d, const std::string& t) { return d.f.get("/v1/blobs/" + std::string(64, 'e'), t); }},
        {endpoint::unmatched, "a path that names no endpoint", 404,
         [](district& d, const std::string& t) { return d.f.get("/v1/khong-co", t); }},
    };

    // A new endpoint needs its refusals here.
    std::set<endpoint> covered;
    for (const auto& r : refusals) covered.insert(r.route);
    for (int e = 0; e <= static_cast<int>(endpoint::unmatched); ++e) {
        INFO("route " << srv::detail::route_template(static_cast<endpoint>(e)));
        CHECK(covered.count(static_cast<endpoint>(e)) == 1);
    }

    for (const auto& r : refusals) {
        const auto i = d.n;
        INFO(srv::detail::route_template(r.route) << ": " << r.what);
        // A device of its own for each refusal, revoked after it.
        const auto probe = d.add("Máy thử " + std::to_string(i), "ap-1", srv::device_role::field);
        const auto refused = r.send(d, probe.second);
        CHECK(refused.status == r.status);

        // Another device writes; every reader sees it at once.
        const auto id = "dk-after-" + std::to_string(i);
        const auto w = d.write(d.ap1, id, "ap-1");
        REQUIRE(w["status"] == "applied");
        CHECK(d.admin_pulls() == std::set<std::string>{id});
        CHECK(d.f.get("/v1/records/registrations/" + id, d.admin.second).status == 200);
        CHECK(d.f.get("/v1/records/registrations/" + id + "/history", probe.second).status == 200);

        // The probe's revoke takes effect on its next request.
        REQUIRE(d.f.store().revoke_device(probe.first.id));
        CHECK(d.f.get("/v1/records/registrations/" + id, probe.second).status == 401);
    }
}

TEST_CASE("the WAL stays bounded while pushes run with refused reads between them", "[e2e][fresh][wal][sqlite]") {
    // A read that kept its snapshot would hold every checkpoint back, and the WAL would grow
    // with each commit (here about 50 MB). SQLite checkpoints every 1,000 pages (4 MB); the
    // file keeps its largest size, so a bound of three times that tells the two apart.
    district d;
    const auto wal = d.f.db_path() + "-wal";
    constexpr int k_rounds = 800;
    const std::string notes(2000, 'x');
    std::uintmax_t largest = 0;
    for (int i = 0; i < k_rounds; ++i) {
        const auto id = "dk-wal-" + std::to_string(i);
        REQUIRE(d.write(d.ap1, id, "ap-1", 0, district::registration("Ghi chép buổi sinh hoạt " + notes))["status"] ==
                "applied");
        REQUIRE(d.f.get("/v1/records/registrations/" + id, d.ap2.second).status == 404);  // refused: out of scope
        if (i % 50 == 49) {
            // Every write so far is pulled (a pull, not a GET: a GET of a record would reset the
            // very statement a frozen read left stepped), and the WAL is where checkpoints keep it.
            CHECK(d.admin_pulls().size() == 50);
            std::error_code ec;
            largest = std::max(largest, std::filesystem::file_size(wal, ec));
        }
    }
    INFO("largest WAL: " << largest << " bytes");
    CHECK(largest > 0);
    CHECK(largest < 12u * 1024 * 1024);
}

}  // namespace fieldsync::e2e
