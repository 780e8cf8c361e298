// The demo data set (issue 8): the same seed gives the same data, every record validates
// against the default schema, the shape is the article's (about 20 base organisations, 2,000
// members, 10 inspections, 97.4% of teachers attending), and loaded into a store the reports
// show those figures.

#include <catch2/catch.hpp>

#include "demo/demo.hpp"
#include "demo/demo_store.hpp"

#include <fieldsync/protocol/nfd.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/server/store.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>

namespace fs = std::filesystem;
namespace demo = fieldsync::demo;
namespace proto = fieldsync::protocol;
using proto::json;

namespace {

json as_json(const demo::data_set& d) {
    json out = json::array();
    for (const auto& u : d.units) out.push_back({u.id, u.parent, u.name, u.kind});
    for (const auto& r : d.records) out.push_back({r.collection, r.id, r.unit_id, r.data});
    for (const auto& v : d.devices) out.push_back({v.name, v.unit_id, v.role});
    return out;
}

}  // namespace

TEST_CASE("demo: the same seed gives the same data set, another seed another one", "[demo]") {
    auto a = demo::generate({});
    auto b = demo::generate({});
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    CHECK(as_json(*a).dump() == as_json(*b).dump());
    demo::options other;
    other.seed = 7;
    auto c = demo::generate(other);
    REQUIRE(c.has_value());
    CHECK(as_json(*a).dump() != as_json(*c).dump());
    // NFD spelling of the district, and its full name, are the same district.
    demo::options nfd;
    nfd.district = proto::to_nfd("Huyện ủy Giồng Trôm");
    auto d = demo::generate(nfd);
    REQUIRE(d.has_value());
    CHECK(as_json(*a).dump() == as_json(*d).dump());
}

TEST_CASE("demo: the article's shape, and every record validates", "[demo]") {
    auto d = demo::generate({});
    REQUIRE(d.has_value());
    const auto& schema = proto::schema::default_schema();
    std::map<std::string, int> count;
    std::set<std::pair<std::string, std::string>> ids;
    std::set<std::string> units;
    for (const auto& u : d->units) units.insert(u.id);
    int nfd_names = 0;
    for (const auto& r : d->records) {
        const auto* c = schema.find(r.collection);
        REQUIRE(c != nullptr);
        const auto problem = schema.validate(*c, r.data);
        INFO(r.collection << "/" << r.id << ": " << (problem ? problem->message : ""));
        CHECK_FALSE(problem.has_value());
        CHECK(units.count(r.unit_id) == 1);
        if (ids.insert({r.collection, r.id}).second) ++count[r.collection];
        if (r.collection == "members") {
            const auto name = r.data["name"].get<std::string>();
            const bool ascii = std::all_of(name.begin(), name.end(), [](char ch) { return (ch & 0x80) == 0; });
            if (!ascii && proto::to_nfd(name) == name) ++nfd_names;
        }
    }
    int bases = 0, hamlets = 0, offices = 0;
    for (const auto& u : d->units) {
        if (u.parent == "giong-trom") ++bases;
        hamlets += u.kind == "cell" ? 1 : 0;
        offices += u.kind == "office" ? 1 : 0;
    }
    CHECK(d->units.front().name == "Huyện ủy Giồng Trôm");
    CHECK(bases == 20);
    CHECK(offices == 8);
    CHECK(hamlets >= 12 * 4);
    CHECK(hamlets <= 12 * 9);
    CHECK(count["members"] == 2000);
    CHECK(count["inspections"] == 10);
    CHECK(count["registrations"] > 1600);
    CHECK(count["registrations"] < 2000);
    CHECK(count["reviews"] > 0);
    CHECK(count["conclusions"] > 0);
    CHECK(count["standards"] == hamlets + offices);
    CHECK(nfd_names > 100);   // about one name in ten came from a phone that sends NFD
    CHECK(demo::base_organisation_of(*d, "binh-hoa-ap-1") == "binh-hoa");
    CHECK(demo::base_organisation_of(*d, "binh-hoa") == "binh-hoa");
    CHECK(demo::base_organisation_of(*d, "giong-trom").empty());
    CHECK(demo::slug(proto::to_nfd("Thạnh Phú Đông")) == "thanh-phu-dong");

    demo::options bad;
    bad.district = "Mỏ Cày";
    auto refused = demo::generate(bad);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.err().code == proto::errc::bad_request);
}

TEST_CASE("demo: loaded through the store, the reports show the article's figures", "[demo][reports]") {
    std::random_device rd;
    const auto dir = fs::temp_directory_path() / ("fieldsync-demo-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(dir);
    {
        fieldsync::server::store_options o;
        o.path = (dir / "central.db").string();
        auto st = fieldsync::server::open_sqlite_store(o);
        REQUIRE(st.has_value());
        auto d = demo::generate({});
        REQUIRE(d.has_value());
        auto loaded = demo::load(**st, *d);
        REQUIRE(loaded.has_value());
        CHECK(loaded->versions == d->records.size());
        CHECK(loaded->devices.size() == d->devices.size());
        // Reviewed registrations were edited: version 2 in history.
        std::string reviewed;
        for (const auto& r : d->records)
            if (r.collection == "registrations" && r.data["status"] != "submitted") reviewed = r.id;
        auto h = (*st)->history("registrations", reviewed);
        REQUIRE(h.has_value());
        CHECK(h->size() == 2);

        const fieldsync::server::scope all{true, {}};
        auto p = (*st)->report(all, {"participation", "giong-trom", std::nullopt, ""});
        REQUIRE(p.has_value());
        bool teachers = false;
        for (const auto& row : p->rows)
            if (row["unit"] == "giong-trom" && row["audience"] == "giáo viên") {
                teachers = true;
                CHECK(row["rate"].get<double>() == Approx(0.974).margin(0.0005));
            }
        CHECK(teachers);
        auto i = (*st)->report(all, {"inspections", "", std::nullopt, ""});
        REQUIRE(i.has_value());
        CHECK(i->rows.size() == 10);
        auto r = (*st)->report(all, {"registrations", "", std::nullopt, ""});
        REQUIRE(r.has_value());
        CHECK(r->totals["members"] == 2000);
        auto u = (*st)->report(all, {"unreviewed_cells", "", std::nullopt, ""});
        REQUIRE(u.has_value());
        CHECK(u->params["period"] == d->period);
        CHECK(u->totals["cells_not_reviewed"].get<int>() > 0);

        // A second load is refused: the demo never mixes with data already there.
        auto again = demo::load(**st, *d);
        REQUIRE_FALSE(again.has_value());
        CHECK(again.err().code == proto::errc::bad_request);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}
