// The demo data set (issue 8): the same seed gives the same data, every record validates
// against the default schema, the shape is the article's (about 20 base organisations, 2,000
// members, 10 inspections, 97.4% of teachers attending), and loaded into a store the reports
// show those figures.

#include <catch2/catch.hpp>

#include "demo/demo.hpp"
#include "demo/demo_store.hpp"

#include <fieldsync/protocol/nfd.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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
    for (const auto& r : d.races)
        out.push_back({r.collection, r.id, r.unit_id, r.first_device, r.second_device, r.first, r.second, r.fields,
                       r.outcome, r.choice, r.note, r.reviewer});
    return out;
}

// GET `target` from a server on 127.0.0.1:`port` with a bearer token; the body of a 200, else
// null. HTTP/1.1 with Connection: close, so the answer ends when the connection does.
json http_get(std::uint16_t port, const std::string& target, const std::string& token) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
                            "\r\nConnection: close\r\n\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
    std::string reply;
    char buf[65536];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    const auto head_end = reply.find("\r\n\r\n");
    if (reply.rfind("HTTP/1.1 200", 0) != 0 || head_end == std::string::npos) return nullptr;
    return json::parse(reply.substr(head_end + 4));
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
        // Each race wrote its first change; a resolution writes one more version.
        const auto resolved = std::count_if(d->races.begin(), d->races.end(), [](const auto& r) { return r.outcome == "resolved"; });
        CHECK(loaded->versions == d->records.size() + d->races.size() + static_cast<std::size_t>(resolved));
        CHECK(loaded->devices.size() == d->devices.size());
        // Reviewed registrations were edited: version 2 in history.
        std::set<std::string> raced;
        for (const auto& r : d->races) raced.insert(r.id);
        std::string reviewed;
        for (const auto& r : d->records)
            if (r.collection == "registrations" && r.data["status"] != "submitted" && !raced.count(r.id)) reviewed = r.id;
        auto h = (*st)->history("registrations", reviewed);
        REQUIRE(h.has_value());
        CHECK(h->size() == 2);

        const fieldsync::server::scope all{true, {}};
        auto p = (*st)->report(all, {"participation", "giong-trom", 2014, ""});
        REQUIRE(p.has_value());
        bool teachers = false;
        for (const auto& row : p->rows)
            if (row["unit"] == "giong-trom" && row["audience"] == "giáo viên") {
                teachers = true;
                CHECK(row["rate"].get<double>() == Approx(0.974).margin(0.0005));
            }
        CHECK(teachers);
        auto i = (*st)->report(all, {"inspections", "", 2014, ""});
        REQUIRE(i.has_value());
        CHECK(i->rows.size() == 10);
        auto r = (*st)->report(all, {"registrations", "", 2014, ""});
        REQUIRE(r.has_value());
        // The demo's open race where the office deleted a member (a delete against an edit)
        // leaves that member deleted until a reviewer decides.
        const auto deleted = std::count_if(d->races.begin(), d->races.end(), [](const auto& x) {
            return x.collection == "members" && x.first.is_null() && x.outcome == "open";
        });
        CHECK(deleted == 1);
        CHECK(r->totals["members"] == 2000 - deleted);
        auto u = (*st)->report(all, {"unreviewed_cells", "", 2014, ""});
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

TEST_CASE("demo: open conflicts of each kind, made by two devices' syncs, listed for the reviewer by name",
          "[demo][conflicts]") {
    std::random_device rd;
    const auto dir = fs::temp_directory_path() / ("fieldsync-demo-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(dir);
    {
        fieldsync::server::store_options o;
        o.path = (dir / "central.db").string();
        auto st = fieldsync::server::open_sqlite_store(o);
        REQUIRE(st.has_value());
        demo::options small;
        small.seed = 3;  // another seed, the same kinds
        for (const auto& opts : {demo::options{}, small}) {
            auto d = demo::generate(opts);
            REQUIRE(d.has_value());
            std::set<std::string> kinds;
            for (const auto& r : d->races) kinds.insert(r.outcome + " " + json(r.fields).dump());
            CHECK(kinds == std::set<std::string>{R"(open ["/commitments"])", R"(open ["/role"])",
                                                 R"(open ["/notes","/status"])", R"(open [""])",
                                                 R"(resolved ["/notes"])", R"(dismissed ["/notes"])"});
        }
        auto d = demo::generate({});
        REQUIRE(d.has_value());
        auto loaded = demo::load(**st, *d);
        REQUIRE(loaded.has_value());
        REQUIRE(loaded->conflicts.size() == d->races.size());

        std::string reviewer, commune_reviewer_name, commune;
        for (const auto& [dev, token] : loaded->devices) {
            if (dev.role == "reviewer" && dev.unit_id == "giong-trom") reviewer = token;
            if (dev.role == "reviewer" && dev.unit_id != "giong-trom") {
                commune_reviewer_name = dev.name;
                commune = dev.unit_id;
            }
        }
        REQUIRE_FALSE(reviewer.empty());
        std::map<std::string, std::string> unit_names, member_names;
        for (const auto& u : d->units) unit_names[u.id] = u.name;
        for (const auto& r : d->records)
            if (r.collection == "members") member_names[r.id] = r.data["name"].get<std::string>();

        fieldsync::server::server srv({}, **st);
        const auto port = srv.start();
        REQUIRE(port.has_value());
        const auto open = http_get(*port, "/v1/conflicts", reviewer);
        const auto all = http_get(*port, "/v1/conflicts?status=any", reviewer);
        srv.stop();
        REQUIRE(open.is_object());
        REQUIRE(all.is_object());

        // Open: the same field twice (commitments, a role), several fields of which two
        // collide, an edit against a delete and a delete against an edit.
        std::multiset<std::string> open_kinds;
        for (const auto& c : open["conflicts"]) {
            std::string kind = c["collection"].get<std::string>() + " " + c["fields"].dump();
            if (c["fields"] == json{""}) kind += c["incoming_deleted"].get<bool>() ? " incoming delete" : " head deleted";
            open_kinds.insert(kind);
        }
        CHECK(open_kinds == std::multiset<std::string>{R"(registrations ["/commitments"])", R"(members ["/role"])",
                                                       R"(registrations ["/notes","/status"])",
                                                       R"(registrations [""] incoming delete)",
                                                       R"(members [""] head deleted)"});
        int resolved = 0, dismissed = 0;
        for (const auto& c : all["conflicts"]) {
            INFO(c.dump());
            resolved += c["status"] == "resolved";
            dismissed += c["status"] == "dismissed";
            // Named for people: the record's title, not its id; the sender and the units by name.
            const auto rec = c["record_id"].get<std::string>();
            const auto title = c["title"].get<std::string>();
            CHECK_FALSE(title.empty());
            CHECK(title.find(rec) == std::string::npos);
            const auto race = std::find_if(d->races.begin(), d->races.end(), [&](const auto& r) { return r.id == rec; });
            REQUIRE(race != d->races.end());
            const json& data = race->first.is_null() ? race->second : race->first;
            if (c["collection"] == "registrations")
                CHECK(title == member_names.at(data["member"].get<std::string>()) + ", 2014");
            else
                CHECK(title == data["name"].get<std::string>());
            CHECK(c["device_name"] == d->devices[race->second_device].name);
            CHECK(c["unit_name"] == unit_names.at(race->unit_id));
            CHECK(c["path_names"] == json{"Huyện ủy Giồng Trôm", unit_names.at(commune), unit_names.at(race->unit_id)});
            if (c["status"] != "open") CHECK(c["closed_by_name"] == commune_reviewer_name);
        }
        CHECK(resolved == 1);
        CHECK(dismissed == 1);
        // The phone and the laptop both sent incoming changes.
        std::set<std::string> senders;
        for (const auto& c : all["conflicts"]) senders.insert(c["device_name"].get<std::string>());
        CHECK(senders.size() == 2);
        CHECK(senders.count("Máy tính Văn phòng Đảng ủy xã " + unit_names.at(commune).substr(std::string("Đảng bộ xã ").size())) ==
              1);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}
