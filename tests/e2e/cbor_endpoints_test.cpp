// Every JSON endpoint answers in CBOR when the request's Accept asks for it (SPEC.md, "CBOR
// bodies"), with the same content as its JSON answer; errors stay JSON. A new JSON endpoint
// must join the walk below.

#include "e2e/support.hpp"
#include "http/router.hpp"

#include <fieldsync/protocol/encoding.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <set>

namespace fieldsync::e2e {

TEST_CASE("every JSON endpoint answers CBOR when asked, with the content of its JSON answer", "[e2e][encoding][cbor]") {
    server_fixture f;
    REQUIRE(f.store().put_unit({"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""}).has_value());
    REQUIRE(f.store().put_unit({"ap-5", "giong-trom", "Chi bộ ấp Tân Lợi", "cell", ""}).has_value());
    const auto secretary = f.add_device("Bí thư chi bộ ấp Tân Lợi", "ap-5");
    const auto reviewer = f.add_device("Kiểm tra huyện", "giong-trom", srv::device_role::reviewer);
    const auto admin = f.add_device("Văn phòng Huyện ủy", "giong-trom", srv::device_role::admin);
    auto write = [&](const std::string& token, const std::string& change_id, std::int64_t base, const std::string& notes) {
        return only_result(f.sync(batch("b-" + change_id, {put_change(change_id, "members", "m-cbor", base,
                                                                      {{"name", "Phạm Thị Ngọc Hân"}, {"cell", "ap-5"}, {"notes", notes}},
                                                                      "ap-5")}),
                                  token));
    };
    REQUIRE(write(secretary, "c-1", 0, "Mới vào Đảng")["status"] == "applied");
    REQUIRE(write(secretary, "c-2", 1, "Đã chuyển sinh hoạt về ấp")["status"] == "applied");
    const auto conflict = write(reviewer, "c-3", 1, "Chờ xác minh lý lịch");
    REQUIRE(conflict["status"] == "conflict");
    const auto conflict_id = conflict["conflict_id"].get<std::string>();

    // An enrolment asked twice with the same token is answered twice alike (SPEC.md, "Enrolment").
    auto tablet = f.store().add_device("Máy tính bảng chi bộ ấp Tân Lợi", "ap-5", srv::device_role::field);
    REQUIRE(tablet.has_value());
    auto code = f.store().enrol_device(tablet->first.id, std::chrono::hours(1));
    REQUIRE(code.has_value());
    const std::string enrol_body = json{{"code", code->code}, {"token", "fs1_" + std::string(64, 'c')}}.dump();

    using srv::detail::endpoint;
    struct call {
        endpoint route;
        std::string method, target, body;
        std::string token = {};  // empty: the reviewer's
        std::vector<std::pair<std::string, std::string>> headers = {};
    };
    // An attachment the server holds already: a chunk of it is answered 200 "complete" each time.
    const std::string photo("\xFF\xD8\xFF\xE0 anh bien ban", 17);
    const std::string photo_sha = "1170200ca00288ad73774fb07fb77075f32f0193d2d3c28684743301e0b46224";
    const std::vector<std::pair<std::string, std::string>> chunk_headers{
        {"Content-Type", "image/jpeg"}, {"Upload-Offset", "0"}, {"Upload-Length", std::to_string(photo.size())}};
    const std::string resolve_body = json{{"choice", "keep_head"}, {"head_version", 2}}.dump();
    const std::vector<call> calls{
        {endpoint::health, "GET", "/v1/health", ""},
        {endpoint::sync, "POST", "/v1/sync", json{{"cursor", ""}}.dump()},
        {endpoint::record, "GET", "/v1/records/members/m-cbor", ""},
        {endpoint::history, "GET", "/v1/records/members/m-cbor/history", ""},
        {endpoint::conflicts, "GET", "/v1/conflicts?status=any", ""},
        {endpoint::conflict, "GET", "/v1/conflicts/" + conflict_id, ""},
        {endpoint::reports, "GET", "/v1/reports", ""},
        {endpoint::report, "GET", "/v1/reports/participation", ""},
        {endpoint::schema, "GET", "/v1/schema", ""},
        {endpoint::me, "GET", "/v1/me", ""},
        {endpoint::enrol, "POST", "/v1/enrol", enrol_body},
        {endpoint::devices, "GET", "/v1/devices", "", admin},
        {endpoint::device_enrol, "POST", "/v1/devices/" + tablet->first.id + "/enrol",
         json{{"server", "https://huyen.example.vn"}}.dump(), admin},
        {endpoint::preview, "POST", "/v1/conflicts/" + conflict_id + "/preview", resolve_body},
        {endpoint::upload_status, "GET", "/v1/uploads/" + std::string(64, 'a'), ""},
        {endpoint::upload_chunk, "PUT", "/v1/uploads/" + photo_sha, photo, {}, chunk_headers},
        // Last: it changes the conflict; its JSON twin is the stale refusal below.
        {endpoint::resolve, "POST", "/v1/conflicts/" + conflict_id + "/resolve", resolve_body},
    };
    {
        std::vector<std::pair<std::string, std::string>> h = chunk_headers;
        h.emplace_back("Authorization", "Bearer " + reviewer);
        REQUIRE(http_request(f.port(), "PUT", "/v1/uploads/" + photo_sha, photo, h).status == 201);
    }
    // Every endpoint that answers JSON is here; the pages, the metrics and blobs are not JSON.
    std::set<endpoint> covered;
    for (const auto& c : calls) covered.insert(c.route);
    for (int e = 0; e < static_cast<int>(endpoint::unmatched); ++e) {
        const auto route = static_cast<endpoint>(e);
        if (route == endpoint::admin_page || route == endpoint::app_page || route == endpoint::metrics ||
            route == endpoint::blob)
            continue;
        INFO("route " << srv::detail::route_template(route));
        CHECK(covered.count(route) == 1);
    }

    auto send = [&](const call& c, bool cbor) {
        std::vector<std::pair<std::string, std::string>> h{{"Authorization", "Bearer " + (c.token.empty() ? reviewer : c.token)}};
        if (c.method == "POST") h.emplace_back("Content-Type", "application/json");
        h.insert(h.end(), c.headers.begin(), c.headers.end());
        if (cbor) h.emplace_back("Accept", "application/cbor");
        return http_request(f.port(), c.method, c.target, c.body, h);
    };
    for (const auto& c : calls) {
        INFO(c.method << " " << c.target);
        const auto as_cbor = send(c, true);
        REQUIRE(as_cbor.status == 200);
        CHECK(as_cbor.headers.at("content-type") == "application/cbor");
        const auto decoded = proto::parse_cbor(as_cbor.body, proto::tuning::max_json_depth);
        REQUIRE(decoded.has_value());
        const auto as_json = send(c, false);
        if (c.route == endpoint::resolve) {
            CHECK((*decoded)["status"] == "resolved");
            CHECK(as_json.status == 409);  // decided already: the head has moved on
            CHECK(as_json.headers.at("content-type") == "application/json");
            continue;
        }
        REQUIRE(as_json.status == 200);
        if (c.route == endpoint::device_enrol) {
            // Each call makes a new code: the same answer but for the code, its link and QR code.
            json expected = as_json.body_json();
            CHECK((*decoded)["device_id"] == expected["device_id"]);
            for (const char* k : {"code", "link", "qr_svg", "expires_ms"}) CHECK(decoded->contains(k));
            CHECK((*decoded)["code"] != expected["code"]);
            continue;
        }
        json expected = as_json.body_json();
        json got = *decoded;
        // What moves between two requests: the server's clock.
        for (auto* j : {&expected, &got}) j->erase("server_hlc");
        CHECK(got == expected);
    }
    // An error asked for in CBOR is still JSON.
    const auto missing = send({endpoint::record, "GET", "/v1/records/members/khong-co", ""}, true);
    CHECK(missing.status == 404);
    CHECK(missing.headers.at("content-type") == "application/json");
}

}  // namespace fieldsync::e2e
