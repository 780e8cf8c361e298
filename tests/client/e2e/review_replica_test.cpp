// A conflict resolved by a reviewer reaches the replicas (issue 5, "Done when"): the replica
// whose change was held for review pulls the resolved version and leaves its conflict state;
// the other replica pulls it too.

#include "e2e_support.hpp"

#include <fieldsync/protocol/json_input.hpp>

using namespace fieldsync;
using namespace fieldsync::test;
using client::sync_state;

TEST_CASE("a resolution reaches the replica whose change became a conflict and clears its state",
          "[client][e2e][review]") {
    live_server server;
    temp_dir dir;
    auto a = live_replica(server, dir, "a");
    auto b = live_replica(server, dir, "b");
    const std::string reviewer = server.add_device("Kiểm tra huyện");

    const auto id = ok(a->put("members", member(1), {.id = "", .unit_id = "xa-binh-hoa"})).id;
    ok(a->sync());
    ok(b->sync());
    ok(a->patch("members", id, {{"role", "bí thư chi bộ"}}));
    ok(b->patch("members", id, {{"role", "chi ủy viên"}, {"notes", "đã học Nghị quyết"}}));
    ok(a->sync());
    CHECK(ok(b->sync()).conflicts == 1);
    auto held = ok(b->get("members", id));
    REQUIRE(held);
    REQUIRE(held->state == sync_state::conflict);
    REQUIRE(held->conflict_id);

    const auto shown = server.store().conflict(*held->conflict_id);
    REQUIRE(shown);
    REQUIRE(*shown);
    const auto res = resolve(server, reviewer, *held->conflict_id,
                             {{"choice", "take_incoming"}, {"head_version", (*shown)->current_version}});
    INFO(res.body);
    REQUIRE(res.status == 200);

    ok(b->sync());
    const auto after = ok(b->get("members", id));
    REQUIRE(after);
    CHECK(after->state == sync_state::synced);
    CHECK(!after->conflict_id);
    CHECK(after->version == (*shown)->current_version + 1);
    CHECK(after->data["role"] == "chi ủy viên");
    CHECK(after->data["notes"] == "đã học Nghị quyết");
    CHECK(ok(b->status()).conflicts == 0);

    ok(a->sync());
    const auto other = ok(a->get("members", id));
    REQUIRE(other);
    CHECK(other->data["role"] == "chi ủy viên");
    CHECK(other->version == after->version);
    require_converged(server.store(), *a, {"members"});
    require_converged(server.store(), *b, {"members"});
}

// Issue 15: the device whose change was held learns what the district decided (choice, note,
// the reviewer's unit by name), keeps its own text beside the decision, stays held while other
// edits arrive before the decision, and can put the notice away with discard().
TEST_CASE("the district's decision, its note and its unit reach the device whose change was held",
          "[client][e2e][review][decision]") {
    live_server server;
    temp_dir dir;
    put_cells(server.store());
    auto a = live_replica(server, dir, "a");
    auto b = live_replica(server, dir, "b");
    auto office = live_replica(server, dir, "office");
    const std::string reviewer = server.add_device("Kiểm tra huyện", "giong-trom", srv::device_role::reviewer);

    const auto id = ok(a->put("members", member(1), {.id = "", .unit_id = "ap-1"})).id;
    ok(a->sync());
    ok(b->sync());
    ok(a->patch("members", id, {{"role", "bí thư chi bộ"}}));
    ok(b->patch("members", id, {{"role", "chi ủy viên"}}));
    ok(a->sync());
    CHECK(ok(b->sync()).conflicts == 1);
    auto held = ok(b->get("members", id));
    REQUIRE(held);
    REQUIRE(held->state == sync_state::conflict);
    CHECK(!held->reason);  // held for review is not an error
    REQUIRE(held->conflict_id);

    // Another field edited at the district before the decision: b follows the head but stays
    // held, and the sync names the conflict without an outcome yet.
    ok(office->sync());
    ok(office->patch("members", id, {{"notes", "Huyện ủy đã xem hồ sơ"}}));
    ok(office->sync());
    CHECK(ok(b->sync()).decided == 0);
    held = ok(b->get("members", id));
    CHECK(held->state == sync_state::conflict);
    CHECK(held->data["notes"] == "Huyện ủy đã xem hồ sơ");
    CHECK(held->held["role"] == "chi ủy viên");
    CHECK(!held->resolution);
    // The reviewer decides a held change, not the device.
    CHECK(b->discard("members", id).err().code == client::errc::invalid_argument);

    const auto shown = server.store().conflict(*held->conflict_id);
    REQUIRE(shown);
    REQUIRE(*shown);
    const auto res = resolve(server, reviewer, *held->conflict_id,
                             {{"choice", "keep_head"},
                              {"head_version", (*shown)->current_version},
                              {"note", "Giữ chức vụ theo nghị quyết chi bộ"}});
    INFO(res.body);
    REQUIRE(res.status == 200);

    CHECK(ok(b->sync()).decided == 1);
    const auto after = ok(b->get("members", id));
    REQUIRE(after);
    CHECK(after->state == sync_state::synced);
    CHECK(!after->conflict_id);
    CHECK(after->version == (*shown)->current_version + 1);
    CHECK(after->data["role"] == "bí thư chi bộ");
    CHECK(after->data["notes"] == "Huyện ủy đã xem hồ sơ");
    CHECK(after->held["role"] == "chi ủy viên");  // what b wrote is still shown beside the decision
    REQUIRE(after->resolution);
    CHECK(after->resolution->status == "resolved");
    CHECK(after->resolution->choice == "keep_head");
    CHECK(after->resolution->note == "Giữ chức vụ theo nghị quyết chi bộ");
    CHECK(after->resolution->version == after->version);
    CHECK(after->resolution->reviewer_unit_id == "giong-trom");
    CHECK(after->resolution->reviewer_unit_name == "Huyện ủy Giồng Trôm");
    CHECK(after->resolution->closed_ms > 0);
    CHECK(ok(b->status()).conflicts == 0);

    // The notice stays through later syncs, and survives reopening the replica file.
    CHECK(ok(b->sync()).decided == 0);
    b.reset();
    {
        client::replica_options o;
        o.path = dir.file("b.db");
        auto reopened = ok(client::replica::open(o));
        auto kept = ok(reopened->get("members", id));
        REQUIRE(kept);
        REQUIRE(kept->resolution);
        CHECK(kept->resolution->note == "Giữ chức vụ theo nghị quyết chi bộ");
        // discard puts the notice away: the record is the server's version, nothing else.
        auto cleared = ok(reopened->discard("members", id));
        CHECK(cleared.state == sync_state::synced);
        CHECK(!cleared.resolution);
        CHECK(cleared.held.is_null());
        CHECK(cleared.data["role"] == "bí thư chi bộ");
        CHECK(!ok(reopened->get("members", id))->resolution);
    }

    // The device whose change was taken gets no notice.
    ok(a->sync());
    CHECK(!ok(a->get("members", id))->resolution);
    require_converged(server.store(), *a, {"members"});
}

TEST_CASE("discard drops a refused change and unsent edits, and refuses a held one",
          "[client][e2e][review][discard]") {
    live_server server;
    temp_dir dir;
    client::replica_options o;
    o.path = dir.file("a.db");
    o.schema = nullptr;  // let the server refuse
    auto r = ok(client::replica::open(o));
    ok(r->configure(server.url(), server.add_device("Máy a")));
    ok(r->put("members", member(1), {.id = "good-1", .unit_id = "u"}));
    ok(r->put("members", {{"cell", "Chi bộ ấp 2"}}, {.id = "bad-1", .unit_id = "u"}));  // no name
    CHECK(ok(r->sync()).rejected == 1);
    CHECK(ok(r->status()).rejected == 1);

    // A refused create: discarding it removes it (the server never had it).
    auto gone = ok(r->discard("members", "bad-1"));
    CHECK(gone.deleted);
    CHECK(!ok(r->get("members", "bad-1")));
    CHECK(ok(r->status()).rejected == 0);

    // A refused edit of a record the server has: back to the server's version.
    ok(r->patch("members", "good-1", {{"name", nullptr}}));  // a member needs a name
    CHECK(ok(r->sync()).rejected == 1);
    auto back = ok(r->discard("members", "good-1"));
    CHECK(back.state == sync_state::synced);
    CHECK(back.data == member(1));
    CHECK(!back.reason);

    // Unsent edits: dropped from the outbox, nothing is sent.
    ok(r->patch("members", "good-1", {{"notes", "viết nhầm"}}));
    CHECK(ok(r->pending_count()) == 1);
    CHECK(ok(r->discard("members", "good-1")).data == member(1));
    CHECK(ok(r->pending_count()) == 0);
    CHECK(ok(r->sync()).pushed == 0);
    CHECK(server.store().get("members", "good-1")->value().data == member(1));

    CHECK(r->discard("members", "khong-co").err().code == client::errc::not_found);
}
