// Long-offline devices (issue 6, "Done when": a device offline past the retention window
// re-snapshots and keeps its edits). A real server whose store runs on a clock the test moves,
// replicas on temp-dir files, gc through the store while the server serves.

#include "e2e_support.hpp"

#include <fieldsync/protocol/json_input.hpp>

#include <map>
#include <mutex>
#include <set>

using namespace fieldsync;
using namespace fieldsync::test;
using client::sync_state;

namespace {

constexpr std::int64_t k_day_ms = 24LL * 3600 * 1000;

// live_server with the store's clock in the test's hands.
class clocked_server {
public:
    clocked_server() : now_(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()) {
        srv::store_options so;
        so.path = dir_.file("central.db");
        so.wall = [this] { return now_.load(); };
        auto st = srv::open_sqlite_store(so);
        REQUIRE(st);
        store_ = std::move(*st);
        srv::server_options o;
        o.port = 0;
        o.threads = 2;
        server_ = std::make_unique<srv::server>(o, *store_);
        auto port = server_->start();
        REQUIRE(port);
        port_ = *port;
    }
    ~clocked_server() {
        server_->stop();
        store_->close();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::string add_device(const std::string& name, const std::string& unit) {
        auto d = store_->add_device(name, unit, srv::device_role::field);
        REQUIRE(d);
        return d->second;
    }
    void days(int n) { now_ += n * k_day_ms; }
    srv::store& store() { return *store_; }
    srv::gc_report gc(std::int64_t batch_rows = 1000) {
        srv::gc_options o;
        o.batch_rows = batch_rows;
        auto r = store_->gc(o);
        INFO((r ? std::string() : r.err().message));
        REQUIRE(r);
        return *r;
    }

private:
    temp_dir dir_;
    std::atomic<std::int64_t> now_;
    std::unique_ptr<srv::store> store_;
    std::unique_ptr<srv::server> server_;
    std::uint16_t port_ = 0;
};

// The default transport, noting which answers told the replica to start over.
class reset_watch final : public client::transport {
public:
    client::result<client::http_response> send(const client::http_request& req,
                                                std::chrono::milliseconds timeout) override {
        auto r = inner_->send(req, timeout);
        if (r && r->status == 200) {
            const auto body = json::parse(r->body, nullptr, false);
            std::lock_guard lock(m_);
            ++answers_;
            if (body.is_object() && body.value("reset", false)) ++resets_;
        }
        return r;
    }
    int resets() {
        std::lock_guard lock(m_);
        return resets_;
    }
    int answers() {
        std::lock_guard lock(m_);
        return answers_;
    }

private:
    std::unique_ptr<client::transport> inner_ = client::make_http_transport();
    std::mutex m_;
    int resets_ = 0;
    int answers_ = 0;
};

std::unique_ptr<client::replica> replica_on(clocked_server& s, temp_dir& dir, const std::string& name,
                                            const std::string& unit, std::shared_ptr<client::transport> t,
                                            client::sync_tuning tuning = {}) {
    auto r = open_replica(dir.file(name + ".db"), std::move(t), {}, tuning);
    ok(r->configure(s.url(), s.add_device("Máy " + name, unit)));
    return r;
}

// The live records a replica shows: id -> (version, data).
std::map<std::string, std::pair<std::int64_t, json>> live(client::replica& r) {
    std::map<std::string, std::pair<std::int64_t, json>> out;
    for (const auto& rec : ok(r.list({.collection = "members"}))) out[rec.id] = {rec.version, rec.data};
    return out;
}

// The live records the server holds, in the same form.
std::map<std::string, std::pair<std::int64_t, json>> live(srv::store& st) {
    std::map<std::string, std::pair<std::int64_t, json>> out;
    auto page = st.pull(0, 100000);
    REQUIRE(page);
    for (const auto& p : page->changes)
        if (p.collection == "members" && !p.deleted) out[p.id] = {p.version, p.data};
    return out;
}

// "Nguyễn Thị Hồng" decomposed (NFD): combining marks after their base letters.
const std::string k_nfd_name = "Nguye\u0302\u0303n Thi\u0323 Ho\u0302\u0300ng";

}  // namespace

TEST_CASE("a device offline past the retention window re-snapshots and keeps its pending edits",
          "[client][e2e][retention]") {
    clocked_server s;
    temp_dir dir;
    const std::string unit = "ap-3-binh-hoa";
    auto watch_a = std::make_shared<reset_watch>();
    auto watch_b = std::make_shared<reset_watch>();
    // Small pages: the re-snapshot walks several pages below the purge horizon.
    auto a = replica_on(s, dir, "a", unit, watch_a, {.pull_page_limit = 2});
    auto b = replica_on(s, dir, "b", unit, watch_b);

    std::vector<std::string> ids;
    for (std::size_t i = 0; i < 8; ++i) ids.push_back(ok(a->put("members", member(i), {.unit_id = unit})).id);
    ok(a->sync());
    ok(b->sync());
    REQUIRE(live(*b).size() == 8);

    // Device A goes into a drawer. B deletes two records, edits one, and creates and deletes
    // one A never sees.
    s.days(1);
    ok(b->remove("members", ids[0]));
    ok(b->remove("members", ids[1]));
    ok(b->patch("members", ids[2], {{"notes", "đã chuyển sinh hoạt về ấp 5"}}));
    const auto brief = ok(b->put("members", member(20), {.unit_id = unit})).id;
    ok(b->sync());
    ok(b->remove("members", brief));
    ok(b->sync());

    // Meanwhile, offline, A creates (a decomposed name), edits, deletes, and edits a record
    // B deleted, whose tombstone gc will purge.
    json created = member(30);
    created["name"] = k_nfd_name;
    const auto fresh_id = ok(a->put("members", created, {.unit_id = unit})).id;
    ok(a->patch("members", ids[3], {{"role", "bí thư chi bộ"}}));
    ok(a->remove("members", ids[4]));
    ok(a->patch("members", ids[0], {{"notes", "gia đình đề nghị giữ hồ sơ"}}));
    REQUIRE(ok(a->pending_count()) == 4);

    // 100 days later B still syncs every day; A has not synced since day 0.
    s.days(99);
    ok(b->sync());
    const auto report = s.gc();
    CHECK(report.active_devices == 1);
    CHECK(report.inactive_devices == 1);
    CHECK(report.tombstones == 3);
    CHECK(report.horizon == report.feed_seq);
    for (const auto& id : std::vector<std::string>{ids[0], ids[1], brief}) {
        auto head = s.store().get("members", id);
        REQUIRE(head);
        CHECK_FALSE(head->has_value());
        auto versions = s.store().history("members", id);  // the audit trail stays whole
        REQUIRE(versions);
        CHECK_FALSE(versions->empty());
    }

    // B, whose cursor is past the horizon, goes on from its cursor.
    ok(b->patch("members", ids[5], {{"notes", "chuyển đi làm ăn xa"}}));
    ok(b->sync());
    CHECK(watch_b->resets() == 0);

    // A comes back: its edits go first, then it starts over from the beginning of its scope.
    const auto back = ok(a->sync());
    CHECK(watch_a->resets() == 1);
    CHECK(back.pushed == 4);
    CHECK(back.conflicts == 1);
    CHECK(ok(a->pending_count()) == 0);

    // Created, with its decomposed name byte for byte.
    auto head = s.store().get("members", fresh_id);
    REQUIRE(head);
    REQUIRE(head->has_value());
    CHECK((*head)->data["name"].get<std::string>() == k_nfd_name);
    // Edited: A's field and B's edit of another field both hold.
    head = s.store().get("members", ids[3]);
    REQUIRE(head->has_value());
    CHECK((*head)->data["role"] == "bí thư chi bộ");
    // Deleted.
    head = s.store().get("members", ids[4]);
    REQUIRE(head->has_value());
    CHECK((*head)->deleted);
    // The edit of the record whose tombstone was purged is not lost: it is held for review
    // against the delete, on the server and on A.
    auto held = ok(a->get("members", ids[0]));
    REQUIRE(held);
    CHECK(held->state == sync_state::conflict);
    CHECK(held->held["notes"] == "gia đình đề nghị giữ hồ sơ");
    REQUIRE(held->conflict_id);
    auto conflict = s.store().conflict(*held->conflict_id);
    REQUIRE(conflict);
    REQUIRE(conflict->has_value());
    CHECK((*conflict)->head_deleted);
    CHECK((*conflict)->incoming["notes"] == "gia đình đề nghị giữ hồ sơ");
    // A holds no stale copy of what B deleted and gc purged.
    auto gone = ok(a->get("members", ids[1]));
    CHECK((!gone || gone->deleted));
    CHECK(ok(a->get("members", brief)) == std::nullopt);

    // A converges with the server and with a replica that syncs from scratch.
    const auto server_view = live(s.store());
    CHECK(live(*a) == server_view);
    CHECK(live(*a).at(ids[2]).second["notes"] == "đã chuyển sinh hoạt về ấp 5");
    auto c = replica_on(s, dir, "c", unit, nullptr);
    ok(c->sync());
    CHECK(live(*c) == server_view);
    ok(b->sync());
    CHECK(live(*b) == server_view);

    // From now on A is an ordinary device again: no second re-snapshot.
    ok(b->patch("members", ids[6], {{"notes", "đã học Nghị quyết"}}));
    ok(b->sync());
    ok(a->sync());
    CHECK(watch_a->resets() == 1);
    CHECK(live(*a) == live(s.store()));
}

TEST_CASE("gc runs while another device syncs and the syncing device never re-snapshots", "[client][e2e][retention]") {
    clocked_server s;
    temp_dir dir;
    const std::string unit = "ap-1-chau-binh";
    auto watch = std::make_shared<reset_watch>();
    auto b = replica_on(s, dir, "b", unit, watch, {.pull_page_limit = 3});

    std::atomic<bool> done{false};
    std::optional<std::string> failure, gc_failure;  // each written by one thread
    std::thread syncing([&] {
        std::vector<std::string> mine;
        for (std::size_t round = 0; round < 25 && !failure; ++round) {
            for (std::size_t k = 0; k < 3; ++k) {
                auto r = b->put("members", member(round * 3 + k, "Chi bộ ấp 1"), {.unit_id = unit});
                if (!r) failure = r.err().message;
                else mine.push_back(r->id);
            }
            for (std::size_t k = 0; k < 2 && !mine.empty(); ++k) {
                auto r = b->remove("members", mine.front());
                if (!r) failure = r.err().message;
                mine.erase(mine.begin());
            }
            if (auto r = b->sync(); !r) failure = r.err().message;
        }
        done = true;
    });
    std::int64_t purged = 0;
    int runs = 0;
    while (!done) {
        srv::gc_options o;
        o.batch_rows = 2;
        auto r = s.store().gc(o);
        if (!r) {
            gc_failure = r.err().message;
            break;
        }
        purged += r->tombstones;
        ++runs;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    syncing.join();
    INFO(failure.value_or("") << gc_failure.value_or(""));
    REQUIRE_FALSE(failure);
    REQUIRE_FALSE(gc_failure);
    purged += s.gc().tombstones;
    CHECK(runs > 0);
    CHECK(purged > 0);
    CHECK(watch->resets() == 0);

    ok(b->sync());
    auto c = replica_on(s, dir, "c", unit, nullptr);
    ok(c->sync());
    const auto server_view = live(s.store());
    CHECK(server_view.size() == 25);
    CHECK(live(*b) == server_view);
    CHECK(live(*c) == server_view);
}

TEST_CASE("an active device that lags holds gc back and still receives every delete", "[client][e2e][retention]") {
    clocked_server s;
    temp_dir dir;
    const std::string unit = "ap-2-luong-hoa";
    auto watch_l = std::make_shared<reset_watch>();
    auto l = replica_on(s, dir, "lagging", unit, watch_l);
    auto w = replica_on(s, dir, "writer", unit, nullptr);
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < 5; ++i) ids.push_back(ok(w->put("members", member(i, "Chi bộ ấp 2"), {.unit_id = unit})).id);
    ok(w->sync());
    ok(l->sync());
    REQUIRE(live(*l).size() == 5);

    // The writer deletes three records and keeps syncing; the lagging device last synced on
    // day 0 and is still within the window on day 60.
    s.days(1);
    for (std::size_t i = 0; i < 3; ++i) ok(w->remove("members", ids[i]));
    ok(w->sync());
    s.days(59);
    ok(w->sync());
    const auto held = s.gc();
    CHECK(held.active_devices == 2);
    CHECK(held.tombstones == 0);
    std::string lagging_id;
    const auto devices = s.store().devices();
    REQUIRE(devices);
    for (const auto& d : *devices)
        if (d.name == "Máy lagging") lagging_id = d.id;
    CHECK(held.held_back_by == lagging_id);

    // It comes back on day 60: no re-snapshot, and the deletes reach it.
    ok(l->sync());
    CHECK(watch_l->resets() == 0);
    CHECK(live(*l) == live(s.store()));
    CHECK(live(*l).size() == 2);
    for (std::size_t i = 0; i < 3; ++i) {
        auto gone = ok(l->get("members", ids[i]));
        REQUIRE(gone);
        CHECK(gone->deleted);
    }
    // Now that it has them, gc purges them.
    CHECK(s.gc().tombstones == 3);
}
