// The district's reports over HTTP (issue 8; SPEC.md, "Reports"): records synced by field
// devices in two communes, figures read back by reviewers and an admin through
// GET /v1/reports/{name}; roles, scope and bad queries get their stable errors; the campaign
// year, review periods and CSV downloads (issue 16).

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
        REQUIRE(f.store().set_campaign_year(2014).has_value());
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
    CHECK(list.body_json()["campaign_year"] == 2014);
    CHECK(list.body_json()["years"] == json::array({2014}));

    // The admin: the district rolled up by commune.
    const auto all = t.f.get("/v1/reports/participation", t.admin);
    REQUIRE(all.status == 200);
    const auto district = all.body_json();
    CHECK(district["unit"]["id"] == "giong-trom");
    CHECK(district["params"]["year"] == 2014);
    CHECK(district["years"] == json::array({2014}));
    CHECK(district["campaign_year"] == 2014);
    CHECK(district["has_data"] == true);
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
    expect("/v1/reports/registrations?format=xml", t.admin, 400, "bad_request");
    expect("/v1/reports/registrations?format=csv&headers=english", t.admin, 400, "bad_request");
    expect("/v1/reports/unreviewed_cells?period=2014-Q9", t.admin, 400, "bad_request");
    expect("/v1/reports/unreviewed_cells?year=2014&period=2015-Q1", t.admin, 400, "bad_request");
    // CSV asked for: the same refusals, as JSON.
    expect("/v1/reports/participation?format=csv", t.ap1, 403, "forbidden");
    expect("/v1/reports/registrations?unit=ap-9&format=csv", t.reviewer, 404, "not_found");
    expect("/v1/reports/registrations?year=0&format=csv", t.admin, 400, "bad_request");
    expect("/v1/reports?unit=ap-9", t.reviewer, 404, "not_found");
    expect("/v1/reports/registrations", "fs1_not-a-token", 401, "unauthorized");
    const auto post = http_request(t.f.port(), "POST", "/v1/reports/registrations", "{}",
                                   {{"Authorization", "Bearer " + t.admin}, {"Content-Type", "application/json"}});
    CHECK(post.status == 405);
}

TEST_CASE("GET /v1/reports/{name}: the campaign year, not the latest year in the data", "[e2e][reports][year]") {
    report_tree t;
    // One registration of 2015 from a phone: the 2014 figures stay those of 2014.
    t.sync(t.ap1, "registrations", "r2", "ap-1", {{"member", "m2"}, {"year", 2015}, {"commitments", {"Tiết kiệm"}}});
    const auto now = t.f.get("/v1/reports/registrations", t.admin).body_json();
    CHECK(now["params"]["year"] == 2014);
    CHECK(now["years"] == json::array({2014, 2015}));
    CHECK(now["has_data"] == true);
    CHECK((*row_of(now, "giong-trom"))["registered"] == 1);
    CHECK((*row_of(now, "giong-trom"))["rate"] == 0.5);
    const auto later = t.f.get("/v1/reports/registrations?year=2015", t.admin).body_json();
    CHECK(later["params"]["year"] == 2015);
    CHECK((*row_of(later, "giong-trom"))["registered"] == 1);
    const auto empty = t.f.get("/v1/reports/participation?year=2016", t.admin).body_json();
    CHECK(empty["params"]["year"] == 2016);
    CHECK(empty["has_data"] == false);
    CHECK(empty["years"] == json::array({2014}));
    const auto list = t.f.get("/v1/reports", t.admin).body_json();
    CHECK(list["years"] == json::array({2014, 2015}));
    CHECK(t.f.get("/v1/reports?unit=chau-binh", t.admin).body_json()["years"] == json::array({2014}));

    // A bad period is refused with the forms it may take; the next request is answered.
    const auto bad = t.f.get("/v1/reports/unreviewed_cells?period=2014-Q9", t.admin);
    CHECK(bad.status == 400);
    CHECK_THAT(bad.error_message(), Catch::Contains("YYYY-Q1"));
    const auto cells = t.f.get("/v1/reports/unreviewed_cells", t.admin);
    REQUIRE(cells.status == 200);
    CHECK(cells.body_json()["params"]["year"] == 2014);
    CHECK(cells.body_json()["params"]["period"].is_null());
    // Alone, a period sets its year.
    const auto q = t.f.get("/v1/reports/unreviewed_cells?period=2015-Q1", t.admin).body_json();
    CHECK(q["params"]["year"] == 2015);
    CHECK(q["params"]["period"] == "2015-Q1");
}

TEST_CASE("GET /v1/reports/{name}?format=csv: a download Excel opens in Vietnamese", "[e2e][reports][csv]") {
    report_tree t;
    REQUIRE(t.f.store().put_unit({"ap-1", "binh-hoa", "Chi bộ ấp 1, \"Bến Tre\"", "cell", ""}).has_value());
    const auto r = t.f.get("/v1/reports/registrations?unit=binh-hoa&format=csv", t.reviewer);
    REQUIRE(r.status == 200);
    CHECK(r.headers.at("content-type") == "text/csv; charset=utf-8");
    CHECK(r.headers.at("content-disposition") == "attachment; filename=\"registrations-binh-hoa-2014.csv\"");
    CHECK(r.body.rfind("\xEF\xBB\xBFMã đơn vị,Đơn vị,Loại,Đảng viên,Đã đăng ký,Chưa đăng ký,Chung chung,Tỷ lệ (%)\r\n", 0) == 0);
    CHECK_THAT(r.body, Catch::Contains("\r\nbinh-hoa,Đảng bộ xã Bình Hòa,commune,2,1,1,0,50.0\r\n"));
    CHECK_THAT(r.body, Catch::Contains("\r\nap-1,\"Chi bộ ấp 1, \"\"Bến Tre\"\"\",cell,2,1,1,0,50.0\r\n"));
    const auto m = t.f.get("/v1/reports/registrations?unit=binh-hoa&format=csv&headers=machine&year=2014", t.reviewer);
    REQUIRE(m.status == 200);
    CHECK(m.body.rfind("unit,unit_name,kind,members,registered,not_registered,vague,rate\r\n", 0) == 0);
    CHECK_THAT(m.body, Catch::Contains("\r\nbinh-hoa,Đảng bộ xã Bình Hòa,commune,2,1,1,0,0.5\r\n"));
    // format=json is the default, and headers do not change JSON.
    CHECK(t.f.get("/v1/reports/registrations?format=json&headers=machine", t.reviewer).body_json()["report"] ==
          "registrations");
    const auto all = t.f.get("/v1/reports/inspections?format=csv&year=2013", t.admin);
    CHECK(all.headers.at("content-disposition") == "attachment; filename=\"inspections-giong-trom-2013.csv\"");
    CHECK(all.body == "\xEF\xBB\xBFMã đơn vị,Đơn vị,Ngày,Đoàn kiểm tra,Kết quả,Đăng ký chung chung,Thông báo kết luận\r\n");
}

}  // namespace fieldsync::e2e
