// The sync engine against the in-memory fake server, only for the faults the real server
// cannot be made to show (fake_server.hpp says which): a request or a response lost at an
// exact point of a sync (backoff and jitter, the same ids resent, a cut between pull pages),
// 5xx, 401 and 403 scripted per attempt (giving up after max_attempts, never retrying a
// permanent error), a cursor the server never issued, and the page and change-set sizes that
// halve after transient failures. Everything else the sync engine does (convergence, the
// merge rule's outcomes, the outbox, rejected changes, edits from another thread, scope
// changes, a sync cut after a local transaction) runs against the real server on a loopback
// port: tests/client/e2e/replica_sync_test.cpp.

#include "fake_server.hpp"
#include "helpers.hpp"
#include "replica_internal.hpp"

#include <fieldsync/client/tuning.hpp>

using namespace fieldsync;
using namespace fieldsync::test;
using client::errc;
using client::sync_state;

namespace {

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
