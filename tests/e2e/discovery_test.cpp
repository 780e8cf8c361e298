// What a device learns about itself and the server before it records anything: GET /v1/me
// (its id, role, unit and the units it may see, by name) and GET /v1/schema (the schema the
// server validates against, which a field app builds its forms from).

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

#include <set>

namespace fieldsync::e2e {

TEST_CASE("GET /v1/me names the device, its unit and the units of its subtree", "[e2e][me]") {
    server_fixture f;
    auto put = [&](const srv::unit& u) { REQUIRE(f.store().put_unit(u).has_value()); };
    put({"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""});
    put({"binh-hoa", "giong-trom", "Đảng bộ xã Bình Hòa", "commune", ""});
    put({"ap-1", "binh-hoa", "Chi bộ ấp Bình Thạnh", "cell", ""});
    put({"ap-2", "binh-hoa", "Chi bộ ấp Bình Lợi", "cell", ""});
    put({"chau-binh", "giong-trom", "Đảng bộ xã Châu Bình", "commune", ""});
    const auto cell = f.add_device("Bí thư chi bộ ấp Bình Thạnh", "ap-1");
    const auto commune = f.add_device("Kiểm tra xã Bình Hòa", "binh-hoa", srv::device_role::reviewer);
    const auto district = f.add_device("Văn phòng Huyện ủy", "giong-trom", srv::device_role::admin);
    const auto stray = f.add_device("Máy chưa có đơn vị", "ap-moi");

    auto me = [&](const std::string& token) {
        const auto r = f.get("/v1/me", token);
        REQUIRE(r.status == 200);
        return r.body_json();
    };
    auto unit_ids = [](const json& body) {
        std::set<std::string> ids;
        for (const auto& u : body["units"]) ids.insert(u["id"].get<std::string>());
        return ids;
    };

    const auto c = me(cell);
    CHECK(c["device"]["name"] == "Bí thư chi bộ ấp Bình Thạnh");
    CHECK(c["device"]["role"] == "field");
    CHECK(c["device"]["unit_id"] == "ap-1");
    CHECK(c["unit"] == json{{"id", "ap-1"}, {"parent", "binh-hoa"}, {"name", "Chi bộ ấp Bình Thạnh"}, {"kind", "cell"}});
    CHECK(unit_ids(c) == std::set<std::string>{"ap-1"});

    const auto r = me(commune);
    CHECK(r["device"]["role"] == "reviewer");
    CHECK(unit_ids(r) == std::set<std::string>{"binh-hoa", "ap-1", "ap-2"});

    const auto a = me(district);
    CHECK(a["device"]["role"] == "admin");
    CHECK(unit_ids(a) == std::set<std::string>{"giong-trom", "binh-hoa", "ap-1", "ap-2", "chau-binh"});

    const auto s = me(stray);
    CHECK(s["unit"].is_null());
    CHECK(s["units"].empty());

    // A unit added later is seen at once; a revoked device is refused.
    put({"ap-3", "binh-hoa", "Chi bộ ấp Bình Phú", "cell", ""});
    CHECK(unit_ids(me(commune)).count("ap-3") == 1);
    CHECK(f.get("/v1/me", "fs1_khong-phai").status == 401);
}

TEST_CASE("GET /v1/schema serves the schema the server validates against", "[e2e][schema]") {
    SECTION("the default") {
        server_fixture f;
        const auto r = f.get("/v1/schema");
        REQUIRE(r.status == 200);
        CHECK(r.body_json() == json::parse(proto::schema::default_schema_text()));
    }
    SECTION("a schema of the administrator's, with a collection of its own") {
        auto doc = json::parse(proto::schema::default_schema_text());
        doc["version"] = 2;
        doc["collections"]["visits"] = {{"fields", {{"household", {{"type", "string"}, {"required", true}}}}}};
        const auto custom = proto::schema::from_json(doc);
        REQUIRE(custom.has_value());
        server_fixture f(server_fixture::quick_options(), &*custom);
        const auto r = f.get("/v1/schema");
        REQUIRE(r.status == 200);
        CHECK(r.body_json() == doc);
        CHECK(f.get("/v1/schema", "fs1_khong-phai").status == 401);
    }
}

}  // namespace fieldsync::e2e
