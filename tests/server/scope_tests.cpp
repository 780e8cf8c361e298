// The organisation tree and device scopes in the store: who reads and writes what, drop
// notices when records or units move, revocation and rotation.

#include <catch2/catch.hpp>
#include "store_under_test.hpp"

#include <fieldsync/server/store.hpp>

#include <filesystem>
#include <random>
#include <set>

namespace fs = std::filesystem;
namespace proto = fieldsync::protocol;
using fieldsync::server::device;
using fieldsync::server::device_role;
using fieldsync::server::scope;
using fieldsync::server::store;
using fieldsync::server::unit;
using proto::json;

namespace {

struct tree_fixture {
    fs::path dir;
    std::unique_ptr<store> s;
    device ap1, ap2, ap3, binh_hoa, chau_binh, district;

    tree_fixture() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("fieldsync-scope-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
        fieldsync::server::store_options o;
        o.path = (dir / "central.db").string();
        auto opened = fieldsync::test::open_store_under_test(o);
        REQUIRE(opened.has_value());
        s = std::move(opened).value();
        // Huyện ủy Giồng Trôm > xã Bình Hòa (ấp 1, ấp 2), xã Châu Bình (ấp 3)
        put({"giong-trom", "", "Huyện ủy Giồng Trôm", "district"});
        put({"binh-hoa", "giong-trom", "Đảng bộ xã Bình Hòa", "commune"});
        put({"chau-binh", "giong-trom", "Đảng bộ xã Châu Bình", "commune"});
        put({"ap-1", "binh-hoa", "Chi bộ ấp 1", "cell"});
        put({"ap-2", "binh-hoa", "Chi bộ ấp 2", "cell"});
        put({"ap-3", "chau-binh", "Chi bộ ấp 3", "cell"});
        ap1 = add("ap-1", device_role::field);
        ap2 = add("ap-2", device_role::field);
        ap3 = add("ap-3", device_role::field);
        binh_hoa = add("binh-hoa", device_role::reviewer);
        chau_binh = add("chau-binh", device_role::field);
        district = add("giong-trom", device_role::admin);
    }
    ~tree_fixture() {
        s.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    void put(unit u) { REQUIRE(s->put_unit(u).has_value()); }
    device add(const std::string& unit_id, device_role role) {
        auto d = s->add_device("máy " + unit_id, unit_id, role);
        REQUIRE(d.has_value());
        return d->first;
    }
    // A device as the server sees it on its next request (paths and epochs are current).
    device fresh(const device& d) {
        auto all = s->devices();
        REQUIRE(all.has_value());
        for (const auto& x : *all)
            if (x.id == d.id) return x;
        FAIL("no such device");
        return d;
    }

    proto::change_result write(const device& d, const std::string& id, const std::string& unit_id,
                               std::int64_t base = 0, const std::string& name = "Nguyễn Văn An") {
        proto::change_set cs;
        cs.batch_id = "b-" + id + "-" + std::to_string(counter_);
        proto::change_entry e;
        e.c.change_id = "c-" + std::to_string(counter_++);
        e.c.collection = "members";
        e.c.id = id;
        e.c.unit_id = unit_id;
        e.c.base_version = base;
        e.c.data = {{"name", name}, {"cell", unit_id}};
        cs.changes.push_back(e);
        auto r = s->push(fresh(d), cs);
        REQUIRE(r.has_value());
        return (*r)[0];
    }

    // Everything a device pulls from `cursor` to the end: ids present and ids dropped.
    struct pulled {
        std::set<std::string> ids, dropped;
        std::int64_t cursor = 0;
    };
    pulled pull_all(const device& d, std::int64_t cursor = 0) {
        pulled out;
        for (;;) {
            auto page = s->pull(scope::of(fresh(d)), cursor, 2);  // small pages: paging is exercised
            REQUIRE(page.has_value());
            for (const auto& c : page->changes) out.ids.insert(c.id);
            for (const auto& x : page->dropped) out.dropped.insert(x.id);
            cursor = page->last_seq;
            if (!page->more) break;
        }
        out.cursor = cursor;
        return out;
    }

private:
    int counter_ = 0;
};

using ids = std::set<std::string>;

proto::errc code_of(const proto::change_result& r) { return r.err ? r.err->code : proto::errc::ok; }
std::string message_of(const proto::change_result& r) { return r.err ? r.err->message : std::string(); }

}  // namespace

TEST_CASE("units form a tree of paths, a unit cannot move under itself", "[store][scope]") {
    tree_fixture t;
    auto all = t.s->units();
    REQUIRE(all.has_value());
    REQUIRE(all->size() == 6);
    std::map<std::string, std::string> path;
    for (const auto& u : *all) path[u.id] = u.path;
    CHECK(path["ap-1"] == "/giong-trom/binh-hoa/ap-1/");
    CHECK(path["chau-binh"] == "/giong-trom/chau-binh/");
    CHECK(t.fresh(t.ap1).unit_path == "/giong-trom/binh-hoa/ap-1/");

    auto cycle = t.s->put_unit({"binh-hoa", "ap-1", "Đảng bộ xã Bình Hòa", "commune"});
    REQUIRE_FALSE(cycle.has_value());
    CHECK(cycle.err().code == proto::errc::bad_request);
    auto orphan = t.s->put_unit({"ap-9", "khong-co", "Chi bộ ấp 9", "cell"});
    REQUIRE_FALSE(orphan.has_value());
    CHECK_THAT(orphan.err().message, Catch::Contains("khong-co"));
    CHECK_FALSE(t.s->put_unit({"ap-9", "binh-hoa", "Chi bộ ấp 9", "hamlet"}).has_value());
    CHECK_FALSE(t.s->put_unit({"ap/9", "binh-hoa", "Chi bộ ấp 9", "cell"}).has_value());
}

TEST_CASE("a cell device sees its cell, a commune its cells, the district everything", "[store][scope]") {
    tree_fixture t;
    CHECK(t.write(t.ap1, "m-ap1", "ap-1").status == proto::change_status::applied);
    CHECK(t.write(t.ap2, "m-ap2", "ap-2").status == proto::change_status::applied);
    CHECK(t.write(t.ap3, "m-ap3", "ap-3").status == proto::change_status::applied);
    CHECK(t.write(t.binh_hoa, "m-bh", "binh-hoa").status == proto::change_status::applied);

    CHECK(t.pull_all(t.ap1).ids == ids{"m-ap1"});
    CHECK(t.pull_all(t.ap3).ids == ids{"m-ap3"});
    CHECK(t.pull_all(t.binh_hoa).ids == ids{"m-ap1", "m-ap2", "m-bh"});
    CHECK(t.pull_all(t.chau_binh).ids == ids{"m-ap3"});
    CHECK(t.pull_all(t.district).ids == ids{"m-ap1", "m-ap2", "m-ap3", "m-bh"});

    // Reads of another cell's record look exactly like reads of a missing one.
    const auto ap1 = scope::of(t.fresh(t.ap1));
    CHECK(t.s->get(ap1, "members", "m-ap1")->has_value());
    CHECK_FALSE(t.s->get(ap1, "members", "m-ap2")->has_value());
    CHECK(t.s->history(ap1, "members", "m-ap2")->empty());
    CHECK_FALSE(t.s->history(ap1, "members", "m-ap1")->empty());
    CHECK(t.s->get(scope::of(t.fresh(t.binh_hoa)), "members", "m-ap2")->has_value());
}

TEST_CASE("writes outside the scope are refused the same way whether the id exists or not", "[store][scope]") {
    tree_fixture t;
    t.write(t.ap2, "m-ap2", "ap-2");

    // Trick 1: write into another cell's unit.
    const auto other_unit = t.write(t.ap1, "m-new", "ap-2");
    CHECK(other_unit.status == proto::change_status::rejected);
    CHECK(code_of(other_unit) == proto::errc::out_of_scope);
    // Trick 2: take over another cell's record by naming one's own unit.
    const auto takeover = t.write(t.ap1, "m-ap2", "ap-1");
    CHECK(takeover.status == proto::change_status::rejected);
    CHECK(code_of(takeover) == proto::errc::out_of_scope);
    // Trick 3: the same with the record's version, as if it were known.
    const auto with_version = t.write(t.ap1, "m-ap2", "ap-1", 1);
    CHECK(code_of(with_version) == proto::errc::out_of_scope);
    // The refusal reveals nothing of the stored record: not its unit, not its version.
    CHECK(message_of(takeover).find("ap-2") == std::string::npos);
    CHECK(takeover.version == 0);
    CHECK(with_version.version == 0);
    // Trick 4: a unit id that is a prefix of a path ("ap" of "ap-1"), or the parent commune.
    CHECK(code_of(t.write(t.ap1, "m-x", "binh-hoa")) == proto::errc::out_of_scope);
    CHECK(code_of(t.write(t.ap1, "m-y", "giong-trom")) == proto::errc::out_of_scope);
    // The record is untouched.
    CHECK((*t.s->get("members", "m-ap2"))->version == 1);
    CHECK((*t.s->get("members", "m-ap2"))->unit_id == "ap-2");
}

TEST_CASE("a record moved to another cell is dropped there and delivered to the new cell", "[store][scope]") {
    tree_fixture t;
    t.write(t.ap1, "m-1", "ap-1");
    auto before1 = t.pull_all(t.ap1);
    auto before2 = t.pull_all(t.ap2);
    auto before_commune = t.pull_all(t.binh_hoa);
    CHECK(before1.ids == ids{"m-1"});

    // The commune moves the member from ấp 1 to ấp 2.
    CHECK(t.write(t.binh_hoa, "m-1", "ap-2", 1).status == proto::change_status::applied);

    auto after1 = t.pull_all(t.ap1, before1.cursor);
    CHECK(after1.dropped == ids{"m-1"});
    CHECK(after1.ids.empty());
    auto after2 = t.pull_all(t.ap2, before2.cursor);
    CHECK(after2.ids == ids{"m-1"});
    CHECK(after2.dropped.empty());
    // The commune sees both cells: no drop, the new version.
    auto after_commune = t.pull_all(t.binh_hoa, before_commune.cursor);
    CHECK(after_commune.ids == ids{"m-1"});
    CHECK(after_commune.dropped.empty());
    // ấp 1 can no longer write it.
    CHECK(code_of(t.write(t.ap1, "m-1", "ap-1", 2)) == proto::errc::out_of_scope);
}

TEST_CASE("moving a unit moves its records between subtrees", "[store][scope]") {
    tree_fixture t;
    t.write(t.ap2, "m-ap2", "ap-2");
    t.write(t.ap1, "m-ap1", "ap-1");
    auto bh = t.pull_all(t.binh_hoa);
    auto cb = t.pull_all(t.chau_binh);
    auto cell = t.pull_all(t.ap2);
    CHECK(bh.ids == ids{"m-ap1", "m-ap2"});

    // ấp 2 is moved from Bình Hòa to Châu Bình.
    REQUIRE(t.s->put_unit({"ap-2", "chau-binh", "Chi bộ ấp 2", "cell"}).has_value());
    CHECK(t.fresh(t.ap2).unit_path == "/giong-trom/chau-binh/ap-2/");

    CHECK(t.pull_all(t.binh_hoa, bh.cursor).dropped == ids{"m-ap2"});
    CHECK(t.pull_all(t.chau_binh, cb.cursor).ids == ids{"m-ap2"});
    // The cell itself keeps its record (it comes again, unchanged) and drops nothing.
    auto again = t.pull_all(t.ap2, cell.cursor);
    CHECK(again.dropped.empty());
    CHECK(again.ids == ids{"m-ap2"});
    // A fresh pull of Bình Hòa no longer lists it; its version did not change.
    CHECK(t.pull_all(t.binh_hoa).ids == ids{"m-ap1"});
    CHECK((*t.s->get("members", "m-ap2"))->version == 1);
    // Records may name a unit before the tree holds it; adding the unit places them.
    t.write(t.district, "m-later", "ap-7");
    CHECK(t.pull_all(t.binh_hoa).ids == ids{"m-ap1"});
    REQUIRE(t.s->put_unit({"ap-7", "binh-hoa", "Chi bộ ấp 7", "cell"}).has_value());
    CHECK(t.pull_all(t.binh_hoa).ids == ids{"m-ap1", "m-later"});
}

TEST_CASE("revocation, rotation and moves of devices take effect on the next request", "[store][scope]") {
    tree_fixture t;
    auto made = t.s->add_device("điện thoại bí thư", "ap-1", device_role::field);
    REQUIRE(made.has_value());
    const auto [dev, token] = *made;
    CHECK(t.s->authenticate(token)->has_value());

    auto rotated = t.s->rotate_device(dev.id);
    REQUIRE(rotated.has_value());
    CHECK_FALSE(t.s->authenticate(token)->has_value());
    auto now = t.s->authenticate(*rotated);
    REQUIRE(now->has_value());
    CHECK((*now)->id == dev.id);

    const auto epoch = (*now)->scope_epoch;
    CHECK(t.s->move_device(dev.id, "ap-3").has_value());
    auto moved = t.s->authenticate(*rotated);
    CHECK((*moved)->unit_path == "/giong-trom/chau-binh/ap-3/");
    CHECK((*moved)->scope_epoch == epoch + 1);

    CHECK(t.s->revoke_device(dev.id).has_value());
    CHECK_FALSE(t.s->authenticate(*rotated)->has_value());
    CHECK(t.s->revoke_device("khong-co").err().code == proto::errc::not_found);
    CHECK_FALSE(t.s->rotate_device(dev.id).has_value());  // a revoked device stays revoked
}

TEST_CASE("conflicts are routed to the deepest unit holding both writers", "[store][scope]") {
    tree_fixture t;
    t.write(t.ap1, "m-1", "ap-1");
    // The cell writes from version 1; the commune, also from version 1, moves it to ấp 2 and
    // changes the name: the name collides.
    t.write(t.ap1, "m-1", "ap-1", 1, "Nguyễn Văn Ân");
    const auto r = t.write(t.binh_hoa, "m-1", "ap-2", 1, "Nguyễn Văn Án");
    REQUIRE(r.status == proto::change_status::conflict);
    auto c = t.s->conflict(*r.conflict_id);
    REQUIRE(c->has_value());
    CHECK((*c)->path == "/giong-trom/binh-hoa/");
    CHECK(t.s->conflicts(scope::of(t.fresh(t.binh_hoa)), "open", 10, 0)->size() == 1);
    CHECK(t.s->conflicts(scope::of(t.fresh(t.ap1)), "open", 10, 0)->empty());
    CHECK(t.s->conflicts(scope::of(t.fresh(t.chau_binh)), "open", 10, 0)->empty());
    CHECK_FALSE(t.s->conflict(scope::of(t.fresh(t.ap2)), *r.conflict_id)->has_value());
}
