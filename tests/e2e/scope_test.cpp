// Device scopes through HTTP: a device reads, pulls and writes only its unit's subtree (an
// admin everything); records leaving a scope are dropped from its pulls; a device moved to
// another unit starts its pulls over.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

#include <set>

namespace fieldsync::e2e {
namespace {

struct tree {
    server_fixture f;
    std::pair<srv::device, std::string> ap1, ap2, commune, admin;

    tree() {
        put({"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""});
        put({"binh-hoa", "giong-trom", "Đảng bộ xã Bình Hòa", "commune", ""});
        put({"ap-1", "binh-hoa", "Chi bộ ấp 1", "cell", ""});
        put({"ap-2", "binh-hoa", "Chi bộ ấp 2", "cell", ""});
        ap1 = add("Máy chi bộ ấp 1", "ap-1", srv::device_role::field);
        ap2 = add("Máy chi bộ ấp 2", "ap-2", srv::device_role::field);
        commune = add("Máy Đảng ủy xã", "binh-hoa", srv::device_role::field);
        admin = add("Máy Huyện ủy", "giong-trom", srv::device_role::admin);
    }
    void put(const srv::unit& u) { REQUIRE(f.store().put_unit(u).has_value()); }
    std::pair<srv::device, std::string> add(const std::string& name, const std::string& unit, srv::device_role role) {
        auto d = f.store().add_device(name, unit, role);
        REQUIRE(d.has_value());
        return *d;
    }
    json write(const std::pair<srv::device, std::string>& d, const std::string& change_id, const std::string& id,
               const std::string& unit, std::int64_t base = 0) {
        return only_result(f.sync(batch("b-" + change_id, {put_change(change_id, "members", id, base,
                                                                     {{"name", "Nguyễn Thị Lan"}, {"cell", unit}}, unit)}),
                                  d.second));
    }
    // Pulls to the end from `cursor`: the ids delivered, the ids dropped, the last cursor.
    struct pulled {
        std::set<std::string> ids, dropped;
        std::string cursor;
    };
    pulled pull_all(const std::pair<srv::device, std::string>& d, std::string cursor = "") {
        pulled out;
        for (int i = 0; i < 100; ++i) {
            const auto page = f.sync(json{{"cursor", cursor}, {"limit", 2}}, d.second);
            for (const auto& c : page["changes"]) out.ids.insert(c["id"].get<std::string>());
            if (page.contains("dropped"))
                for (const auto& c : page["dropped"]) out.dropped.insert(c["id"].get<std::string>());
            cursor = page["cursor"].get<std::string>();
            if (!page["more"].get<bool>()) break;
        }
        out.cursor = cursor;
        return out;
    }
};

using ids = std::set<std::string>;

}  // namespace

TEST_CASE("a device reads, pulls and writes only its unit's subtree, an admin sees everything", "[e2e][scope]") {
    tree t;
    REQUIRE(t.write(t.ap1, "c-1", "m-1", "ap-1")["status"] == "applied");
    REQUIRE(t.write(t.ap2, "c-2", "m-2", "ap-2")["status"] == "applied");

    CHECK(t.f.get("/v1/records/members/m-1", t.ap1.second).status == 200);
    CHECK(t.f.get("/v1/records/members/m-2", t.ap1.second).status == 404);  // not revealed
    CHECK(t.f.get("/v1/records/members/m-2/history", t.ap1.second).status == 404);
    CHECK(t.pull_all(t.ap1).ids == ids{"m-1"});
    CHECK(t.pull_all(t.ap2).ids == ids{"m-2"});
    CHECK(t.pull_all(t.commune).ids == ids{"m-1", "m-2"});
    CHECK(t.pull_all(t.admin).ids == ids{"m-1", "m-2"});
    CHECK(t.f.get("/v1/records/members/m-2", t.admin.second).status == 200);

    const auto out = t.write(t.ap1, "c-3", "m-3", "ap-2");
    CHECK(out["status"] == "rejected");
    CHECK(out["error"]["code"] == "out_of_scope");

    // A conflict in ấp 2 is not shown to ấp 1.
    REQUIRE(only_result(t.f.sync(batch("b-4", {put_change("c-4", "members", "m-2", 1, {{"name", "Nguyễn Thị Lan (ấp 2)"}, {"cell", "ap-2"}}, "ap-2")}),
                                 t.ap2.second))["status"] == "applied");
    auto c = only_result(t.f.sync(batch("b-5", {put_change("c-5", "members", "m-2", 1, {{"name", "Nguyễn Thị Lan Anh"}, {"cell", "ap-2"}}, "ap-2")}),
                                  t.commune.second));
    REQUIRE(c["status"] == "conflict");
    const auto conflict = "/v1/conflicts/" + c["conflict_id"].get<std::string>();
    CHECK(t.f.get(conflict, t.ap2.second).status == 200);
    CHECK(t.f.get(conflict, t.ap1.second).status == 404);
    CHECK(t.f.get("/v1/conflicts", t.ap1.second).body_json()["conflicts"].empty());
    CHECK(t.f.get("/v1/conflicts", t.admin.second).body_json()["conflicts"].size() == 1);
}

TEST_CASE("a record moved to another cell is dropped from the old cell's pulls", "[e2e][scope]") {
    tree t;
    REQUIRE(t.write(t.ap1, "c-1", "m-1", "ap-1")["status"] == "applied");
    const auto before1 = t.pull_all(t.ap1);
    const auto before2 = t.pull_all(t.ap2);
    CHECK(before1.ids == ids{"m-1"});

    REQUIRE(t.write(t.commune, "c-2", "m-1", "ap-2", 1)["status"] == "applied");
    const auto after1 = t.pull_all(t.ap1, before1.cursor);
    CHECK(after1.dropped == ids{"m-1"});
    CHECK(after1.ids.empty());
    CHECK(after1.cursor != before1.cursor);  // the drop moved the cursor on
    CHECK(t.pull_all(t.ap1, after1.cursor).dropped.empty());
    CHECK(t.pull_all(t.ap2, before2.cursor).ids == ids{"m-1"});
}

TEST_CASE("a device moved to another unit starts its pulls over", "[e2e][scope]") {
    tree t;
    REQUIRE(t.write(t.ap1, "c-1", "m-1", "ap-1")["status"] == "applied");
    REQUIRE(t.write(t.ap2, "c-2", "m-2", "ap-2")["status"] == "applied");
    const auto before = t.pull_all(t.ap1);
    CHECK(before.ids == ids{"m-1"});

    REQUIRE(t.f.store().move_device(t.ap1.first.id, "ap-2").has_value());
    // The old cursor is past m-2's seq, yet the device now sees ấp 2 from its beginning.
    const auto after = t.pull_all(t.ap1, before.cursor);
    CHECK(after.ids == ids{"m-2"});
    CHECK(after.cursor != before.cursor);
    CHECK(t.pull_all(t.ap1, after.cursor).ids.empty());  // the new cursor is current
    // A cursor of an epoch the device has not reached (a store restored from an older backup
    // issued it) names no position of its feed: the device starts over, as after a move.
    const auto r = t.f.sync(json{{"cursor", "7.1"}}, t.ap1.second);
    CHECK(r["reset"] == true);
    CHECK(r["changes"].size() == 1);
    CHECK(r["changes"][0]["id"] == "m-2");
    // Not of the server's form at all: refused.
    CHECK(t.f.post_sync(json{{"cursor", "7.x"}}, t.ap1.second).error_code() == "bad_cursor");
}

}  // namespace fieldsync::e2e

namespace fieldsync::e2e {

TEST_CASE("a revoked or rotated token is refused on the very next request", "[e2e][scope][auth]") {
    tree t;
    CHECK(t.f.get("/v1/conflicts", t.ap1.second).status == 200);
    auto rotated = t.f.store().rotate_device(t.ap1.first.id);
    REQUIRE(rotated.has_value());
    CHECK(t.f.get("/v1/conflicts", t.ap1.second).error_code() == "unauthorized");
    CHECK(t.f.get("/v1/conflicts", *rotated).status == 200);

    REQUIRE(t.f.store().revoke_device(t.ap1.first.id).has_value());
    const auto r = t.f.post_sync(json{{"cursor", ""}}, *rotated);
    CHECK(r.status == 401);
    CHECK(r.error_code() == "unauthorized");
    CHECK(t.f.get("/v1/conflicts", t.ap2.second).status == 200);  // others unaffected
}

}  // namespace fieldsync::e2e
