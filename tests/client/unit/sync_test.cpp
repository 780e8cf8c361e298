// The sync engine against the in-memory fake server: convergence, the merge rule's outcomes,
// idempotent retries, cuts at every step, backoff, permanent errors, edits during a sync.

#include "fake_server.hpp"
#include "helpers.hpp"
#include "replica_internal.hpp"

#include <fieldsync/client/tuning.hpp>

#include <atomic>
#include <map>
#include <thread>

using namespace fieldsync;
using namespace fieldsync::test;
using client::errc;
using client::sync_state;

namespace {

struct device {
    std::unique_ptr<client::replica> r;
    std::string name;
};

device make_device(fake_server& s, temp_dir& dir, const std::string& name, recording_seams* seams = nullptr,
                   std::function<fault(const client::http_request&, int)> hook = {}, client::sync_tuning tuning = {}) {
    device d{open_replica(dir.file(name + ".db"), s.connect(name, std::move(hook)), seams ? seams->make() : client::sync_seams{},
                          tuning),
             name};
    ok(d.r->configure("http://fake", "token-" + name));
    return d;
}

// Every record of the replica equals the server's head.
void require_converged(fake_server& s, client::replica& r) {
    const auto heads = s.all();
    std::size_t live = 0;
    for (const auto& [key, h] : heads) {
        auto rec = ok(r.get(key.first, key.second));
        INFO(key.first << "/" << key.second);
        REQUIRE(rec);
        CHECK(rec->version == static_cast<std::int64_t>(h.history.size()));
        CHECK(rec->deleted == h.history.back().deleted);
        if (!h.history.back().deleted) {
            CHECK(rec->data == h.history.back().data);
            ++live;
        }
        CHECK(rec->state != sync_state::pending);
    }
    CHECK(ok(r.pending_count()) == 0);
    std::size_t local_live = 0;
    for (const auto& c : {"members", "registrations"}) local_live += ok(r.list({.collection = c})).size();
    CHECK(local_live == live);
}

}  // namespace

TEST_CASE("two replicas converge: different fields merge, the same field conflicts", "[client][sync][merge]") {
    fake_server s;
    temp_dir dir;
    auto a = make_device(s, dir, "a");
    auto b = make_device(s, dir, "b");

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
    REQUIRE(s.conflicts().size() == 1);
    CHECK(s.conflicts()[0].incoming.data["joined"] == "2000-01-01");

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
    require_converged(s, *a.r);
    require_converged(s, *b.r);
}

TEST_CASE("pulled changes never overwrite a pending local edit", "[client][sync]") {
    fake_server s;
    temp_dir dir;
    auto a = make_device(s, dir, "a");
    client::replica* rb = nullptr;
    std::string id;
    bool edit_in_flight = false;
    // b's edit lands while its pull-only request is on the wire, so the page that brings a's
    // newer version is committed on top of a pending edit.
    auto b = make_device(s, dir, "b", nullptr, [&](const client::http_request&, int) {
        if (edit_in_flight) {
            edit_in_flight = false;
            REQUIRE(rb->patch("members", id, {{"notes", "từ b"}}));
        }
        return fault{};
    });
    rb = b.r.get();
    id = ok(a.r->put("members", member(2), {.id = "", .unit_id = "ap-2"})).id;
    ok(a.r->sync());
    ok(b.r->sync());
    ok(a.r->patch("members", id, {{"role", "từ a"}}));
    ok(a.r->sync());

    edit_in_flight = true;
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

TEST_CASE("edits of one record coalesce and an edit made during a sync is not lost", "[client][sync][outbox]") {
    fake_server s;
    temp_dir dir;
    client::replica* ra = nullptr;
    std::string id;
    bool edit_on_send = false;
    // The hook runs when a request is about to go out: the change-set is frozen by then.
    auto a = make_device(s, dir, "a", nullptr, [&](const client::http_request&, int) {
        if (edit_on_send) {
            edit_on_send = false;
            REQUIRE(ra->patch("members", id, {{"role", "bốn"}, {"joined", "2014-06-01"}}));
        }
        return fault{};
    });
    ra = a.r.get();
    auto b = make_device(s, dir, "b");
    id = ok(a.r->put("members", member(3), {.id = "", .unit_id = "ap-1"})).id;
    ok(a.r->patch("members", id, {{"role", "một"}}));
    ok(a.r->patch("members", id, {{"role", "hai"}}));
    CHECK(ok(a.r->pending_count()) == 1);
    auto rep = ok(a.r->sync());
    CHECK(rep.pushed == 1);
    CHECK(s.head("members", id)->history.size() == 1);
    CHECK(s.head("members", id)->history.back().data["role"] == "hai");

    // b changes notes so that a's next change is merged on the server; a edits role again
    // while that change is on the wire.
    ok(b.r->sync());
    ok(b.r->patch("members", id, {{"notes", "ghi chú của b"}}));
    ok(b.r->sync());
    ok(a.r->patch("members", id, {{"role", "ba"}}));
    edit_on_send = true;
    auto rep2 = ok(a.r->sync());
    CHECK(rep2.merged == 1);
    CHECK(ok(a.r->pending_count()) == 1);           // the edit made during the sync waits
    CHECK(ok(a.r->get("members", id))->data["role"] == "bốn");
    auto rep3 = ok(a.r->sync());
    CHECK(rep3.applied == 1);
    const auto head = s.head("members", id)->history.back().data;
    CHECK(head["role"] == "bốn");
    CHECK(head["joined"] == "2014-06-01");
    CHECK(head["notes"] == "ghi chú của b");       // b's field survived a's later edit
    ok(b.r->sync());
    require_converged(s, *a.r);
    require_converged(s, *b.r);
}

TEST_CASE("a rejected change is reported, kept, never retried, and does not block the batch", "[client][sync]") {
    fake_server s;
    temp_dir dir;
    client::replica_options o;
    o.path = dir.file("a.db");
    o.transport_override = s.connect("a");
    o.schema = nullptr;  // let the server decide
    auto r = ok(client::replica::open(o));
    ok(r->configure("http://fake", "token-a"));
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
    const int before = s.handled;
    auto rep2 = ok(r->sync());
    CHECK(rep2.pushed == 0);
    CHECK(s.handled == before + 1);  // one pull, no resend of the rejected change
    auto st = ok(r->status());
    CHECK(st.rejected == 1);
    auto unsettled = ok(r->list({.state = sync_state::rejected}));  // every collection
    REQUIRE(unsettled.size() == 1);
    CHECK(unsettled[0].id == "bad-1");
    CHECK(ok(r->list({.state = sync_state::conflict})).empty());
}

TEST_CASE("transient failures are retried with capped exponential backoff and jitter", "[client][sync][retry]") {
    fake_server s;
    temp_dir dir;
    recording_seams seams;
    int failures = 3;
    auto a = make_device(s, dir, "a", &seams, [&](const client::http_request&, int) {
        if (failures-- > 0) return failures % 2 ? fault{fault::status, 503} : fault{fault::drop_request};
        return fault{};
    });
    ok(a.r->put("members", member(5), {.id = "", .unit_id = "u"}));
    auto rep = ok(a.r->sync());
    CHECK(rep.retries == 3);
    CHECK(rep.applied == 1);
    REQUIRE(seams.waits.size() == 3);
    // Equal jitter: wait k is in [base*2^k / 2, base*2^k).
    for (std::size_t k = 0; k < seams.waits.size(); ++k) {
        const auto full = client::tuning::backoff_base.count() << k;
        CHECK(seams.waits[k].count() >= full / 2);
        CHECK(seams.waits[k].count() < full);
    }
    CHECK(s.writes() == 1);
}

TEST_CASE("a server that stays down is given up after max_attempts and the next sync succeeds", "[client][sync][retry]") {
    fake_server s;
    temp_dir dir;
    recording_seams seams;
    bool down = true;
    auto a = make_device(s, dir, "a", &seams, [&](const client::http_request&, int) {
        return down ? fault{fault::status, 500} : fault{};
    }, client::sync_tuning{.backoff_base = std::chrono::milliseconds(1000), .backoff_cap = std::chrono::milliseconds(3000),
                           .max_attempts = 5});
    ok(a.r->put("members", member(6), {.id = "", .unit_id = "u"}));
    auto r = a.r->sync();
    REQUIRE_FALSE(r);
    CHECK(r.err().code == client::make_error_code(errc::server_unavailable));
    REQUIRE(seams.waits.size() == 4);
    CHECK(seams.waits[3].count() <= 3000);  // capped
    CHECK(seams.waits[3].count() >= 1500);
    CHECK(ok(a.r->pending_count()) == 1);
    down = false;
    ok(a.r->sync());
    CHECK(ok(a.r->pending_count()) == 0);
    CHECK(s.writes() == 1);
}

TEST_CASE("401 and 403 are reported at once, never retried", "[client][sync][retry]") {
    fake_server s;
    temp_dir dir;
    recording_seams seams;
    int calls = 0;
    auto a = make_device(s, dir, "a", &seams, [&](const client::http_request&, int) {
        ++calls;
        return fault{};
    });
    ok(a.r->configure("http://fake", "wrong-token"));
    ok(a.r->put("members", member(7), {.id = "", .unit_id = "u"}));
    auto r = a.r->sync();
    REQUIRE_FALSE(r);
    CHECK(r.err().code == client::make_error_code(errc::unauthorized));
    CHECK(calls == 1);
    CHECK(seams.waits.empty());

    auto b = make_device(s, dir, "b", &seams, [&](const client::http_request&, int) {
        ++calls;
        return fault{fault::status, 403};
    });
    ok(b.r->put("members", member(8), {.id = "", .unit_id = "u"}));
    calls = 0;
    auto r2 = b.r->sync();
    REQUIRE_FALSE(r2);
    CHECK(r2.err().code == client::make_error_code(errc::forbidden));
    CHECK(calls == 1);
    CHECK(seams.waits.empty());
    CHECK(ok(b.r->pending_count()) == 1);
}

TEST_CASE("a lost response is resent with the same ids and applied once", "[client][sync][idempotency]") {
    fake_server s;
    temp_dir dir;
    recording_seams seams;
    std::vector<std::string> bodies;
    auto a = make_device(s, dir, "a", &seams, [&](const client::http_request& req, int n) {
        bodies.push_back(req.body);
        return n == 1 ? fault{fault::drop_response} : fault{};
    });
    for (int i = 0; i < 5; ++i) ok(a.r->put("members", member(static_cast<std::size_t>(i)), {.id = "", .unit_id = "u"}));
    auto rep = ok(a.r->sync());
    CHECK(rep.applied == 5);
    CHECK(rep.retries == 1);
    REQUIRE(bodies.size() >= 2);
    auto first = json::parse(bodies[0]);
    auto second = json::parse(bodies[1]);
    CHECK(first["batch_id"] == second["batch_id"]);
    CHECK(first["changes"] == second["changes"]);
    CHECK(s.writes() == 5);
    for (const auto& [key, h] : s.all()) CHECK(h.history.size() == 1);
}

TEST_CASE("a sync cut after any local transaction resumes with nothing lost or doubled", "[client][sync][crash]") {
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
        fake_server s;
        temp_dir dir;
        auto a = make_device(s, dir, "a", nullptr, {}, small);
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
            fake_server s;
            temp_dir dir;
            {
                auto a = make_device(s, dir, "a", nullptr, {}, small);
                scenario(*a.r, 0);
                client::replica_test_access::set_after_commit(*a.r, [&](std::int64_t n) { return n < cut; });
                auto r = a.r->sync();
                REQUIRE_FALSE(r);
                CHECK(r.err().code == client::make_error_code(errc::cancelled));
            }  // the replica object is destroyed here, as a killed process would leave it
            auto a = make_device(s, dir, "a", nullptr, {}, small);
            ok(a.r->sync());
            CHECK(s.writes() == 6);  // six creates, the delete of an unsent record cancelled out
            for (const auto& [key, h] : s.all()) CHECK(h.history.size() == 1);
            require_converged(s, *a.r);
        }
    }
}

TEST_CASE("a sync cut between pull pages resumes from the committed cursor", "[client][sync][pull]") {
    fake_server s;
    temp_dir dir;
    auto writer = make_device(s, dir, "w");
    for (int i = 0; i < 23; ++i) ok(writer.r->put("members", member(static_cast<std::size_t>(i)), {.id = "", .unit_id = "u"}));
    ok(writer.r->sync());

    recording_seams seams;
    int pulls = 0;
    bool cut = true;
    auto reader = make_device(s, dir, "r", &seams, [&](const client::http_request&, int) {
        ++pulls;
        return cut && pulls == 3 ? fault{fault::drop_request} : fault{};
    }, client::sync_tuning{.pull_page_limit = 5, .max_attempts = 1});
    auto r = reader.r->sync();
    REQUIRE_FALSE(r);
    CHECK(r.err().code == client::make_error_code(errc::network));
    CHECK(ok(reader.r->list({.collection = "members"})).size() == 10);  // two pages committed
    cut = false;
    const int handled_before = s.handled;
    auto rep = ok(reader.r->sync());
    CHECK(rep.pulled == 13);                    // the rest, not everything again
    CHECK(s.handled - handled_before == 3);
    require_converged(s, *reader.r);
}

TEST_CASE("three replicas edit offline, sync in several orders and converge", "[client][sync][converge]") {
    fake_server s;
    temp_dir dir;
    std::vector<device> devs;
    for (const char* n : {"a", "b", "c"}) devs.push_back(make_device(s, dir, n));
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
    CHECK(s.conflicts().size() == 2);
    for (auto& d : devs) require_converged(s, *d.r);
    CHECK(s.head("members", ids[0])->history.back().data["role"] == "a sửa");
    CHECK(s.head("members", ids[0])->history.back().data["notes"] == "b ghi");
    CHECK(s.head("members", ids[4])->history.back().deleted);
    CHECK(ok(devs[0].r->list({.collection = "registrations"})).size() == 3);
}

TEST_CASE("a cursor the server does not know restarts the pull from the beginning, once", "[client][sync][pull]") {
    fake_server s;
    temp_dir dir;
    auto w = make_device(s, dir, "w");
    for (int i = 0; i < 4; ++i) ok(w.r->put("members", member(static_cast<std::size_t>(i)), {.id = "", .unit_id = "u"}));
    ok(w.r->sync());
    auto r = make_device(s, dir, "r");
    ok(r.r->put("members", member(9), {.id = "mine", .unit_id = "u"}));
    {
        auto& im = client::replica_test_access::of(*r.r);
        std::lock_guard lock(im.mutex);
        im.store->set_meta("cursor", "from-another-server");
    }
    auto rep = ok(r.r->sync());
    CHECK(rep.applied == 1);
    CHECK(s.writes() == 5);
    require_converged(s, *r.r);
    CHECK(ok(r.r->status()).cursor == "s:5");
}

TEST_CASE("edits from another thread while syncs run are all delivered", "[client][sync][threads]") {
    fake_server s;
    temp_dir dir;
    auto a = make_device(s, dir, "a", nullptr, {}, client::sync_tuning{.push_batch_size = 4, .pull_page_limit = 3});
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
        CHECK(s.head("members", id)->history.back().data["notes"] == "lần sửa " + std::to_string(n));
        CHECK(ok(a.r->get("members", id))->data["notes"] == "lần sửa " + std::to_string(n));
    }
    require_converged(s, *a.r);
}

TEST_CASE("change-sets are bounded in bytes as well as in changes", "[client][sync][outbox]") {
    fake_server s;
    temp_dir dir;
    std::vector<std::size_t> sizes;
    auto a = make_device(s, dir, "a", nullptr, [&](const client::http_request& req, int) {
        sizes.push_back(json::parse(req.body).value("changes", json::array()).size());
        return fault{};
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
          "[client][sync][scope]") {
    fake_server s;
    temp_dir dir;
    client::replica* ra = nullptr;
    bool edit_on_send = false;
    auto a = make_device(s, dir, "a", nullptr, [&](const client::http_request&, int) {
        if (edit_on_send) {  // pending while the answer that drops it is committed
            edit_on_send = false;
            REQUIRE(ra->patch("members", "moved-but-edited", {{"role", "vẫn sửa"}}));
        }
        return fault{};
    });
    ra = a.r.get();
    ok(a.r->put("members", member(1), {.id = "moved", .unit_id = "ap-1"}));
    ok(a.r->put("members", member(2), {.id = "moved-but-edited", .unit_id = "ap-1"}));
    ok(a.r->put("members", member(3), {.id = "stays", .unit_id = "ap-1"}));
    ok(a.r->sync());
    s.drop_next = {{"members", "moved"}, {"members", "moved-but-edited"}, {"members", "never-had-it"}};
    edit_on_send = true;
    auto rep = ok(a.r->sync());
    CHECK(rep.dropped == 1);
    CHECK_FALSE(ok(a.r->get("members", "moved")));
    CHECK(ok(a.r->get("members", "stays")));
    auto kept = ok(a.r->get("members", "moved-but-edited"));
    REQUIRE(kept);
    CHECK(kept->state == sync_state::pending);
    CHECK(kept->data["role"] == "vẫn sửa");
}

TEST_CASE("pull pages and new change-sets halve after transient failures and grow back after answers",
          "[client][sync][adapt]") {
    fake_server s;
    temp_dir dir;
    recording_seams seams;
    std::vector<std::int64_t> limits;
    std::vector<std::size_t> sizes;
    auto a = make_device(s, dir, "a", &seams, [&](const client::http_request& req, int n) {
        const auto body = json::parse(req.body);
        limits.push_back(body.at("limit").get<std::int64_t>());
        sizes.push_back(body.value("changes", json::array()).size());
        return n <= 3 ? fault{fault::status, 503} : fault{};
    }, client::sync_tuning{.push_batch_size = 40, .pull_page_limit = 400});
    std::vector<client::replica::put_item> items;
    for (std::size_t i = 0; i < 120; ++i) items.push_back({"members", member(i), {.id = "", .unit_id = "u"}});
    ok(a.r->put_many(items));
    const auto rep = ok(a.r->sync());
    CHECK(rep.retries == 3);
    CHECK(rep.applied == 120);
    REQUIRE(limits.size() >= 7);
    // The first change-set was made before any failure and is resent unchanged; the pull page
    // halves with each failure, then each answer doubles the sizes back.
    CHECK(std::vector<std::int64_t>(limits.begin(), limits.begin() + 7) ==
          std::vector<std::int64_t>{400, 200, 100, 50, 100, 200, 400});
    CHECK(std::vector<std::size_t>(sizes.begin(), sizes.begin() + 7) ==
          std::vector<std::size_t>{40, 40, 40, 40, 10, 20, 40});
    require_converged(s, *a.r);
}
