// The district's reports over HTTP (issue 8; SPEC.md, "Reports"): records synced by field
// devices in two communes, figures read back by reviewers and an admin through
// GET /v1/reports/{name}; roles, scope and bad queries get their stable errors.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

namespace fieldsync::e2e {
namespace {

struct report_tree {
    server_fixture f;
    std::string ap1, ap9, reviewer, other_reviewer, admin;
    int n = 0;

    report_tree() {
        for (const auto& u : std::vector<srv::unit>{{"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""},
                                                    {"binh-hoa", "giong-trom", "Đảng bộ xã Bình Hòa", "commune", ""},
                                                    {"chau-binh", "giong-trom", "Đảng bộ xã Châu Bình", "commune", ""},
                                                    {"ap-1", "binh-hoa", "Chi bộ ấp 1", "cell", ""},
                                                    {"ap-9", "chau-binh", "Chi bộ ấp 9", "cell", ""}})
            REQUIRE(f.store().put_unit(u).has_value());
        ap1 = f.add_device("Bí thư chi bộ ấp 1", "ap-1");
        ap9 = f.add_device("Bí thư chi bộ ấp 9", "ap-9");
        reviewer = f.add_device("Kiểm tra xã Bình Hòa", "binh-hoa", srv::device_role::reviewer);
        other_reviewer = f.add_device("Kiểm tra xã Châu Bình", "chau-binh", srv::device_role::reviewer);
        admin = f.add_device("Huyện ủy", "giong-trom", srv::device_role::admin);
        // Teachers' sessions in both communes, members and a registration in ấp 1.
        sync(ap1, "study_sessions", "s1", "ap-1",
             {{"unit", "ap-1"}, {"date", "2014-04-10"}, {"audience", "giáo viên"}, {"invited", 40}, {"attended", 39}});
        sync(ap9, "study_sessions", "s9", "ap-9",
             {{"unit", "ap-9"}, {"date", "2014-04-11"}, {"audience", "giáo viên"}, {"invited", 60}, {"attended", 58}});
        sync(ap1, "members", "m1", "ap-1", {{"name", "Nguyễn Văn An"}, {"cell", "ap-1"}});
        sync(ap1, "members", "m2", "ap-1", {{"name", "Trần Thị Bình"}, {"cell", "ap-1"}});
        sync(ap1, "registrations", "r1", "ap-1",
             {{"member", "m1"}, {"year", 2014}, {"commitments", {"Không sử dụng máy in cho việc riêng"}}});
    }
    void sync(const std::string& token, const std::string& collection, const std::string& id, const std::string& unit,
              const json& data) {
        const json body = {{"batch_id", "b" + std::to_string(++n)},
                           {"changes", json::array({put_change("c" + std::to_string(n), collection, id, 0, data, unit)})},
                           {"cursor", ""}};
        const auto r = f.sync(body, token);
        REQUIRE(r["results"][0]["status"] == "applied");
    }
};

const json* row_of(const json& report, const std::string& unit) {
    for (const auto& r : report["rows"])
        if (r["unit"] == unit) return &r;
    return nullptr;
}

}  // namespace

TEST_CASE("GET /v1/reports/{name}: the district's figures from what the communes synced", "[e2e][reports]") {
    report_tree t;
    const auto list = t.f.get("/v1/reports", t.reviewer);
    REQUIRE(list.status == 200);
    CHECK(list.body_json()["reports"] ==
          json::array({"participation", "registrations", "unreviewed_cells", "inspections"}));

    // The admin: the district rolled up by commune.
    const auto all = t.f.get("/v1/reports/participation", t.admin);
    REQUIRE(all.status == 200);
    const auto district = all.body_json();
    CHECK(district["unit"]["id"] == "giong-trom");
    CHECK(district["params"]["year"] == 2014);
    REQUIRE(row_of(district, "giong-trom") != nullptr);
    CHECK((*row_of(district, "giong-trom"))["invited"] == 100);
    CHECK((*row_of(district, "giong-trom"))["attended"] == 97);
    CHECK((*row_of(district, "chau-binh"))["attended"] == 58);

    // A commune's reviewer: its commune by default, its cells below it.
    const auto own = t.f.get("/v1/reports/registrations", t.reviewer);
    REQUIRE(own.status == 200);
    const auto commune = own.body_json();
    CHECK(commune["unit"]["id"] == "binh-hoa");
    CHECK((*row_of(commune, "binh-hoa"))["members"] == 2);
    CHECK((*row_of(commune, "binh-hoa"))["registered"] == 1);
    CHECK((*row_of(commune, "ap-1"))["not_registered"] == 1);
    CHECK(t.f.get("/v1/reports/registrations?unit=ap-1&year=2014", t.reviewer).status == 200);
    CHECK(t.f.get("/v1/reports/registrations?year=", t.reviewer).status == 200);   // empty = absent
}

TEST_CASE("GET /v1/reports: roles, scope and bad queries", "[e2e][reports]") {
    report_tree t;
    auto expect = [&](const std::string& target, const std::string& token, int status, const std::string& code) {
        const auto r = t.f.get(target, token);
        INFO(target << ": " << r.body);
        CHECK(r.status == status);
        CHECK(r.error_code() == code);
    };
    expect("/v1/reports/participation", t.ap1, 403, "forbidden");
    expect("/v1/reports", t.ap1, 403, "forbidden");
    expect("/v1/reports/attendance", t.reviewer, 404, "not_found");
    expect("/v1/reports/registrations?unit=ap-9", t.reviewer, 404, "not_found");     // another commune
    expect("/v1/reports/registrations?unit=giong-trom", t.other_reviewer, 404, "not_found");
    expect("/v1/reports/registrations?unit=khong-co", t.admin, 404, "not_found");
    expect("/v1/reports/registrations?year=hai-nghin", t.admin, 400, "bad_request");
    expect("/v1/reports/registrations?year=0", t.admin, 400, "bad_request");
    expect("/v1/reports/registrations?color=red", t.admin, 400, "bad_request");
    expect("/v1/reports/registrations", "fs1_not-a-token", 401, "unauthorized");
    const auto post = http_request(t.f.port(), "POST", "/v1/reports/registrations", "{}",
                                   {{"Authorization", "Bearer " + t.admin}, {"Content-Type", "application/json"}});
    CHECK(post.status == 405);
}

}  // namespace fieldsync::e2e
