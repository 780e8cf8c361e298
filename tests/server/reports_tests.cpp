// The district's reports (issue 8) on a small data set written by the test, with figures
// computed by hand; names and audiences in NFC and NFD; tombstones and other years left out;
// scopes; errors; and the fieldsync-admin report formats (table, CSV, JSON).

#include <catch2/catch.hpp>

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

    void open() {
        fieldsync::server::store_options o;
        o.path = db;
        auto opened = fieldsync::server::open_sqlite_store(o);
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

TEST_CASE("fieldsync-admin report prints an aligned table, CSV and JSON", "[store][reports][cli]") {
    report_fixture f;
    // A member name with a comma and a quote, to see CSV quoting.
    f.session("s8", "cq-toa-an", "2014-05-06", "cán bộ, \"công chức\"", 10, 9);
    f.s->close();
    const auto admin = admin_binary() + " --db '" + f.db + "' report ";

    const auto [csv, csv_status] = run_command(admin + "participation --format csv");
    CHECK(csv_status == 0);
    CHECK(csv.rfind("unit,unit_name,audience,sessions,invited,attended,rate\r\n", 0) == 0);
    CHECK_THAT(csv, Catch::Contains("cq-toa-an,Chi bộ Tòa án huyện,\"cán bộ, \"\"công chức\"\"\",1,10,9,0.9000\r\n"));
    CHECK_THAT(csv, Catch::Contains("giong-trom,Huyện ủy Giồng Trôm,giáo viên,2,78,76,0.9744\r\n"));

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
