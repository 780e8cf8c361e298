// GET /v1/devices and POST /v1/devices/{id}/enrol against a real server (SPEC.md, "Devices"):
// an admin device lists the devices with their units' names and makes a one-time enrolment
// code whose link and QR code enrol the phone; reviewer and field devices are refused, a bad
// body or an unknown device changes nothing, and the code made works once.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

#include <set>

namespace fieldsync::e2e {

namespace {

http_reply post_json(const server_fixture& f, const std::string& target, const json& body, const std::string& token) {
    return http_request(f.port(), "POST", target, body.dump(),
                        {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}});
}

}  // namespace

TEST_CASE("devices: an admin lists them and makes an enrolment code whose link enrols the phone once",
          "[e2e][devices][enrol]") {
    server_fixture f;
    REQUIRE(f.store().put_unit({"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""}).has_value());
    REQUIRE(f.store().put_unit({"ap-5", "giong-trom", to_nfd("Chi bộ ấp Tân Lợi"), "cell", ""}).has_value());
    const auto admin = f.add_device("Văn phòng Huyện ủy", "giong-trom", srv::device_role::admin);
    const auto reviewer = f.add_device("Ban Tổ chức Huyện ủy", "giong-trom", srv::device_role::reviewer);
    const auto field = f.add_device("Máy chi bộ ấp Tân Lợi", "ap-5");
    auto phone = f.store().add_device(to_nfd("Bí thư chi bộ ấp Tân Lợi"), "ap-5", srv::device_role::field);
    REQUIRE(phone.has_value());
    const std::string target = "/v1/devices/" + phone->first.id + "/enrol";
    const json good = {{"server", "https://huyen.example.vn/"}, {"valid_hours", 48}};

    // Refusals: none makes a code.
    CHECK(f.get("/v1/devices", reviewer).error_code() == "forbidden");
    CHECK(f.get("/v1/devices", field).error_code() == "forbidden");
    CHECK(post_json(f, target, good, reviewer).error_code() == "forbidden");
    CHECK(post_json(f, "/v1/devices/khong-co/enrol", good, admin).error_code() == "not_found");
    for (const json& bad : {json{{"server", "javascript:alert(1)"}}, json{{"server", "https://a.vn/app?x=1"}},
                            json{{"server", "https://a.vn/#enrol"}}, json{{"server", 7}}, json::object(),
                            json{{"server", "https://a.vn"}, {"valid_hours", 0}},
                            json{{"server", "https://a.vn"}, {"valid_hours", 721}},
                            json{{"server", "https://a.vn"}, {"valid_hours", "24"}}}) {
        INFO(bad.dump());
        CHECK(post_json(f, target, bad, admin).error_code() == "bad_request");
    }
    CHECK(http_request(f.port(), "POST", target, good.dump(),
                       {{"Content-Type", "text/plain"}, {"Authorization", "Bearer " + admin}})
              .error_code() == "unsupported_media_type");
    CHECK(http_request(f.port(), "GET", target, "", {{"Authorization", "Bearer " + admin}}).status == 405);

    // The list: every device, by name, with its unit's name; the phone never synced.
    const auto listed = f.get("/v1/devices", admin);
    REQUIRE(listed.status == 200);
    const auto devices = listed.body_json()["devices"];
    std::set<std::string> names;
    for (const auto& d : devices) names.insert(d["name"].get<std::string>());
    for (const auto& n : {std::string("Văn phòng Huyện ủy"), std::string("Ban Tổ chức Huyện ủy"),
                          std::string("Máy chi bộ ấp Tân Lợi"), to_nfd("Bí thư chi bộ ấp Tân Lợi")})
        CHECK(names.count(n) == 1);
    for (const auto& d : devices) CHECK_FALSE(d.contains("token"));
    bool seen = false;
    for (const auto& d : devices) {
        if (d["id"] != phone->first.id) continue;
        seen = true;
        CHECK(d["name"] == to_nfd("Bí thư chi bộ ấp Tân Lợi"));
        CHECK(d["unit_id"] == "ap-5");
        CHECK(d["unit_name"] == to_nfd("Chi bộ ấp Tân Lợi"));
        CHECK(d["role"] == "field");
        CHECK(d["revoked"] == false);
        CHECK(d["last_sync_ms"].is_null());
    }
    CHECK(seen);

    // The code: its link on the server the page named, its QR code, its expiry.
    const auto made = post_json(f, target, good, admin);
    REQUIRE(made.status == 200);
    const auto e = made.body_json();
    const auto code = e["code"].get<std::string>();
    CHECK(e["device_id"] == phone->first.id);
    CHECK(e["link"] == "https://huyen.example.vn/app/#enrol=" + code);
    CHECK(e["qr_svg"].get<std::string>().find("<svg") != std::string::npos);
    CHECK(e["expires_ms"].get<std::int64_t>() > 0);

    // It enrols the phone once; a second code made later replaces nothing of the first's use.
    const std::string token = "fs1_" + std::string(64, 'd');
    const auto enrolled = http_request(f.port(), "POST", "/v1/enrol", json{{"code", code}, {"token", token}}.dump(),
                                       {{"Content-Type", "application/json"}});
    REQUIRE(enrolled.status == 200);
    CHECK(enrolled.body_json()["device"]["id"] == phone->first.id);
    CHECK(f.get("/v1/me", token).status == 200);
    CHECK(http_request(f.port(), "POST", "/v1/enrol", json{{"code", code}, {"token", "fs1_" + std::string(64, 'e')}}.dump(),
                       {{"Content-Type", "application/json"}})
              .error_code() == "enrolment_used");
}

}  // namespace fieldsync::e2e
