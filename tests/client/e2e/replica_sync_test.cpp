// The sync engine against the real server (live_server: the SQLite store behind the HTTP
// server on an ephemeral loopback port): convergence, the merge rule's outcomes, the outbox
// (coalescing, edits during a sync, byte-bounded change-sets), rejected changes, edits from
// another thread, records leaving the device's scope and syncs cut after a local transaction.
// Only what the real server cannot be made to show stays on the fake server
// (tests/client/unit/sync_test.cpp, tests/client/fake_server.hpp).

#include "e2e_support.hpp"
#include "replica_internal.hpp"

#include <atomic>
#include <functional>
#include <map>
#include <thread>
#include <utility>

using namespace fieldsync;
using namespace fieldsync::test;
using client::errc;
using client::sync_state;

namespace {

/// A replica for `server` named `name`. `on_send` (may be empty) sees each request as it is
/// about to go out, when its change-set is frozen; every request then reaches the server.
device make_device(live_server& server, temp_dir& dir, const std::string& name,
                   std::function<void(const client::http_request&)> on_send = {}, client::sync_tuning tuning = {},
                   const std::string& token = {}) {
    std::shared_ptr<client::transport> t;
    if (on_send)
        t = std::make_shared<fault_transport>([on_send = std::move(on_send)](const client::http_request& req, int) {
            on_send(req);
            return cut{};
        });
    return {live_replica(server, dir, name, std::move(t), {}, tuning, token), name};
}

/// An edit to make while the next request is on the wire: arm() it, pass hook() to
/// make_device; it runs once, when that request's change-set is frozen and about to go out.
class edit_during_send {
public:
    void arm(std::function<void()> edit) { edit_ = std::move(edit); }
    std::function<void(const client::http_request&)> hook() {
        return [this](const client::http_request&) {
            if (auto edit = std::exchange(edit_, nullptr)) edit();
        };
    }

private:
    std::function<void()> edit_;
};

std::vector<srv::conflict_view> open_conflicts(live_server& server) {
    auto open = server.store().conflicts("open", 100, 0);
    REQUIRE(open);
    return *open;
}

}  // namespace

TEST_CASE("two replicas converge: different fields merge, the same field conflicts", "[client][e2e][sync][merge]") {
    live_server server;
    temp_dir dir;
    auto a = make_device(server, dir, "a");
    auto b = make_device(server, dir, "b");

    auto m = ok(a.r->put("members", member(1), {.id = "", .unit_id = "ap-1"}));
    auto rep = ok(a.r->sync());
    CHECK(rep.pushed == 1);
    CHECK(rep.applied == 1);
    CHECK(rep.bytes_sent > 0);
    CHECK(rep.bytes_received > 0);
    CHECK(ok(a.r->get("members", m.id))->state == sync_state::synced);
    CHECK(ok(a.r->get("members", m.id))->version == 1);
    ok(b.r->sync());
    REQUIRE(ok(b.r->get("members", m.id)));

    // Offline: a edits role, b edits notes (different fields), both edit joined (same field).
    ok(a.r->patch("members", m.id, {{"role", "phó bí thư"}, {"joined", "1999-02-03"}}));
    ok(b.r->patch("members", m.id, {{"notes", "Gương mẫu, nói đi đôi với làm"}, {"joined", "2000-01-01"}}));
    ok(a.r->sync());
    auto rb = ok(b.r->sync());
    CHECK(rb.conflicts == 1);  // joined collides: review policy keeps the head
    auto mb = ok(b.r->get("members", m.id));
    CHECK(mb->state == sync_state::conflict);
    REQUIRE(mb->conflict_id);
    CHECK(mb->held["notes"] == "Gương mẫu, nói đi đôi với làm");  // nothing lost
    CHECK(mb->data["role"] == "phó bí thư");                        // the head, pulled
    const auto open = open_conflicts(server);
    REQUIRE(open.size() == 1);
    CHECK(open[0].incoming["joined"] == "2000-01-01");

    // A field only b changes merges cleanly against the newer head.
    ok(a.r->patch("members", m.id, {{"role", "bí thư"}}));
    ok(b.r->patch("members", m.id, {{"notes", "Đã sửa"}}));
    ok(a.r->sync());
    auto rb2 = ok(b.r->sync());
    CHECK(rb2.merged == 1);
    auto final_b = ok(b.r->get("members", m.id));
    CHECK(final_b->data["role"] == "bí thư");
    CHECK(final_b->data["notes"] == "Đã sửa");
    CHECK(final_b->state == sync_state::synced);
    ok(a.r->sync());
    require_converged(server.store(), *a.r, k_collections);
    require_converged(server.store(), *b.r, k_collections);
}

TEST_CASE("pulled changes never overwrite a pending local edit", "[client][e2e][sync]") {
    live_server server;
    temp_dir dir;
    auto a = make_device(server, dir, "a");
    edit_during_send during;
    auto b = make_device(server, dir, "b", during.hook());
    const auto id = ok(a.r->put("members", member(2), {.id = "", .unit_id = "ap-2"})).id;
    ok(a.r->sync());
    ok(b.r->sync());
    ok(a.r->patch("members", id, {{"role", "từ a"}}));
    ok(a.r->sync());

    // b's edit lands while its pull-only request is on the wire, so the page that brings a's
    // newer version is committed on top of a pending edit.
    during.arm([&] { REQUIRE(b.r->patch("members", id, {{"notes", "từ b"}})); });
    auto pull = ok(b.r->sync());
    CHECK(pull.pulled == 1);
    auto before = ok(b.r->get("members", id));
    CHECK(before->data["notes"] == "từ b");      // the pending edit stays
    CHECK(before->data["role"] == "đảng viên");  // the local copy is not replaced by a's version
    CHECK(before->state == sync_state::pending);
    CHECK(before->version == 2);                 // but the server copy moved on

    auto rep = ok(b.r->sync());                  // base_version 1 against head 2: merged
    CHECK(rep.merged == 1);
    auto after = ok(b.r->get("members", id));
    CHECK(after->data["notes"] == "từ b");
    CHECK(after->data["role"] == "từ a");
    CHECK(after->version == 3);
    CHECK(after->state == sync_state::synced);
}

TEST_CASE("edits of one record coalesce and an edit made during a sync is not lost", "[client][e2e][sync][outbox]") {
    live_server server;
    temp_dir dir;
    auto& st = server.store();
    edit_during_send during;
    auto a = make_device(server, dir, "a", during.hook());
    auto b = make_device(server, dir, "b");
    const auto id = ok(a.r->put("members", member(3), {.id = "", .unit_id = "ap-1"})).id;
    ok(a.r->patch("members", id, {{"role", "một"}}));
    ok(a.r->patch("members", id, {{"role", "hai"}}));
    CHECK(ok(a.r->pending_count()) == 1);
    auto rep = ok(a.r->sync());
    CHECK(rep.pushed == 1);
    CHECK(history_size(st, "members", id) == 1);
    CHECK(store_head(st, "members", id).data["role"] == "hai");

    // b changes notes so that a's next change is merged on the server; a edits role again
    // while that change is on the wire.
    ok(b.r->sync());
    ok(b.r->patch("members", id, {{"notes", "ghi chú của b"}}));
    ok(b.r->sync());
    ok(a.r->patch("members", id, {{"role", "ba"}}));
    // The edit runs when the request is about to go out: the change-set is frozen by then.
    during.arm([&] { REQUIRE(a.r->patch("members", id, {{"role", "bốn"}, {"joined", "2014-06-01"}})); });
    auto rep2 = ok(a.r->sync());
    CHECK(rep2.merged == 1);
    CHECK(ok(a.r->pending_count()) == 1);           // the edit made during the sync waits
    CHECK(ok(a.r->get("members", id))->data["role"] == "bốn");
    auto rep3 = ok(a.r->sync());
    CHECK(rep3.applied == 1);
    const auto head = store_head(st, "members", id).data;
    CHECK(head["role"] == "bốn");
    CHECK(head["joined"] == "2014-06-01");
    CHECK(head["notes"] == "ghi chú của b");       // b's field survived a's later edit
    ok(b.r->sync());
    require_converged(st, *a.r, k_collections);
    require_converged(st, *b.r, k_collections);
}

TEST_CASE("a rejected change is reported, kept, never retried, and does not block the batch", "[client][e2e][sync]") {
    live_server server;
    temp_dir dir;
    auto t = std::make_shared<fault_transport>(nullptr);  // counts the requests, passes them all
    client::replica_options o;
    o.path = dir.file("a.db");
    o.transport_override = t;
    o.schema = nullptr;  // let the server decide
    auto r = ok(client::replica::open(o));
    ok(r->configure(server.url(), server.add_device("Máy a")));
    ok(r->put("members", member(1), {.id = "good-1", .unit_id = "u"}));
    ok(r->put("members", {{"cell", "Chi bộ ấp 2"}}, {.id = "bad-1", .unit_id = "u"}));  // no name
    ok(r->put("members", member(2), {.id = "good-2", .unit_id = "u"}));
    auto rep = ok(r->sync());
    CHECK(rep.applied == 2);
    CHECK(rep.rejected == 1);
    auto bad = ok(r->get("members", "bad-1"));
    CHECK(bad->state == sync_state::rejected);
    REQUIRE(bad->reason);
    CHECK(bad->reason->code == protocol::errc::schema_violation);
    CHECK(bad->held["cell"] == "Chi bộ ấp 2");
    CHECK(ok(r->pending_count()) == 0);
    const int before = t->calls;
    auto rep2 = ok(r->sync());
    CHECK(rep2.pushed == 0);
    CHECK(t->calls == before + 1);  // one pull, no resend of the rejected change
    auto st = ok(r->status());
    CHECK(st.rejected == 1);
    auto unsettled = ok(r->list({.state = sync_state::rejected}));  // every collection
    REQUIRE(unsettled.size() == 1);
    CHECK(unsettled[0].id == "bad-1");
    CHECK(ok(r->list({.state = sync_state::conflict})).empty());
}

TEST_CASE("a sync cut after any local transaction resumes with nothing lost or doubled", "[client][e2e][sync][crash]") {
    // The cut is the replica's own after-commit seam: the sync stops after local transaction
    // `cut`, the replica is destroyed as a killed process would leave it and reopened.
    // Reference run without cuts: how many local transactions does the scenario take?
    auto scenario = [](client::replica& r, int round) {
        for (int i = 0; i < 7; ++i)
            ok(r.put("members", member(static_cast<std::size_t>(i + 10 * round)),
                     {.id = "m-" + std::to_string(i), .unit_id = "u"}));
        ok(r.remove("members", "m-6"));
    };
    const client::sync_tuning small{.push_batch_size = 2, .pull_page_limit = 3};
    std::int64_t total_commits = 0;
    {
        live_server server;
        temp_dir dir;
        auto a = make_device(server, dir, "a", {}, small);
        client::replica_test_access::set_after_commit(*a.r, [&](std::int64_t n) {
            total_commits = n;
            return true;
        });
        scenario(*a.r, 0);
        ok(a.r->sync());
    }
    REQUIRE(total_commits >= 6);

    for (std::int64_t cut = 1; cut <= total_commits; ++cut) {
        DYNAMIC_SECTION("cut after local transaction " << cut) {
            live_server server;
            temp_dir dir;
            const auto token = server.add_device("Máy a");  // the same device before and after the cut
            {
                auto a = make_device(server, dir, "a", {}, small, token);
                scenario(*a.r, 0);
                client::replica_test_access::set_after_commit(*a.r, [&](std::int64_t n) { return n < cut; });
                auto r = a.r->sync();
                REQUIRE_FALSE(r);
                CHECK(r.err().code == client::make_error_code(errc::cancelled));
            }  // the replica object is destroyed here, as a killed process would leave it
            auto a = make_device(server, dir, "a", {}, small, token);
            ok(a.r->sync());
            auto& st = server.store();
            CHECK(store_writes(st) == 6);  // six creates, the delete of an unsent record cancelled out
            for (int i = 0; i < 6; ++i) CHECK(history_size(st, "members", "m-" + std::to_string(i)) == 1);
            require_converged(st, *a.r, k_collections);
        }
    }
}

TEST_CASE("three replicas edit offline, sync in several orders and converge", "[client][e2e][sync][converge]") {
    live_server server;
    temp_dir dir;
    auto& st = server.store();
    std::vector<device> devs;
    for (const char* n : {"a", "b", "c"}) devs.push_back(make_device(server, dir, n));
    // Shared starting records.
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) ids.push_back(ok(devs[0].r->put("members", member(static_cast<std::size_t>(i)), {.id = "", .unit_id = "u"})).id);
    for (auto& d : devs) ok(d.r->sync());

    // Offline edits: creates, same-field and different-field edits, deletes.
    ok(devs[0].r->patch("members", ids[0], {{"role", "a sửa"}}));
    ok(devs[1].r->patch("members", ids[0], {{"notes", "b ghi"}}));          // merges with a
    ok(devs[0].r->patch("members", ids[1], {{"role", "a"}}));
    ok(devs[1].r->patch("members", ids[1], {{"role", "b"}}));                // conflicts with a
    ok(devs[2].r->remove("members", ids[2]));
    ok(devs[0].r->patch("members", ids[2], {{"notes", "a sửa sau khi c xóa"}}));  // edit vs delete: conflict
    ok(devs[2].r->patch("members", ids[3], {{"joined", "2012-12-12"}}));
    ok(devs[1].r->remove("members", ids[4]));
    for (auto& d : devs) ok(d.r->put("registrations", registration(ids[5], d.name[0] - 'a'), {.id = "", .unit_id = "u"}));

    std::int64_t conflicts = 0;
    for (int order : {0, 2, 1}) conflicts += ok(devs[static_cast<std::size_t>(order)].r->sync()).conflicts;
    for (int order : {1, 0, 2}) conflicts += ok(devs[static_cast<std::size_t>(order)].r->sync()).conflicts;
    // a syncs first: ids[1] (b's role) and ids[2] (c's delete after a's edit) conflict.
    CHECK(conflicts == 2);
    CHECK(open_conflicts(server).size() == 2);
    for (auto& d : devs) require_converged(st, *d.r, k_collections);
    CHECK(store_head(st, "members", ids[0]).data["role"] == "a sửa");
    CHECK(store_head(st, "members", ids[0]).data["notes"] == "b ghi");
    CHECK(store_head(st, "members", ids[4]).deleted);
    CHECK(ok(devs[0].r->list({.collection = "registrations"})).size() == 3);
}

TEST_CASE("edits from another thread while syncs run are all delivered", "[client][e2e][sync][threads]") {
    live_server server;
    temp_dir dir;
    auto a = make_device(server, dir, "a", {}, client::sync_tuning{.push_batch_size = 4, .pull_page_limit = 3});
    std::vector<std::string> ids;
    for (int i = 0; i < 8; ++i) ids.push_back(ok(a.r->put("members", member(static_cast<std::size_t>(i)), {.id = "", .unit_id = "u"})).id);
    ok(a.r->sync());

    std::atomic<bool> editing{true};
    std::map<std::string, int> last;  // written only by the editor thread
    std::string editor_error;         // Catch2 assertions are not thread-safe: report after join
    std::thread editor([&] {
        for (int n = 0; n < 400; ++n) {
            const auto& id = ids[static_cast<std::size_t>(n) % ids.size()];
            auto r = a.r->patch("members", id, {{"notes", "lần sửa " + std::to_string(n)}});
            if (!r) {
                editor_error = r.err().message;
                break;
            }
            last[id] = n;
        }
        editing = false;
    });
    int syncs = 0;
    while (editing || syncs < 3) {
        auto r = a.r->sync();
        if (!r) FAIL(r.err().message);
        ++syncs;
    }
    editor.join();
    REQUIRE(editor_error.empty());
    ok(a.r->sync());
    CHECK(ok(a.r->pending_count()) == 0);
    for (const auto& [id, n] : last) {
        INFO(id);
        CHECK(store_head(server.store(), "members", id).data["notes"] == "lần sửa " + std::to_string(n));
        CHECK(ok(a.r->get("members", id))->data["notes"] == "lần sửa " + std::to_string(n));
    }
    require_converged(server.store(), *a.r, k_collections);
}

TEST_CASE("change-sets are bounded in bytes as well as in changes", "[client][e2e][sync][outbox]") {
    live_server server;
    temp_dir dir;
    std::vector<std::size_t> sizes;
    auto a = make_device(server, dir, "a", [&](const client::http_request& req) {
        sizes.push_back(json::parse(req.body).value("changes", json::array()).size());
    }, client::sync_tuning{.push_batch_bytes = 7000});
    const std::string long_note(3000, 'x');
    for (std::size_t i = 0; i < 5; ++i) {
        auto m = member(i);
        m["notes"] = "Ghi chú dài: " + long_note;
        ok(a.r->put("members", m, {.id = "", .unit_id = "u"}));
    }
    std::vector<client::replica::put_item> big{{"members", member(9), {.id = "huge", .unit_id = "u"}}};
    big[0].data["notes"] = std::string(9000, 'y');  // alone over the budget: goes by itself
    ok(a.r->put_many(big));
    auto rep = ok(a.r->sync());
    CHECK(rep.applied == 6);
    REQUIRE(sizes.size() >= 4);
    CHECK(sizes[0] == 2);
    CHECK(sizes[1] == 2);
    CHECK(sizes[2] == 1);
    CHECK(sizes[3] == 1);
}

TEST_CASE("records that left the device's scope are removed, unless an edit of them is pending",
          "[client][e2e][sync][scope]") {
    live_server server;
    temp_dir dir;
    auto& st = server.store();
    put_cells(st);
    auto commune = make_device(server, dir, "xa", {}, {},
                               server.add_device("Máy Đảng ủy xã", "binh-hoa", srv::device_role::field));
    edit_during_send during;
    auto a = make_device(server, dir, "a", during.hook(), {},
                         server.add_device("Máy chi bộ ấp 1", "ap-1", srv::device_role::field));
    ok(a.r->put("members", member(1), {.id = "moved", .unit_id = "ap-1"}));
    ok(a.r->put("members", member(2), {.id = "moved-but-edited", .unit_id = "ap-1"}));
    ok(a.r->put("members", member(3), {.id = "stays", .unit_id = "ap-1"}));
    ok(a.r->sync());
    // The commune moves two of them to ấp 2, and creates a third in ấp 1 that it moves to ấp 2
    // before a ever pulls it: the next answer drops all three from a's scope.
    ok(commune.r->sync());
    ok(commune.r->put("members", member(4), {.id = "never-had-it", .unit_id = "ap-1"}));
    ok(commune.r->sync());
    for (const auto& [id, i] : {std::pair{"moved", 1}, std::pair{"moved-but-edited", 2}, std::pair{"never-had-it", 4}})
        ok(commune.r->put("members", member(static_cast<std::size_t>(i)), {.id = id, .unit_id = "ap-2"}));
    ok(commune.r->sync());
    // Pending while the answer that drops it is committed.
    during.arm([&] { REQUIRE(a.r->patch("members", "moved-but-edited", {{"role", "vẫn sửa"}})); });
    auto rep = ok(a.r->sync());
    CHECK(rep.dropped == 1);
    CHECK_FALSE(ok(a.r->get("members", "moved")));
    CHECK(ok(a.r->get("members", "stays")));
    auto kept = ok(a.r->get("members", "moved-but-edited"));
    REQUIRE(kept);
    CHECK(kept->state == sync_state::pending);
    CHECK(kept->data["role"] == "vẫn sửa");
}
