// Replicas against the real server on an ephemeral loopback port (issue 3, "Done when").

#include "e2e_support.hpp"
#include "replica_internal.hpp"

#include <fieldsync/client/tuning.hpp>

using namespace fieldsync;
using namespace fieldsync::test;
using client::errc;
using client::sync_state;

TEST_CASE("three replicas edit offline, sync in several orders and converge to the server's heads",
          "[client][e2e][converge]") {
    live_server server;
    temp_dir dir;
    auto a = live_replica(server, dir, "a");
    auto b = live_replica(server, dir, "b");
    auto c = live_replica(server, dir, "c");

    std::vector<std::string> ids;
    for (std::size_t i = 0; i < 6; ++i) ids.push_back(ok(a->put("members", member(i), {.id = "", .unit_id = "xa-binh-hoa"})).id);
    for (auto* r : {a.get(), b.get(), c.get()}) ok(r->sync());
    for (auto* r : {a.get(), b.get(), c.get()}) CHECK(ok(r->list({.collection = "members"})).size() == 6);

    // Offline edits of every kind.
    ok(a->patch("members", ids[0], {{"role", "phó bí thư"}}));
    ok(b->patch("members", ids[0], {{"notes", "Gương mẫu, nói đi đôi với làm"}}));  // different field: merges
    ok(a->patch("members", ids[1], {{"role", "bí thư chi bộ"}}));
    ok(b->patch("members", ids[1], {{"role", "chi ủy viên"}}));                    // same field: conflict
    ok(c->remove("members", ids[2]));
    ok(a->patch("members", ids[2], {{"notes", "sửa sau khi bị xóa"}}));             // edit vs delete: conflict
    ok(c->patch("members", ids[3], {{"joined", "2012-12-12"}}));
    ok(b->patch("members", ids[3], {{"joined", "2012-12-12"}}));                     // same value: merges
    ok(b->remove("members", ids[4]));
    const std::string created_by_c = ok(c->put("members", member(40, "Chi bộ Tòa án huyện"), {.id = "", .unit_id = "xa-binh-hoa"})).id;
    for (auto* r : {a.get(), b.get(), c.get()})
        ok(r->put("registrations", registration(ids[5], r == a.get() ? 0 : r == b.get() ? 1 : 2), {.id = "", .unit_id = "xa-binh-hoa"}));

    // Order: c, a, b, then b, c, a.
    std::int64_t conflicts = 0, merged = 0;
    for (auto* r : {c.get(), a.get(), b.get(), b.get(), c.get(), a.get()}) {
        auto rep = ok(r->sync());
        conflicts += rep.conflicts;
        merged += rep.merged;
    }
    // c deleted ids[2] first, so a's edit of it conflicts; a set ids[1].role first, so b's
    // conflicts. b's notes on ids[0] merge with a's role; b's joined equals c's.
    CHECK(conflicts == 2);
    CHECK(merged == 2);
    auto open = server.store().conflicts("open", 100, 0);
    REQUIRE(open);
    REQUIRE(open->size() == 2);
    for (const auto& cf : *open) {
        if (cf.record_id == ids[1]) {
            CHECK(cf.head["role"] == "bí thư chi bộ");
            CHECK(cf.incoming["role"] == "chi ủy viên");  // both texts kept
        } else {
            CHECK(cf.record_id == ids[2]);
            CHECK(cf.head_deleted);
            CHECK(cf.incoming["notes"] == "sửa sau khi bị xóa");
        }
    }
    for (auto* r : {a.get(), b.get(), c.get()}) require_converged(server.store(), *r, k_collections);

    auto m0 = ok(c->get("members", ids[0]));
    CHECK(m0->data["role"] == "phó bí thư");
    CHECK(m0->data["notes"] == "Gương mẫu, nói đi đôi với làm");
    auto m1 = ok(b->get("members", ids[1]));
    CHECK(m1->state == sync_state::conflict);
    CHECK(m1->held["role"] == "chi ủy viên");
    CHECK(m1->data["role"] == "bí thư chi bộ");
    CHECK(ok(a->get("members", ids[2]))->deleted);
    CHECK(ok(a->get("members", ids[2]))->state == sync_state::conflict);
    CHECK(ok(a->get("members", created_by_c)));
    CHECK(ok(b->list({.collection = "registrations"})).size() == 3);
    CHECK(ok(b->list({.collection = "members", .field = "cell", .value = "Chi bộ Tòa án huyện"})).size() == 1);
}

namespace {

// The scenario each cut test runs: a synced base, then offline creates, edits and a delete.
struct cut_scenario {
    std::vector<std::string> base_ids;
    void prepare(client::replica& r) {
        for (std::size_t i = 0; i < 4; ++i)
            base_ids.push_back(ok(r.put("members", member(i), {.id = "", .unit_id = "xa-binh-hoa"})).id);
        ok(r.sync());
    }
    // Another device writes meanwhile, so that the pull after the push takes several pages.
    void others_write(live_server& server, temp_dir& dir) {
        auto other = live_replica(server, dir, "other");
        for (std::size_t i = 0; i < 10; ++i)
            ok(other->put("registrations", registration("m-" + std::to_string(i), i), {.id = "", .unit_id = "xa-binh-hoa"}));
        ok(other->sync());
    }
    void edit_offline(client::replica& r) {
        for (std::size_t i = 0; i < 5; ++i)
            ok(r.put("members", member(10 + i), {.id = "new-" + std::to_string(i), .unit_id = "xa-binh-hoa"}));
        ok(r.patch("members", base_ids[0], {{"role", "bí thư"}}));
        ok(r.patch("members", base_ids[1], {{"notes", "Việc hôm nay, không để ngày mai"}}));
        ok(r.remove("members", base_ids[2]));
    }
    // Every change applied exactly once.
    void verify(live_server& server, client::replica& r) {
        auto& st = server.store();
        for (std::size_t i = 0; i < 5; ++i) CHECK(history_size(st, "members", "new-" + std::to_string(i)) == 1);
        CHECK(history_size(st, "members", base_ids[0]) == 2);
        CHECK(history_size(st, "members", base_ids[1]) == 2);
        CHECK(history_size(st, "members", base_ids[2]) == 2);
        CHECK(history_size(st, "members", base_ids[3]) == 1);
        CHECK((*st.get("members", base_ids[1]))->data["notes"] == "Việc hôm nay, không để ngày mai");
        require_converged(st, r, k_collections);
    }
};

const client::sync_tuning k_small{.push_batch_size = 3, .pull_page_limit = 4};

}  // namespace

TEST_CASE("a sync cut at every step resumes with no lost and no duplicated change", "[client][e2e][cut]") {
    // How many requests does an uncut sync of the scenario make?
    int requests = 0;
    {
        live_server server;
        temp_dir dir;
        auto t = std::make_shared<fault_transport>(nullptr);
        auto r = live_replica(server, dir, "probe", t, {}, k_small);
        cut_scenario s;
        s.prepare(*r);
        s.others_write(server, dir);
        s.edit_offline(*r);
        const int before = t->calls;
        ok(r->sync());
        requests = t->calls - before;
    }
    REQUIRE(requests >= 5);  // 3 pushes of up to 3 changes (each with a page of 4), then 2 pull-only pages

    for (int k = 1; k <= requests; ++k) {
        for (auto kind : {cut::drop_request, cut::drop_response, cut::redirect}) {
            DYNAMIC_SECTION((kind == cut::drop_request    ? "request "
                             : kind == cut::drop_response ? "response lost after the server handled request "
                                                          : "response cut mid-way for request ")
                            << k) {
                live_server server;
                truncating_proxy proxy(server.port());
                temp_dir dir;
                recording_seams seams;
                bool armed = false;
                int seen = 0;
                auto t = std::make_shared<fault_transport>([&](const client::http_request&, int) {
                    if (!armed) return cut{};
                    if (++seen != k) return cut{};
                    return kind == cut::redirect ? cut{cut::redirect, proxy.url()} : cut{kind};
                });
                auto r = live_replica(server, dir, "d", t, seams.make(), k_small);
                cut_scenario s;
                s.prepare(*r);
                s.others_write(server, dir);
                s.edit_offline(*r);
                armed = true;
                auto rep = ok(r->sync());  // the lost exchange is retried with the same ids
                CHECK(rep.retries == 1);
                CHECK(seams.waits.size() == 1);
                if (kind == cut::drop_response) CHECK(t->responses_dropped == 1);
                if (kind == cut::redirect) CHECK(proxy.cut_responses == 1);
                s.verify(server, *r);
            }
        }
    }
}

TEST_CASE("a replica destroyed between two local transactions of a sync resumes after reopening",
          "[client][e2e][cut][crash]") {
    std::int64_t commits = 0;
    {
        live_server server;
        temp_dir dir;
        auto r = live_replica(server, dir, "probe", nullptr, {}, k_small);
        cut_scenario s;
        s.prepare(*r);
        s.others_write(server, dir);
        s.edit_offline(*r);
        client::replica_test_access::set_after_commit(*r, [&](std::int64_t n) {
            commits = n;
            return true;
        });
        ok(r->sync());
    }
    REQUIRE(commits >= 6);  // 3 batches written before sending + their answers + pull pages
    for (std::int64_t k = 1; k <= commits; ++k) {
        DYNAMIC_SECTION("killed after local transaction " << k) {
            live_server server;
            temp_dir dir;
            const auto token = server.add_device("Máy d");
            cut_scenario s;
            {
                auto r = live_replica(server, dir, "d", nullptr, {}, k_small, token);
                s.prepare(*r);
                s.others_write(server, dir);
                s.edit_offline(*r);
                client::replica_test_access::set_after_commit(*r, [&](std::int64_t n) { return n < k; });
                auto cut_sync = r->sync();
                REQUIRE_FALSE(cut_sync);
                CHECK(cut_sync.err().code == client::make_error_code(errc::cancelled));
            }  // destroyed: nothing after transaction k was written
            auto r = open_replica(dir.file("d.db"), nullptr, {}, k_small);
            ok(r->sync());
            s.verify(server, *r);
        }
    }
}

TEST_CASE("a server that is down, slow or answering 5xx is retried with backoff", "[client][e2e][retry]") {
    live_server server;
    temp_dir dir;
    fixed_status_endpoint unavailable(503);
    fixed_status_endpoint silent(0);
    std::string down_url;
    {
        fixed_status_endpoint closed(503);
        down_url = closed.url();
    }  // nothing listens there any more: connection refused

    for (const auto& [name, bad_url, code] :
         {std::tuple{std::string("down"), down_url, errc::network},
          std::tuple{std::string("slow"), silent.url(), errc::timeout},
          std::tuple{std::string("5xx"), unavailable.url(), errc::server_unavailable}}) {
        DYNAMIC_SECTION("server " << name) {
            recording_seams seams;
            std::vector<client::error> seen;
            int bad_left = 2;
            auto t = std::make_shared<fault_transport>([&, url = bad_url](const client::http_request&, int) {
                return bad_left-- > 0 ? cut{cut::redirect, url} : cut{};
            });
            auto r = live_replica(server, dir, "r-" + name, t, seams.make(),
                                  client::sync_tuning{.request_timeout = std::chrono::milliseconds(300)});
            const auto id = ok(r->put("members", member(7), {.id = "", .unit_id = "xa-binh-hoa"})).id;
            auto rep = ok(r->sync([&](const client::sync_progress& p) {
                if (p.phase == client::sync_phase::retry_wait && p.last_error) seen.push_back(*p.last_error);
                return true;
            }));
            CHECK(rep.retries == 2);
            CHECK(rep.applied == 1);
            REQUIRE(seams.waits.size() == 2);
            REQUIRE(seen.size() == 2);
            for (const auto& e : seen) CHECK(e.code == client::make_error_code(code));
            for (std::size_t k = 0; k < 2; ++k) {
                const auto full = client::tuning::backoff_base.count() << k;
                CHECK(seams.waits[k].count() >= full / 2);
                CHECK(seams.waits[k].count() < full);
            }
            CHECK(history_size(server.store(), "members", id) == 1);
        }
    }
}

TEST_CASE("401, 403 and rejected changes are reported and not retried", "[client][e2e][retry]") {
    live_server server;
    temp_dir dir;
    recording_seams seams;

    SECTION("401: unknown token") {
        auto t = std::make_shared<fault_transport>(nullptr);
        auto r = live_replica(server, dir, "x", t, seams.make(), {}, "not-a-token");
        ok(r->put("members", member(1), {.id = "", .unit_id = "xa-binh-hoa"}));
        auto res = r->sync();
        REQUIRE_FALSE(res);
        CHECK(res.err().code == client::make_error_code(errc::unauthorized));
        CHECK(t->calls == 1);
        CHECK(seams.waits.empty());
        CHECK(ok(r->pending_count()) == 1);  // kept for when the token is fixed
        ok(r->configure(server.url(), server.add_device("Máy x mới")));
        ok(r->sync());
        CHECK(ok(r->pending_count()) == 0);
    }
    SECTION("403") {
        fixed_status_endpoint forbidden(403);
        auto t = std::make_shared<fault_transport>(
            [&](const client::http_request&, int) { return cut{cut::redirect, forbidden.url()}; });
        auto r = live_replica(server, dir, "y", t, seams.make());
        ok(r->put("members", member(2), {.id = "", .unit_id = "xa-binh-hoa"}));
        auto res = r->sync();
        REQUIRE_FALSE(res);
        CHECK(res.err().code == client::make_error_code(errc::forbidden));
        CHECK(forbidden.requests == 1);
        CHECK(seams.waits.empty());
    }
    SECTION("rejected changes") {
        std::vector<std::size_t> pushed;
        auto t = std::make_shared<fault_transport>([&](const client::http_request& req, int) {
            pushed.push_back(json::parse(req.body).value("changes", json::array()).size());
            return cut{};
        });
        client::replica_options o;
        o.path = dir.file("z.db");
        o.transport_override = t;
        o.schema = nullptr;  // no local check: the server refuses
        o.seams = seams.make();
        auto r = ok(client::replica::open(o));
        ok(r->configure(server.url(), server.add_device("Máy z")));
        ok(r->put("members", member(3), {.id = "tot", .unit_id = "xa-binh-hoa"}));
        ok(r->put("members", {{"cell", "Chi bộ ấp 5"}, {"notes", "thiếu tên"}}, {.id = "thieu-ten", .unit_id = "xa-binh-hoa"}));
        ok(r->put("khong_co", {{"a", 1}}, {.id = "la", .unit_id = "xa-binh-hoa"}));
        auto rep = ok(r->sync());
        CHECK(rep.applied == 1);
        CHECK(rep.rejected == 2);
        auto bad = ok(r->get("members", "thieu-ten"));
        CHECK(bad->state == sync_state::rejected);
        REQUIRE(bad->reason);
        CHECK(bad->reason->code == protocol::errc::schema_violation);
        CHECK(bad->held["notes"] == "thiếu tên");
        CHECK(ok(r->get("khong_co", "la"))->reason->code == protocol::errc::unknown_collection);
        CHECK(seams.waits.empty());
        pushed.clear();
        ok(r->sync());
        for (auto n : pushed) CHECK(n == 0);  // never resent
        CHECK(ok(r->status()).rejected == 2);
    }
}

TEST_CASE("an edit made while its record's change is on the wire is sent next, on top of the merged head",
          "[client][e2e][outbox]") {
    live_server server;
    temp_dir dir;
    auto b = live_replica(server, dir, "b");
    client::replica* ra = nullptr;
    std::string id;
    bool edit_now = false;
    auto t = std::make_shared<fault_transport>([&](const client::http_request&, int) {
        if (edit_now) {  // the change-set is frozen and about to be sent: edit the same record
            edit_now = false;
            REQUIRE(ra->patch("members", id, {{"role", "bí thư"}, {"joined", "2014-06-01"}}));
        }
        return cut{};
    });
    auto a = live_replica(server, dir, "a", t);
    ra = a.get();
    id = ok(a->put("members", member(3), {.id = "", .unit_id = "xa-binh-hoa"})).id;
    ok(a->sync());
    ok(b->sync());
    ok(b->patch("members", id, {{"notes", "ghi chú của b"}}));
    ok(b->sync());                                   // head 2 has b's notes

    ok(a->patch("members", id, {{"role", "phó bí thư"}}));  // base 1: will be merged into 3
    edit_now = true;
    auto first = ok(a->sync());
    CHECK(first.merged == 1);
    CHECK(ok(a->pending_count()) == 1);              // the edit made during the sync waits
    auto mid = ok(a->get("members", id));
    CHECK(mid->state == sync_state::pending);
    CHECK(mid->data["role"] == "bí thư");            // the local copy keeps the newest edit
    CHECK(mid->version == 3);

    auto second = ok(a->sync());
    CHECK(second.applied == 1);
    auto head = *server.store().get("members", id);
    REQUIRE(head);
    CHECK(head->version == 4);
    CHECK(head->data["role"] == "bí thư");
    CHECK(head->data["joined"] == "2014-06-01");
    CHECK(head->data["notes"] == "ghi chú của b");   // b's field survives a's later edit
    ok(b->sync());
    require_converged(server.store(), *a, k_collections);
    require_converged(server.store(), *b, k_collections);
}

TEST_CASE("device scopes: a record moved to another cell leaves the old cell's replica, writes outside are refused",
          "[client][e2e][scope]") {
    live_server server;
    temp_dir dir;
    auto& st = server.store();
    put_cells(st);
    auto token = [&](const std::string& name, const std::string& unit) {
        return server.add_device(name, unit, srv::device_role::field);
    };
    auto cell1 = live_replica(server, dir, "ap1", nullptr, {}, {}, token("Máy chi bộ ấp 1", "ap-1"));
    auto cell2 = live_replica(server, dir, "ap2", nullptr, {}, {}, token("Máy chi bộ ấp 2", "ap-2"));
    auto commune = live_replica(server, dir, "xa", nullptr, {}, {}, token("Máy Đảng ủy xã", "binh-hoa"));

    ok(cell1->put("members", member(1, "ap-1"), {.id = "m-1", .unit_id = "ap-1"}));
    ok(cell1->put("members", member(2, "ap-1"), {.id = "m-2", .unit_id = "ap-1"}));
    ok(cell2->put("members", member(3, "ap-2"), {.id = "m-3", .unit_id = "ap-2"}));
    for (auto* r : {cell1.get(), cell2.get(), commune.get()}) ok(r->sync());
    CHECK(ok(cell1->list({.collection = "members"})).size() == 2);  // its own cell only
    CHECK(ok(cell2->list({.collection = "members"})).size() == 1);
    CHECK(ok(commune->list({.collection = "members"})).size() == 3);

    // The commune moves m-1 to ấp 2.
    auto moved = member(1, "ap-2");
    ok(commune->put("members", moved, {.id = "m-1", .unit_id = "ap-2"}));
    ok(commune->sync());
    auto r1 = ok(cell1->sync());
    CHECK(r1.dropped == 1);
    CHECK_FALSE(ok(cell1->get("members", "m-1")));
    CHECK(ok(cell1->get("members", "m-2")));
    ok(cell2->sync());
    auto in2 = ok(cell2->get("members", "m-1"));
    REQUIRE(in2);
    CHECK(in2->unit_id == "ap-2");

    // ấp 1 writing into ấp 2 is refused and kept, not retried.
    ok(cell1->put("members", member(4, "ap-2"), {.id = "m-4", .unit_id = "ap-2"}));
    auto r2 = ok(cell1->sync());
    CHECK(r2.rejected == 1);
    auto refused = ok(cell1->get("members", "m-4"));
    REQUIRE(refused);
    CHECK(refused->state == sync_state::rejected);
    REQUIRE(refused->reason);
    CHECK(refused->reason->code == protocol::errc::out_of_scope);
    CHECK(refused->held["name"] == member(4, "ap-2")["name"]);
    CHECK(ok(cell1->sync()).pushed == 0);
}

TEST_CASE("a device moved to another unit lets its old scope go and receives the new one, keeping its edits",
          "[client][e2e][scope]") {
    live_server server;
    temp_dir dir;
    auto& st = server.store();
    put_cells(st);
    auto made = st.add_device("Máy của đồng chí bí thư", "ap-1", srv::device_role::field);
    REQUIRE(made);
    auto other = st.add_device("Máy chi bộ ấp 2", "ap-2", srv::device_role::field);
    REQUIRE(other);
    auto phone = live_replica(server, dir, "phone", nullptr, {}, {}, made->second);
    auto cell2 = live_replica(server, dir, "ap2", nullptr, {}, {}, other->second);

    ok(phone->put("members", member(1, "ap-1"), {.id = "m-1", .unit_id = "ap-1"}));
    ok(phone->put("members", member(2, "ap-1"), {.id = "m-2", .unit_id = "ap-1"}));
    ok(cell2->put("members", member(3, "ap-2"), {.id = "m-3", .unit_id = "ap-2"}));
    ok(phone->sync());
    ok(cell2->sync());
    CHECK(ok(phone->list({.collection = "members"})).size() == 2);

    // An edit waits offline while the secretary is moved to ấp 2.
    auto edited = member(2, "ap-1");
    edited["notes"] = "Việc hôm nay, không để ngày mai";
    ok(phone->put("members", edited, {.id = "m-2", .unit_id = "ap-1"}));
    REQUIRE(st.move_device(made->first.id, "ap-2").has_value());

    const auto report = ok(phone->sync());
    // m-1 (ấp 1, synced) goes; m-3 (ấp 2) arrives; the pending edit of m-2 is not silently
    // lost: it was pushed, refused as out of scope, and is kept with its reason.
    CHECK_FALSE(ok(phone->get("members", "m-1")));
    CHECK(ok(phone->get("members", "m-3")));
    auto kept = ok(phone->get("members", "m-2"));
    REQUIRE(kept);
    CHECK(kept->state == sync_state::rejected);
    REQUIRE(kept->reason);
    CHECK(kept->reason->code == protocol::errc::out_of_scope);
    CHECK(kept->held["notes"] == "Việc hôm nay, không để ngày mai");
    CHECK(report.dropped >= 1);
    // The next sync is quiet: the cursor is of the new scope.
    const auto again = ok(phone->sync());
    CHECK(again.pulled == 0);
    CHECK(again.dropped == 0);
}
