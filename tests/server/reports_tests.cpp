// The district's reports (issue 8) on a small data set written by the test, with figures
// computed by hand; names and audiences in NFC and NFD; tombstones and other years left out;
// scopes; errors; the campaign year, review periods and CSV (issue 16); and the
// fieldsync-admin report formats (table, CSV, JSON) and campaign-year.

#include <catch2/catch.hpp>
#include "store_under_test.hpp"

#include "protocol/vietnamese_nfd.hpp"

#include <fieldsync/protocol/display_width.hpp>
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/server/store.hpp>

#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>

namespace fs = std::filesystem;
namespace proto = fieldsync::protocol;
using fieldsync::server::device;
using fieldsync::server::device_role;
using fieldsync::server::report_request;
using fieldsync::server::to_csv;
using fieldsync::server::report_table;
using fieldsync::server::scope;
using fieldsync::server::store;
using fieldsync::test::to_vietnamese_nfd;
using proto::json;

namespace {

// Huyện ủy Giồng Trôm > xã Bình Hòa (ấp 1, ấp 2), xã Châu Bình (ấp 3), Chi bộ Tòa án huyện.
struct report_fixture {
    fs::path dir;
    std::string db;
    std::unique_ptr<store> s;
    device district, binh_hoa, ap1_field;
    int counter = 0;

    report_fixture() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("fieldsync-reports-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
        db = (dir / "central.db").string();
        open();
        for (const auto& u : std::vector<fieldsync::server::unit>{
                 {"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""},
                 {"binh-hoa", "giong-trom", "Đảng bộ xã Bình Hòa", "commune", ""},
                 {"chau-binh", "giong-trom", "Đảng bộ xã Châu Bình", "commune", ""},
                 {"cq-toa-an", "giong-trom", "Chi bộ Tòa án huyện", "office", ""},
                 {"ap-1", "binh-hoa", "Chi bộ ấp 1", "cell", ""},
                 {"ap-2", "binh-hoa", to_vietnamese_nfd("Chi bộ ấp 2"), "cell", ""},   // typed on a phone
                 {"ap-3", "chau-binh", "Chi bộ ấp 3", "cell", ""}})
            REQUIRE(s->put_unit(u).has_value());
        // The 2014 campaign: the reports' year unless one is asked for.
        REQUIRE(s->set_campaign_year(2014).has_value());
        district = add("giong-trom", device_role::admin);
        binh_hoa = add("binh-hoa", device_role::reviewer);
        ap1_field = add("ap-1", device_role::field);

        // Members: eight live, one deleted (a tombstone counts nowhere).
        member("m1", "ap-1", "Nguyễn Văn An");
        member("m2", "ap-1", to_vietnamese_nfd("Trần Thị Bình"));
        member("m3", "ap-1", "Lê Văn Cường");
        member("m4", "ap-2", to_vietnamese_nfd("Phạm Thị Hạnh"));
        member("m5", "ap-2", "Huỳnh Văn Lộc");
        member("m6", "ap-3", "Võ Thị Mai");
        member("m7", "ap-3", to_vietnamese_nfd("Đặng Văn Nam"));
        member("m8", "cq-toa-an", "Bùi Minh Trí");
        member("m9", "ap-3", "Đỗ Thị Xuân");
        remove("members", "m9", "ap-3", 1);

        // Registrations of 2014 for m1, m2 (vague), m4, m7 (found vague by a review), m8;
        // m3's is of 2013; m6's was deleted.
        registration("r1", "m1", "ap-1", 2014, "submitted");
        registration("r2", "m2", "ap-1", 2014, "vague");
        registration("r3", "m3", "ap-1", 2013, "reviewed");
        registration("r4", "m4", "ap-2", 2014, "submitted");
        registration("r6", "m6", "ap-3", 2014, "submitted");
        remove("registrations", "r6", "ap-3", 1);
        registration("r7", "m7", "ap-3", 2014, "submitted");
        registration("r8", "m8", "cq-toa-an", 2014, "reviewed");
        registration("r9", "m9", "ap-3", 2014, "submitted");   // of the deleted member

        // Reviews of 2014-Q2 for m1, m7 (vague) and m8; m4's is of the previous quarter.
        review("v1", "r1", "m1", "ap-1", "2014-Q2", false);
        review("v7", "r7", "m7", "ap-3", "2014-Q2", true);
        review("v8", "r8", "m8", "cq-toa-an", "2014-Q2", false);
        review("v4", "r4", "m4", "ap-2", "2014-Q1", false);

        // Study sessions: teachers in NFC and NFD are one audience; a 2013 session and a
        // deleted one are left out.
        session("s1", "ap-1", "2014-04-10", "giáo viên", 40, 39);
        session("s2", "ap-2", "2014-04-12", to_vietnamese_nfd("giáo viên"), 38, 37);
        session("s3", "binh-hoa", "2014-05-02", "đảng viên", 5, 4);
        session("s4", "ap-3", "2014-05-03", "đảng viên", 2, 2);
        session("s5", "cq-toa-an", "2014-05-04", "đảng viên", 1, 1);
        session("s6", "ap-3", "2013-05-03", "giáo viên", 50, 10);
        session("s7", "ap-3", "2014-05-05", "giáo viên", 50, 10);
        remove("study_sessions", "s7", "ap-3", 1);

        // Inspections: Bình Hòa (two notices) and the court in 2014, Châu Bình in 2013.
        inspection("i1", "binh-hoa", "2014-06-10", 1,
                   {"Một số đảng viên đăng ký nội dung chung chung, chưa cụ thể", "Chi ủy chưa định kỳ nhận xét"});
        inspection("i2", "cq-toa-an", "2014-07-01", 0, {"Đã xây dựng chuẩn mực đạo đức"});
        inspection("i3", "chau-binh", "2013-05-01", 2, {"Đăng ký chung chung"});
        write("conclusions", "c1", "ap-1", {{"inspection", "i1"}, {"unit", "ap-1"}, {"date", "2014-06-17"}});
        write("conclusions", "c2", "ap-2", {{"inspection", "i1"}, {"unit", "ap-2"}, {"date", "2014-06-17"}});
    }
    ~report_fixture() {
        s.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    void open(proto::hlc_clock::wall_fn wall = proto::hlc_clock::system_wall_ms) {
        fieldsync::server::store_options o;
        o.path = db;
        o.wall = std::move(wall);
        auto opened = fieldsync::test::open_store_under_test(o);
        REQUIRE(opened.has_value());
        s = std::move(opened).value();
    }
    device add(const std::string& unit_id, device_role role) {
        auto d = s->add_device("máy " + unit_id, unit_id, role);
        REQUIRE(d.has_value());
        auto all = s->devices();
        for (const auto& x : *all)
            if (x.id == d->first.id) return x;
        FAIL("no such device");
        return d->first;
    }
    void change(const std::string& collection, const std::string& id, const std::string& unit, std::int64_t base,
                proto::op_kind op, const json& data) {
        proto::change_set cs;
        cs.batch_id = "b-" + std::to_string(counter);
        proto::change_entry e;
        e.c.change_id = "c-" + std::to_string(counter++);
        e.c.collection = collection;
        e.c.id = id;
        e.c.unit_id = unit;
        e.c.base_version = base;
        e.c.op = op;
        e.c.data = data;
        cs.changes.push_back(e);
        auto r = s->push(district, cs);
        REQUIRE(r.has_value());
        INFO(collection << "/" << id << ": " << ((*r)[0].err ? (*r)[0].err->message : ""));
        REQUIRE((*r)[0].status == proto::change_status::applied);
    }
    void write(const std::string& collection, const std::string& id, const std::string& unit, const json& data) {
        change(collection, id, unit, 0, proto::op_kind::put, data);
    }
    void remove(const std::string& collection, const std::string& id, const std::string& unit, std::int64_t base) {
        change(collection, id, unit, base, proto::op_kind::del, nullptr);
    }
    void member(const std::string& id, const std::string& cell, const std::string& name) {
        write("members", id, cell, {{"name", name}, {"cell", cell}, {"role", "Đảng viên"}});
    }
    void registration(const std::string& id, const std::string& m, const std::string& cell, int year,
                      const std::string& status) {
        write("registrations", id, cell,
              {{"member", m}, {"year", year}, {"commitments", {"Rời khỏi phòng thì tắt quạt máy, tắt đèn"}},
               {"status", status}});
    }
    void review(const std::string& id, const std::string& reg, const std::string& m, const std::string& cell,
                const std::string& period, bool vague) {
        write("reviews", id, cell,
              {{"registration", reg}, {"member", m}, {"period", period},
               {"assessment", vague ? "Đăng ký chung chung, chưa cụ thể" : "Thực hiện tốt"}, {"vague", vague}});
    }
    void session(const std::string& id, const std::string& unit, const std::string& date, const std::string& audience,
                 int invited, int attended) {
        write("study_sessions", id, unit,
              {{"unit", unit}, {"date", date}, {"audience", audience}, {"invited", invited}, {"attended", attended}});
    }
    void inspection(const std::string& id, const std::string& unit, const std::string& date, int vague,
                    std::vector<std::string> findings) {
        write("inspections", id, unit,
              {{"unit", unit}, {"date", date}, {"team", {"Lê Văn Cường", "Nguyễn Thị Lan"}}, {"findings", findings},
               {"vague_registrations", vague}});
    }

    report_table run(const device& d, const std::string& name, const std::string& unit = "",
                     std::optional<std::int64_t> year = std::nullopt, const std::string& period = "") {
        report_request r{name, unit, year, period};
        auto t = s->report(scope::of(d), r);
        INFO(name << ": " << (t ? "" : t.err().message));
        REQUIRE(t.has_value());
        return *t;
    }
};

// The row of `unit` (and `audience`, when given).
const json& row(const report_table& t, const std::string& unit, const std::string& audience = "") {
    for (const auto& r : t.rows)
        if (r.value("unit", "") == unit &&
            (audience.empty() || to_vietnamese_nfd(r.value("audience", "")) == to_vietnamese_nfd(audience)))
            return r;
    FAIL("no row for " << unit << " " << audience);
    static json none;
    return none;
}

std::vector<std::string> units_of(const report_table& t) {
    std::vector<std::string> out;
    for (const auto& r : t.rows) out.push_back(r.value("unit", ""));
    return out;
}

// Runs a command and returns its stdout and exit status.
std::pair<std::string, int> run_command(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int status = ::pclose(p);
    return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

std::string admin_binary() { return std::string(FIELDSYNC_BINARY_DIR) + "/tools/fieldsync-admin"; }

}  // namespace

TEST_CASE("participation: invited and attended by unit and audience, NFC and NFD as one audience", "[store][reports]") {
    report_fixture f;
    const auto t = f.run(f.district, "participation");
    CHECK(t.params["year"] == 2014);
    CHECK(t.root.id == "giong-trom");
    // The district (its whole subtree) first, then each child in tree order.
    CHECK(units_of(t) == std::vector<std::string>{"giong-trom", "giong-trom", "binh-hoa", "binh-hoa", "chau-binh",
                                                  "cq-toa-an"});
    const auto& teachers = row(t, "giong-trom", "giáo viên");
    CHECK(teachers["sessions"] == 2);
    CHECK(teachers["invited"] == 78);
    CHECK(teachers["attended"] == 76);
    CHECK(teachers["rate"].get<double>() == Approx(76.0 / 78.0));
    const auto& members = row(t, "giong-trom", "đảng viên");
    CHECK(members["sessions"] == 3);
    CHECK(members["invited"] == 8);
    CHECK(members["attended"] == 7);
    CHECK(row(t, "binh-hoa", "giáo viên")["invited"] == 78);
    CHECK(row(t, "binh-hoa", "đảng viên")["attended"] == 4);
    CHECK(row(t, "chau-binh", "đảng viên")["attended"] == 2);
    CHECK(row(t, "cq-toa-an", "đảng viên")["rate"].get<double>() == Approx(1.0));
    CHECK(t.totals["invited"] == 86);
    CHECK(t.totals["attended"] == 83);

    // 2013: the one session of that year.
    const auto old = f.run(f.district, "participation", "", 2013);
    CHECK(row(old, "giong-trom", "giáo viên")["invited"] == 50);
    CHECK(row(old, "chau-binh", "giáo viên")["attended"] == 10);

    // A commune's reviewer: its commune rolled up by hamlet cell.
    const auto bh = f.run(f.binh_hoa, "participation");
    CHECK(units_of(bh) == std::vector<std::string>{"binh-hoa", "binh-hoa", "ap-1", "ap-2"});
    CHECK(row(bh, "binh-hoa", "giáo viên")["attended"] == 76);
    CHECK(row(bh, "ap-1", "giáo viên")["invited"] == 40);
    CHECK(row(bh, "ap-2", "giáo viên")["attended"] == 37);
}

TEST_CASE("registrations: members with and without one this year, vague ones, no tombstones", "[store][reports]") {
    report_fixture f;
    const auto t = f.run(f.district, "registrations");
    CHECK(t.params["year"] == 2014);
    CHECK(units_of(t) == std::vector<std::string>{"giong-trom", "binh-hoa", "chau-binh", "cq-toa-an"});
    const auto& all = row(t, "giong-trom");
    CHECK(all["members"] == 8);          // m9 was deleted
    CHECK(all["registered"] == 5);       // m1 m2 m4 m7 m8 (m3's is of 2013, m6's was deleted)
    CHECK(all["not_registered"] == 3);
    CHECK(all["vague"] == 2);            // m2 (marked), m7 (found so by a review)
    CHECK(all["rate"].get<double>() == Approx(5.0 / 8.0));
    CHECK(t.totals["registered"] == 5);
    CHECK(row(t, "binh-hoa")["members"] == 5);
    CHECK(row(t, "binh-hoa")["registered"] == 3);
    CHECK(row(t, "binh-hoa")["vague"] == 1);
    CHECK(row(t, "chau-binh")["members"] == 2);
    CHECK(row(t, "chau-binh")["registered"] == 1);
    CHECK(row(t, "chau-binh")["vague"] == 1);
    CHECK(row(t, "cq-toa-an")["registered"] == 1);

    const auto y2013 = f.run(f.district, "registrations", "", 2013);
    CHECK(row(y2013, "giong-trom")["registered"] == 1);

    const auto cell = f.run(f.binh_hoa, "registrations", "ap-1");
    CHECK(units_of(cell) == std::vector<std::string>{"ap-1"});
    CHECK(row(cell, "ap-1")["members"] == 3);
    CHECK(row(cell, "ap-1")["registered"] == 2);
}

TEST_CASE("unreviewed cells: cells whose committee has not reviewed its registered members this period",
          "[store][reports]") {
    report_fixture f;
    const auto t = f.run(f.district, "unreviewed_cells");
    CHECK(t.params["period"] == "2014-Q2");
    CHECK(t.params["year"] == 2014);
    // ấp 1: m1 reviewed, m2 not; ấp 2: m4's review is of Q1; ấp 3 and the court are done.
    CHECK(units_of(t) == std::vector<std::string>{"ap-1", "ap-2"});
    CHECK(row(t, "ap-1")["registered"] == 2);
    CHECK(row(t, "ap-1")["reviewed"] == 1);
    CHECK(row(t, "ap-1")["parent_name"] == "Đảng bộ xã Bình Hòa");
    CHECK(row(t, "ap-2")["reviewed"] == 0);
    CHECK(row(t, "ap-2")["not_reviewed"] == 1);
    CHECK(t.totals["cells_with_registrations"] == 4);
    CHECK(t.totals["cells_not_reviewed"] == 1);
    CHECK(t.totals["cells_partly_reviewed"] == 1);

    // In Q1, only ấp 2 reviewed, so the three others are listed.
    const auto q1 = f.run(f.district, "unreviewed_cells", "", std::nullopt, "2014-Q1");
    CHECK(units_of(q1) == std::vector<std::string>{"ap-1", "ap-3", "cq-toa-an"});
}

TEST_CASE("inspections: the year's inspections, their findings and conclusions", "[store][reports]") {
    report_fixture f;
    const auto t = f.run(f.district, "inspections");
    CHECK(t.params["year"] == 2014);
    REQUIRE(t.rows.size() == 2);
    CHECK(t.rows[0]["unit"] == "binh-hoa");
    CHECK(t.rows[0]["unit_name"] == "Đảng bộ xã Bình Hòa");
    CHECK(t.rows[0]["vague_registrations"] == 1);
    CHECK(t.rows[0]["conclusions"] == 2);
    CHECK(t.rows[0]["findings"].size() == 2);
    CHECK(t.rows[1]["unit"] == "cq-toa-an");
    CHECK(t.totals["inspections"] == 2);
    CHECK(t.totals["with_vague_registrations"] == 1);
    CHECK(t.totals["vague_registrations"] == 1);
    CHECK(t.totals["conclusions"] == 2);
    const auto bh = f.run(f.binh_hoa, "inspections");
    REQUIRE(bh.rows.size() == 1);
    CHECK(bh.rows[0]["id"] == "i1");
}

TEST_CASE("reports: scope, unknown names and units, bad parameters", "[store][reports]") {
    report_fixture f;
    auto refused = [&](const device& d, report_request r) {
        auto t = f.s->report(scope::of(d), r);
        REQUIRE_FALSE(t.has_value());
        return t.err();
    };
    // A commune's reviewer cannot see another commune, nor the district, nor guess units.
    const auto other = refused(f.binh_hoa, {"registrations", "ap-3", std::nullopt, ""});
    CHECK(other.code == proto::errc::not_found);
    CHECK_THAT(other.message, Catch::Contains("ap-3"));
    CHECK(refused(f.binh_hoa, {"registrations", "giong-trom", std::nullopt, ""}).code == proto::errc::not_found);
    CHECK(refused(f.district, {"registrations", "khong-co", std::nullopt, ""}).code == proto::errc::not_found);
    const auto unknown = refused(f.district, {"attendance", "", std::nullopt, ""});
    CHECK(unknown.code == proto::errc::not_found);
    CHECK_THAT(unknown.message, Catch::Contains("participation"));
    CHECK(refused(f.district, {"participation", "", 0, ""}).code == proto::errc::bad_request);
    CHECK(refused(f.district, {"unreviewed_cells", "", std::nullopt, std::string(51, 'Q')}).code ==
          proto::errc::bad_request);
    // An admin without a unit sees the tree from its root (the district); with a second
    // root, from above all roots.
    const auto all = f.run(f.district, "registrations");
    CHECK(all.root.id == "giong-trom");
    REQUIRE(f.s->put_unit({"mo-cay", "", "Huyện ủy Mỏ Cày", "district", ""}).has_value());
    const auto everything = f.s->report(scope{true, {}}, {"registrations", "", std::nullopt, ""});
    REQUIRE(everything.has_value());
    CHECK(everything->root.id.empty());
    CHECK(units_of(*everything) == std::vector<std::string>{"", "giong-trom", "mo-cay"});
    CHECK(row(*everything, "")["members"] == 8);
    CHECK(row(*everything, "mo-cay")["members"] == 0);
    // A report changes nothing: the feed is where it was.
    auto before = f.s->pull(0, 1000);
    f.run(f.district, "participation");
    auto after = f.s->pull(0, 1000);
    CHECK(before->last_seq == after->last_seq);
}

TEST_CASE("campaign year: reports default to it, never to the latest year in the data", "[store][reports][year]") {
    report_fixture f;
    // One registration and one session of 2015 (a phone ahead of the campaign).
    f.registration("r15", "m5", "ap-2", 2015, "submitted");
    f.session("s15", "ap-2", "2015-01-05", "giáo viên", 30, 1);
    const auto t = f.run(f.district, "registrations");
    CHECK(t.params["year"] == 2014);
    CHECK(t.campaign_year == 2014);
    CHECK(t.has_data);
    CHECK(row(t, "giong-trom")["registered"] == 5);           // not 1 of 8, as 2015's would be
    CHECK(t.years == std::vector<std::int64_t>{2013, 2014, 2015});
    const auto p = f.run(f.district, "participation");
    CHECK(p.params["year"] == 2014);
    CHECK(row(p, "giong-trom", "giáo viên")["invited"] == 78);
    CHECK(p.years == std::vector<std::int64_t>{2013, 2014, 2015});
    const auto i = f.run(f.district, "inspections");
    CHECK(i.years == std::vector<std::int64_t>{2013, 2014});
    // The years are those of the unit's subtree: Bình Hòa had no 2013 session.
    CHECK(f.run(f.binh_hoa, "participation").years == std::vector<std::int64_t>{2014, 2015});

    // A year without data says so; its figures are zeros, of that year.
    const auto empty = f.run(f.district, "registrations", "", 2016);
    CHECK_FALSE(empty.has_data);
    CHECK(empty.params["year"] == 2016);
    CHECK(row(empty, "giong-trom")["registered"] == 0);
    CHECK_FALSE(f.run(f.district, "inspections", "", 2015).has_data);
    CHECK(f.run(f.district, "inspections", "", 2015).rows.empty());
    const auto json_form = fieldsync::server::to_json(empty);
    CHECK(json_form["has_data"] == false);
    CHECK(json_form["years"] == json::array({2013, 2014, 2015}));
    CHECK(json_form["campaign_year"] == 2014);

    // Moving the campaign moves every report; the overview tells it and every data year.
    REQUIRE(f.s->set_campaign_year(2015).has_value());
    CHECK(f.run(f.district, "registrations").params["year"] == 2015);
    CHECK(row(f.run(f.district, "registrations"), "giong-trom")["registered"] == 1);
    const auto overview = f.s->report_years(scope::of(f.district), "");
    REQUIRE(overview.has_value());
    CHECK(overview->campaign_year == 2015);
    CHECK(overview->years == std::vector<std::int64_t>{2013, 2014, 2015});
    CHECK(f.s->report_years(scope::of(f.binh_hoa), "ap-3").err().code == proto::errc::not_found);
    CHECK(f.s->set_campaign_year(0).err().code == proto::errc::bad_request);

    // The server's override wins over the kept year, for this process only.
    f.s->override_campaign_year(2013);
    CHECK(f.s->campaign_year()->year == 2013);
    CHECK(f.s->campaign_year()->source == "override");
    CHECK(f.run(f.district, "inspections").params["year"] == 2013);
    f.s->override_campaign_year(std::nullopt);
    CHECK(f.s->campaign_year()->source == "configured");

    // None kept: the year of the store's clock in Vietnam (UTC+7): 2015-12-31 17:30 UTC is
    // already 2016 there.
    REQUIRE(f.s->set_campaign_year(std::nullopt).has_value());
    f.s->close();
    f.s.reset();
    f.open([] { return std::int64_t{1451583000000}; });   // 2015-12-31T17:30:00Z
    CHECK(f.s->campaign_year()->year == 2016);
    CHECK(f.s->campaign_year()->source == "clock");
    CHECK(f.run(f.district, "participation").params["year"] == 2016);
    f.s->close();
    f.s.reset();
    f.open([] { return std::int64_t{1451581200000}; });   // 2015-12-31T17:00:00Z: midnight there
    CHECK(f.s->campaign_year()->year == 2016);
    f.s->close();
    f.s.reset();
    f.open([] { return std::int64_t{1451581199000}; });   // one second before
    CHECK(f.s->campaign_year()->year == 2015);
}

TEST_CASE("review periods: of their year, by meaning, invalid ones refused", "[store][reports][period]") {
    report_fixture f;
    auto refused = [&](std::optional<std::int64_t> year, const std::string& period) {
        auto t = f.s->report(scope::of(f.district), {"unreviewed_cells", "", year, period});
        REQUIRE_FALSE(t.has_value());
        CHECK(t.err().code == proto::errc::bad_request);
        return t.err().message;
    };
    for (const char* bad : {"2014-Q9", "2014-Q0", "2014-H3", "abc", "14-Q2", "2014Q2", "2014-Q", "0000", "2014-Q2 "})
        CHECK_THAT(refused(std::nullopt, bad), Catch::Contains("YYYY-Q1"));
    CHECK_THAT(refused(std::nullopt, "2014-Q9"), Catch::Contains("'2014-Q9'"));
    // A period of another year than the one asked.
    CHECK_THAT(refused(2014, "2015-Q1"), Catch::Contains("not of year 2014"));
    // A refusal changes nothing, and the next request is answered as before.
    auto before = f.s->pull(0, 1000);
    const auto t = f.run(f.district, "unreviewed_cells");
    CHECK(t.params["period"] == "2014-Q2");
    CHECK(units_of(t) == std::vector<std::string>{"ap-1", "ap-2"});
    CHECK(f.s->pull(0, 1000)->last_seq == before->last_seq);

    // Alone, a period sets the year: 2015 has no registrations, so no data.
    const auto y2015 = f.run(f.district, "unreviewed_cells", "", std::nullopt, "2015-Q1");
    CHECK(y2015.params["year"] == 2015);
    CHECK(y2015.params["period"] == "2015-Q1");
    CHECK_FALSE(y2015.has_data);
    CHECK(y2015.rows.empty());

    // A half or a whole year holds the reviews of its quarters: m4's review of Q1 counts for
    // H1, so only ấp 1 (m2 never reviewed) is left. Letters in either case.
    const auto h1 = f.run(f.district, "unreviewed_cells", "", 2014, "2014-h1");
    CHECK(h1.params["period"] == "2014-H1");
    CHECK(units_of(h1) == std::vector<std::string>{"ap-1"});
    CHECK(units_of(f.run(f.district, "unreviewed_cells", "", std::nullopt, "2014")) == std::vector<std::string>{"ap-1"});
    // ... but a quarter does not hold a review of its half.
    f.review("v2", "r2", "m2", "ap-1", "2014-H1", false);
    CHECK(units_of(f.run(f.district, "unreviewed_cells", "", std::nullopt, "2014-H1")).empty());
    CHECK(units_of(f.run(f.district, "unreviewed_cells", "", std::nullopt, "2014-Q2")) ==
          std::vector<std::string>{"ap-1", "ap-2"});

    // The default is the latest period of the year by meaning: H2 (to December) after Q3
    // (to September), though "2014-Q3" sorts after "2014-H2" as text; a later year's
    // review and a period of another form are not of 2014.
    f.review("v3", "r1", "m1", "ap-1", "2014-Q3", false);
    f.review("v5", "r1", "m1", "ap-1", "2014-H2", false);
    f.review("v6", "r1", "m1", "ap-1", "2015-Q1", false);
    f.review("v9", "r1", "m1", "ap-1", "Q4/2014", false);
    const auto latest = f.run(f.district, "unreviewed_cells");
    CHECK(latest.params["year"] == 2014);
    CHECK(latest.params["period"] == "2014-H2");
    // In H2, m1 is reviewed (Q3 and H2); the others are not.
    CHECK(units_of(latest) == std::vector<std::string>{"ap-1", "ap-2", "ap-3", "cq-toa-an"});
    CHECK(row(latest, "ap-1")["reviewed"] == 1);
    // A year with registrations but no reviews: no period, every cell listed.
    const auto y2013 = f.run(f.district, "unreviewed_cells", "", 2013);
    CHECK(y2013.params["period"].is_null());
    CHECK(y2013.has_data);
    CHECK(units_of(y2013) == std::vector<std::string>{"ap-1"});
    // Other reports take no period.
    CHECK(f.run(f.district, "registrations", "", std::nullopt, "2014-Q9").params["year"] == 2014);
}

TEST_CASE("report CSV: BOM, Vietnamese titles, RFC 4180 quoting, formula guard, machine headers",
          "[store][reports][csv]") {
    report_fixture f;
    // A cell's name with a comma and a quote, in NFC and in NFD; an audience that looks like
    // a formula.
    const std::string name = "Chi bộ ấp 1, \"Bình Hòa\"";
    REQUIRE(f.s->put_unit({"ap-1", "binh-hoa", name, "cell", ""}).has_value());
    REQUIRE(f.s->put_unit({"ap-2", "binh-hoa", to_vietnamese_nfd(name + " 2"), "cell", ""}).has_value());
    f.session("s8", "cq-toa-an", "2014-05-06", "=HYPERLINK(\"http://x\")", 10, 9);
    const auto t = f.run(f.binh_hoa, "unreviewed_cells");
    const auto csv = to_csv(t, false);
    CHECK(csv.rfind("\xEF\xBB\xBF", 0) == 0);
    CHECK(csv.rfind("\xEF\xBB\xBFMã đơn vị,Đơn vị,Thuộc,Đảng viên,Đã đăng ký,Đã nhận xét,Chưa nhận xét\r\n", 0) == 0);
    CHECK_THAT(csv, Catch::Contains("\r\nap-1,\"Chi bộ ấp 1, \"\"Bình Hòa\"\"\",Đảng bộ xã Bình Hòa,3,2,1,1\r\n"));
    CHECK_THAT(csv, Catch::Contains("\r\nap-2,\"" + to_vietnamese_nfd("Chi bộ ấp 1, \"\"Bình Hòa\"\" 2") + "\","));
    // Every line ends CRLF, no bare LF.
    std::size_t lf = 0, crlf = 0;
    for (std::size_t i = 0; i < csv.size(); ++i)
        if (csv[i] == '\n') (i > 0 && csv[i - 1] == '\r' ? crlf : lf) += 1;
    CHECK(lf == 0);
    CHECK(crlf == t.rows.size() + 1);

    const auto p = f.run(f.district, "participation");
    const auto vi = to_csv(p, false);
    CHECK_THAT(vi, Catch::Contains("Mã đơn vị,Đơn vị,Đối tượng,Số buổi,Được mời,Tham dự,Tỷ lệ (%)\r\n"));
    CHECK_THAT(vi, Catch::Contains("\r\ngiong-trom,Huyện ủy Giồng Trôm,giáo viên,2,78,76,97.4\r\n"));
    CHECK_THAT(vi, Catch::Contains("\r\ncq-toa-an,Chi bộ Tòa án huyện,\"'=HYPERLINK(\"\"http://x\"\")\",1,10,9,90.0\r\n"));
    const auto machine = to_csv(p, true);
    CHECK(machine.rfind("unit,unit_name,audience,sessions,invited,attended,rate\r\n", 0) == 0);
    CHECK_THAT(machine, Catch::Contains("\r\ngiong-trom,Huyện ủy Giồng Trôm,giáo viên,2,78,76,0.974358974358974"));
    CHECK_THAT(machine, Catch::Contains("\r\ncq-toa-an,Chi bộ Tòa án huyện,\"'=HYPERLINK(\"\"http://x\"\")\",1,10,9,0.9\r\n"));

    // Arrays joined with "; ", and the file's name.
    const auto i = f.run(f.district, "inspections");
    CHECK_THAT(to_csv(i, false), Catch::Contains(",Lê Văn Cường; Nguyễn Thị Lan,"));
    CHECK(fieldsync::server::csv_file_name(i) == "inspections-giong-trom-2014.csv");
    REQUIRE(f.s->put_unit({"mo-cay", "", "Huyện ủy Mỏ Cày", "district", ""}).has_value());
    const auto everything = f.s->report(scope{true, {}}, {"registrations", "", 2013, ""});
    REQUIRE(everything.has_value());
    CHECK(fieldsync::server::csv_file_name(*everything) == "registrations-all-2013.csv");
}

TEST_CASE("fieldsync-admin report prints an aligned table, CSV and JSON", "[store][reports][cli][sqlite]") {
    report_fixture f;
    // A member name with a comma and a quote, to see CSV quoting.
    f.session("s8", "cq-toa-an", "2014-05-06", "cán bộ, \"công chức\"", 10, 9);
    f.s->close();
    const auto admin = admin_binary() + " --db '" + f.db + "' report ";

    // CSV: the server's bytes (Vietnamese titles, BOM), or machine headers and raw values.
    const auto [csv, csv_status] = run_command(admin + "participation --format csv");
    CHECK(csv_status == 0);
    CHECK(csv.rfind("\xEF\xBB\xBFMã đơn vị,Đơn vị,Đối tượng,Số buổi,Được mời,Tham dự,Tỷ lệ (%)\r\n", 0) == 0);
    CHECK_THAT(csv, Catch::Contains("cq-toa-an,Chi bộ Tòa án huyện,\"cán bộ, \"\"công chức\"\"\",1,10,9,90.0\r\n"));
    CHECK_THAT(csv, Catch::Contains("giong-trom,Huyện ủy Giồng Trôm,giáo viên,2,78,76,97.4\r\n"));
    const auto [mcsv, mcsv_status] = run_command(admin + "participation --format csv --machine-headers");
    CHECK(mcsv_status == 0);
    CHECK(mcsv.rfind("unit,unit_name,audience,sessions,invited,attended,rate\r\n", 0) == 0);
    CHECK_THAT(mcsv, Catch::Contains("cq-toa-an,Chi bộ Tòa án huyện,\"cán bộ, \"\"công chức\"\"\",1,10,9,0.9\r\n"));
    {
        f.open();
        const auto same = f.run(f.district, "participation");
        CHECK(csv == to_csv(same, false));
        CHECK(mcsv == to_csv(same, true));
        f.s->close();
        f.s.reset();
    }

    // --year, and a year without data.
    const auto [y13, y13_status] = run_command(admin + "registrations --year 2013 --format json");
    CHECK(y13_status == 0);
    auto y13_doc = proto::parse_json(y13, 32);
    REQUIRE(y13_doc.has_value());
    CHECK((*y13_doc)["params"]["year"] == 2013);
    CHECK((*y13_doc)["rows"][0]["registered"] == 1);
    const auto [none, none_status] = run_command(admin + "inspections --year 2016");
    CHECK(none_status == 0);
    CHECK_THAT(none, Catch::Contains("year 2016"));
    CHECK_THAT(none, Catch::Contains("no data for 2016"));
    const auto [bad_period, bad_period_status] = run_command(admin + "unreviewed_cells --period 2014-Q9 2>&1");
    CHECK(bad_period_status == 2);
    CHECK_THAT(bad_period, Catch::Contains("not a review period"));

    const auto [js, js_status] = run_command(admin + "registrations --unit binh-hoa --format json");
    CHECK(js_status == 0);
    auto doc = proto::parse_json(js, 32);
    REQUIRE(doc.has_value());
    CHECK((*doc)["report"] == "registrations");
    CHECK((*doc)["unit"]["id"] == "binh-hoa");
    CHECK((*doc)["rows"][0]["registered"] == 3);
    CHECK((*doc)["totals"]["members"] == 5);

    // The table: every line of the body as wide as the header line (NFD names included).
    const auto [table, table_status] = run_command(admin + "unreviewed_cells");
    CHECK(table_status == 0);
    std::istringstream lines(table);
    std::string title, header, line;
    std::getline(lines, title);
    CHECK_THAT(title, Catch::Contains("2014-Q2"));
    std::getline(lines, header);
    CHECK(header.rfind("UNIT", 0) == 0);
    std::getline(lines, line);
    CHECK(proto::display_width(line) == proto::display_width(header));
    CHECK_THAT(line, Catch::StartsWith("ap-1  Chi bộ ấp 1"));
    std::getline(lines, line);   // ấp 2, its name in NFD: as wide as the NFC lines
    CHECK(line.find(to_vietnamese_nfd("Chi bộ ấp 2")) != std::string::npos);
    CHECK(line.size() > header.size());
    CHECK(proto::display_width(line) == proto::display_width(header));
    CHECK_THAT(table, Catch::Contains("cells_not_reviewed 1"));

    // Unknown report, unit or format: exit 2 and nothing on stdout.
    CHECK(run_command(admin + "attendance 2>/dev/null") == std::pair<std::string, int>{"", 2});
    CHECK(run_command(admin + "registrations --unit khong-co 2>/dev/null") == std::pair<std::string, int>{"", 2});
    CHECK(run_command(admin + "registrations --format xml 2>/dev/null") == std::pair<std::string, int>{"", 2});
}

TEST_CASE("fieldsync-admin campaign-year shows and sets the year reports default to", "[store][reports][cli][year][sqlite]") {
    report_fixture f;
    f.registration("r15", "m5", "ap-2", 2015, "submitted");
    f.s->close();
    const auto admin = admin_binary() + " --db '" + f.db + "' ";
    CHECK(run_command(admin + "campaign-year") == std::pair<std::string, int>{"2014\tconfigured\n", 0});
    const auto [t14, s14] = run_command(admin + "report registrations");
    CHECK(s14 == 0);
    CHECK_THAT(t14, Catch::Contains("year 2014"));
    CHECK(run_command(admin + "campaign-year 2015") == std::pair<std::string, int>{"2015\tconfigured\n", 0});
    const auto [js, js_status] = run_command(admin + "report registrations --format json");
    CHECK(js_status == 0);
    auto doc = proto::parse_json(js, 32);
    REQUIRE(doc.has_value());
    CHECK((*doc)["params"]["year"] == 2015);
    CHECK((*doc)["campaign_year"] == 2015);
    CHECK((*doc)["years"] == json::array({2013, 2014, 2015}));
    CHECK((*doc)["rows"][0]["registered"] == 1);
    // Bad years change nothing.
    CHECK(run_command(admin + "campaign-year 0 2>/dev/null").second == 2);
    CHECK(run_command(admin + "campaign-year hai 2>/dev/null").second == 2);
    CHECK(run_command(admin + "campaign-year 2014 --clear 2>/dev/null").second == 2);
    CHECK(run_command(admin + "campaign-year").first == "2015\tconfigured\n");
    // Cleared: this year in Vietnam.
    const auto [cleared, cleared_status] = run_command(admin + "campaign-year --clear");
    CHECK(cleared_status == 0);
    CHECK_THAT(cleared, Catch::Contains("none configured"));
}
