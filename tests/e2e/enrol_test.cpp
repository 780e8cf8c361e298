// POST /v1/enrol against a real server (SPEC.md, "Enrolment"): a code and the client's token
// give the device; refusals (an unknown, used or malformed code, a wrong media type) answer
// with stable codes and change nothing, and afterwards devices write and pull as before;
// guessed codes are throttled like failed sign-ins.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

namespace fieldsync::e2e {

namespace {

std::string token_of(char c) { return "fs1_" + std::string(64, c); }

http_reply post_enrol(const server_fixture& f, const std::string& body,
                      const std::string& content_type = "application/json") {
    return http_request(f.port(), "POST", "/v1/enrol", body, {{"Content-Type", content_type}});
}

http_reply enrol(const server_fixture& f, const std::string& code, const std::string& token) {
    return post_enrol(f, json{{"code", code}, {"token", token}}.dump());
}

}  // namespace

TEST_CASE("enrolment: a code and the client's token make a device that syncs, and refusals change nothing",
          "[e2e][enrol]") {
    server_fixture f;
    REQUIRE(f.store().put_unit({"xa-binh-hoa", "", "Đảng bộ xã Bình Hòa", "commune", ""}).has_value());
    REQUIRE(f.store().put_unit({"ap-5", "xa-binh-hoa", to_nfd("Chi bộ ấp Tân Lợi"), "cell", ""}).has_value());
    auto phone = f.store().add_device(to_nfd("Bí thư chi bộ ấp Tân Lợi"), "ap-5", srv::device_role::field);
    REQUIRE(phone.has_value());
    const std::string commune = f.add_device("Văn phòng Đảng ủy xã Bình Hòa", "xa-binh-hoa");
    auto code = f.store().enrol_device(phone->first.id, std::chrono::hours(24));
    REQUIRE(code.has_value());

    // Refusals first: none of them uses the code or signs anyone in.
    CHECK(enrol(f, "0000-0000-0000-0000", token_of('a')).error_code() == "not_found");
    CHECK(enrol(f, "mã sai", token_of('a')).error_code() == "bad_request");
    CHECK(enrol(f, code->code, "khong-phai-token").error_code() == "bad_request");
    CHECK(post_enrol(f, R"({"code": 5})").error_code() == "bad_request");
    CHECK(post_enrol(f, "{").error_code() == "bad_json");
    CHECK(post_enrol(f, json{{"code", code->code}, {"token", token_of('a')}}.dump(), "text/plain").error_code() ==
          "unsupported_media_type");
    CHECK(http_request(f.port(), "GET", "/v1/enrol", "", {}).status == 405);
    CHECK(f.get("/v1/me", token_of('a')).status == 401);

    // Meanwhile the commune writes a member of the cell.
    const auto put = put_change("c-enrol-1", "members", "m-tan-loi-1", 0,
                                {{"name", "Nguyễn Thị Mai"}, {"cell", "ap-5"}, {"role", "Đảng viên"}}, "ap-5");
    REQUIRE(only_result(f.sync(batch("b-enrol-1", {put}), commune))["status"] == "applied");

    // The exchange: answered as GET /v1/me answers the device.
    const auto first = enrol(f, code->code, token_of('a'));
    REQUIRE(first.status == 200);
    const auto me = first.body_json();
    CHECK(me["device"]["id"] == phone->first.id);
    CHECK(me["device"]["name"] == to_nfd("Bí thư chi bộ ấp Tân Lợi"));
    CHECK(me["device"]["role"] == "field");
    CHECK(me["unit"]["id"] == "ap-5");
    CHECK(me.dump().find(token_of('a')) == std::string::npos);  // the token is not sent back
    CHECK(f.get("/v1/me", phone->second).status == 401);         // the token add_device made is gone
    REQUIRE(f.get("/v1/me", token_of('a')).status == 200);

    // Asked again with the same token (the first answer lost): the same answer. With another: used.
    const auto again = enrol(f, code->code, token_of('a'));
    REQUIRE(again.status == 200);
    CHECK(again.body_json() == me);
    const auto used = enrol(f, code->code, token_of('b'));
    CHECK(used.status == 410);
    CHECK(used.error_code() == "enrolment_used");
    CHECK(f.get("/v1/me", token_of('b')).status == 401);

    // The enrolled phone pulls the commune's write, and writes in its turn.
    const auto pulled = f.sync(batch("b-enrol-2", {}), token_of('a'));
    REQUIRE(pulled["changes"].size() == 1);
    CHECK(pulled["changes"][0]["id"] == "m-tan-loi-1");
    const auto edit = patch_change("c-enrol-2", "members", "m-tan-loi-1", 1, {{"notes", "Đã chuyển sinh hoạt về ấp"}}, "ap-5");
    CHECK(only_result(f.sync(batch("b-enrol-3", {edit}), token_of('a')))["status"] == "applied");

    // Revoked: the code of a revoked device is refused as expired.
    auto later = f.store().enrol_device(phone->first.id, std::chrono::hours(1));
    REQUIRE(later.has_value());
    REQUIRE(f.store().revoke_device(phone->first.id).has_value());
    const auto revoked = enrol(f, later->code, token_of('c'));
    CHECK(revoked.status == 410);
    CHECK(revoked.error_code() == "enrolment_expired");
    CHECK(f.get("/v1/me", token_of('a')).status == 401);
}

TEST_CASE("enrolment: guessed codes count as failed sign-ins and are throttled", "[e2e][enrol]") {
    server_fixture f;
    int refused = 0;
    http_reply last;
    for (int i = 0; i < 30 && last.status != 429; ++i) {
        last = enrol(f, "0000-0000-0000-" + std::string(4, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[i]), token_of('a'));
        if (last.status == 404) ++refused;
    }
    CHECK(refused >= 1);
    REQUIRE(last.status == 429);
    CHECK(last.error_code() == "rate_limited");
    CHECK(last.headers.count("retry-after") == 1);
}

}  // namespace fieldsync::e2e
