// Retention in the store (ARCHITECTURE.md, "Retention and gc"): acknowledged cursors, the
// purge horizon, gc and its dry run, re-snapshots, remembered answers, and writes against a
// record whose tombstone was purged. Time moves through the store's clock seam.

#include <catch2/catch.hpp>
#include "store_under_test.hpp"

#include <fieldsync/server/store.hpp>

#include <fieldsync/sqlite/sqlite.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>

namespace fs = std::filesystem;
namespace proto = fieldsync::protocol;
namespace srv = fieldsync::server;
using proto::json;

namespace {

constexpr std::int64_t k_day_ms = 24LL * 3600 * 1000;

struct retention_fixture {
    fs::path dir;
    std::string db;
    std::atomic<std::int64_t> now{1'764'115'200'000};  // 2025-11-26, moved by the tests
    std::unique_ptr<srv::store> s;
    int counter = 0;

    retention_fixture() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("fieldsync-retention-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
        db = (dir / "central.db").string();
        srv::store_options o;
        o.path = db;
        o.wall = [this] { return now.load(); };
        auto opened = fieldsync::test::open_store_under_test(o);
        REQUIRE(opened.has_value());
        s = std::move(opened).value();
    }
    ~retention_fixture() {
        s.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    void days(int n) { now += n * k_day_ms; }

    srv::device add(const std::string& unit_id) {
        auto d = s->add_device("máy " + unit_id, unit_id, srv::device_role::field);
        REQUIRE(d.has_value());
        return fresh(d->first);
    }
    srv::device fresh(const srv::device& d) {
        auto all = s->devices();
        REQUIRE(all.has_value());
        for (const auto& x : *all)
            if (x.id == d.id) return x;
        FAIL("no such device");
        return d;
    }
    proto::change_result write(const srv::device& d, const std::string& id, std::int64_t base, bool del = false,
                               const std::string& name = "Trần Thị Bích Ngọc", const std::string& change_id = {}) {
        proto::change_set cs;
        cs.batch_id = "b-" + std::to_string(counter);
        proto::change_entry e;
        e.c.change_id = change_id.empty() ? "c-" + std::to_string(counter) : change_id;
        ++counter;
        e.c.collection = "members";
        e.c.id = id;
        e.c.unit_id = d.unit_id;
        e.c.base_version = base;
        e.c.op = del ? proto::op_kind::del : proto::op_kind::put;
        if (!del) e.c.data = {{"name", name}, {"cell", "Chi bộ " + d.unit_id}};
        cs.changes.push_back(e);
        auto r = s->push(d, cs);
        REQUIRE(r.has_value());
        return (*r)[0];
    }
    // A device's pulls through the retention path, to the end of its feed; returns the cursor.
    struct pulled {
        std::int64_t cursor = 0;
        bool restarted = false;
        std::set<std::string> ids;
    };
    pulled pull_all(const srv::device& d, std::int64_t cursor, std::int64_t limit = 3) {
        pulled out;
        for (bool first = true;; first = false) {
            auto page = s->device_pull(fresh(d), cursor, limit);
            REQUIRE(page.has_value());
            if (first) out.restarted = page->restarted;
            else CHECK_FALSE(page->restarted);  // a walk that started over is not sent back again
            for (const auto& c : page->changes) out.ids.insert(c.id);
            // As the router issues cursors: an empty page keeps the cursor, or starts it over.
            if (!page->changes.empty() || !page->dropped.empty()) cursor = page->last_seq;
            else if (page->restarted) cursor = 0;
            if (!page->more) break;
        }
        out.cursor = cursor;
        return out;
    }
    srv::gc_report gc(bool dry_run = false, std::int64_t batch = 1000) {
        srv::gc_options o;
        o.dry_run = dry_run;
        o.batch_rows = batch;
        auto r = s->gc(o);
        INFO((r ? std::string() : r.err().message));
        REQUIRE(r.has_value());
        return *r;
    }
    std::int64_t count(const std::string& sql) {
        fieldsync::sqlite::db h(db, fieldsync::sqlite::db::mode::read_only);
        auto q = h.cached(sql);
        REQUIRE(q.step());
        return q.int64(0);
    }
    bool has_head(const std::string& id) {
        auto g = s->get("members", id);
        REQUIRE(g.has_value());
        return g->has_value();
    }
};

}  // namespace

TEST_CASE("an active device that lags holds gc back until it is past the window and then re-snapshots",
          "[store][retention]") {
    retention_fixture f;
    const auto writer = f.add("ap-3-binh-hoa");
    const auto lagging = f.add("ap-3-binh-hoa");

    f.write(writer, "m-1", 0);
    f.write(writer, "m-2", 0);
    f.write(writer, "m-1", 1, true);  // tombstone m-1 (v2)
    const auto lag = f.pull_all(lagging, 0);
    CHECK(lag.ids == std::set<std::string>{"m-1", "m-2"});

    f.days(10);
    f.write(writer, "m-2", 1, true);  // tombstone m-2 (v2), after the lagging device's cursor
    f.write(writer, "m-3", 0);
    f.write(writer, "m-3", 1, true);
    const auto w = f.pull_all(writer, 0);

    f.days(30);
    const auto first = f.gc();
    CHECK(first.active_devices == 2);
    CHECK(first.held_back_by == lagging.id);
    CHECK(first.horizon < w.cursor);
    CHECK(first.tombstones == 1);  // m-1 only: the lagging device still needs m-2's and m-3's
    CHECK_FALSE(f.has_head("m-1"));
    CHECK(f.has_head("m-2"));
    CHECK(f.has_head("m-3"));
    // History is the audit trail: every version of the purged record is still there.
    CHECK(f.s->history("members", "m-1")->size() == 2);

    // Both devices are still sound: neither is sent back to the beginning.
    CHECK_FALSE(f.pull_all(writer, w.cursor).restarted);

    // The lagging device stays away past the window; the writer keeps syncing.
    f.days(85);
    const auto w2 = f.pull_all(writer, w.cursor);
    CHECK_FALSE(w2.restarted);
    const auto second = f.gc();
    CHECK(second.active_devices == 1);
    CHECK(second.inactive_devices == 1);
    CHECK(second.held_back_by.empty());
    CHECK(second.horizon == second.feed_seq);
    CHECK(second.tombstones == 2);
    CHECK_FALSE(f.has_head("m-2"));

    // The writer, active, resumes from its cursor; the lagging one starts over and gets the
    // live records only.
    CHECK_FALSE(f.pull_all(writer, w2.cursor).restarted);
    const auto back = f.pull_all(lagging, lag.cursor);
    CHECK(back.restarted);
    CHECK(back.ids.empty());
    // ... and from then on it is an ordinary device again.
    f.write(writer, "m-4", 0, false, "Lê Văn Tám");
    const auto next = f.pull_all(lagging, back.cursor);
    CHECK_FALSE(next.restarted);
    CHECK(next.ids == std::set<std::string>{"m-4"});
}

TEST_CASE("a device whose scope is quiet keeps its old cursor across a gc without re-snapshotting",
          "[store][retention]") {
    retention_fixture f;
    const auto quiet = f.add("ap-7-chau-binh");
    const auto busy = f.add("ap-1-binh-hoa");
    f.write(quiet, "q-1", 0, false, "Phạm Thị Hoa");
    f.write(quiet, "q-2", 0, false, "Phan Đình Giót");
    const auto q = f.pull_all(quiet, 0);
    for (int i = 0; i < 5; ++i) {
        f.write(busy, "b-" + std::to_string(i), 0);
        f.write(busy, "b-" + std::to_string(i), 1, true);
    }
    f.days(1);
    // The quiet device's page is empty: its cursor stays, but what it acknowledges moves on.
    const auto again = f.pull_all(quiet, q.cursor);
    CHECK(again.cursor == q.cursor);
    CHECK(again.ids.empty());
    f.pull_all(busy, 0);
    const auto r = f.gc();
    CHECK(r.tombstones == 5);
    CHECK(r.horizon > q.cursor);
    auto page = f.s->device_pull(f.fresh(quiet), q.cursor, 10);
    REQUIRE(page.has_value());
    CHECK_FALSE(page->restarted);
    // A cursor it was never given is not vouched for: that one starts over.
    auto other = f.s->device_pull(f.fresh(quiet), q.cursor - 1, 10);
    REQUIRE(other.has_value());
    CHECK(other->restarted);
}

TEST_CASE("gc --dry-run counts what a real run purges and changes nothing", "[store][retention][sqlite]") {
    retention_fixture f;
    const auto d = f.add("ap-3-binh-hoa");
    for (int i = 0; i < 7; ++i) f.write(d, "m-" + std::to_string(i), 0, false, "Võ Thị Sáu");
    for (int i = 0; i < 4; ++i) f.write(d, "m-" + std::to_string(i), 1, true);
    const auto p = f.pull_all(d, 0);
    f.pull_all(d, p.cursor);  // presents the last cursor: every answer but the last is below it
    f.days(200);  // past the window: the device is inactive; answers are old enough

    auto snapshot = [&] {
        return std::vector<std::int64_t>{f.count("SELECT count(*) FROM heads"), f.count("SELECT count(*) FROM drops"),
                                         f.count("SELECT count(*) FROM decided"),
                                         f.count("SELECT count(*) FROM history"),
                                         f.count("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'purge_horizon'")};
    };
    const auto before = snapshot();
    const auto dry = f.gc(true);
    CHECK(dry.dry_run);
    CHECK(snapshot() == before);
    CHECK(dry.tombstones == 4);
    // 11 answers; the last one's seq is the last cursor itself, which does not prove it
    // arrived (a rejected change takes no seq of its own), so it stays.
    CHECK(dry.decided == 10);

    const auto real = f.gc(false, 2);  // two rows per transaction: the batches are exercised
    CHECK(real.tombstones == dry.tombstones);
    CHECK(real.drops == dry.drops);
    CHECK(real.decided == dry.decided);
    CHECK(real.horizon == dry.horizon);
    CHECK(f.count("SELECT count(*) FROM heads") == 3);
    CHECK(f.count("SELECT count(*) FROM history") == before[3]);
    CHECK(f.count("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'purge_horizon'") == real.horizon);
    // Nothing is left to purge.
    const auto again = f.gc();
    CHECK(again.tombstones == 0);
    CHECK(again.decided == 0);

    srv::gc_options bad;
    bad.window_ms = -1;
    auto refused = f.s->gc(bad);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.err().code == proto::errc::bad_request);
}

TEST_CASE("remembered answers go only when the device can no longer resend them", "[store][retention][sqlite]") {
    retention_fixture f;
    const auto acked = f.add("ap-3-binh-hoa");
    const auto silent = f.add("ap-3-binh-hoa");
    const auto a = f.write(acked, "a-1", 0, false, "Đặng Thùy Trâm", "ca-1");
    const auto b = f.write(silent, "s-1", 0, false, "Nguyễn Thị Định", "cs-1");
    // `acked` presents a cursor issued after its answer; `silent` never pulls again (its
    // answer may have been lost on the way: it must be able to resend).
    const auto p = f.pull_all(acked, 0);
    f.pull_all(acked, p.cursor);
    f.days(120);
    const auto r = f.gc();
    CHECK(r.decided == 1);
    CHECK(f.count("SELECT count(*) FROM decided WHERE device_id = '" + silent.id + "'") == 1);
    CHECK(f.count("SELECT count(*) FROM decided WHERE device_id = '" + acked.id + "'") == 0);
    // The silent device's retry still gets its first answer, not a second version.
    const auto retry = f.write(silent, "s-1", 0, false, "Nguyễn Thị Định", "cs-1");
    CHECK(retry.status == b.status);
    CHECK(retry.version == b.version);
    CHECK(f.s->history("members", "s-1")->size() == 1);
    CHECK(a.version == 1);

    // A revoked device cannot resend at all: its old answers go.
    REQUIRE(f.s->revoke_device(silent.id));
    CHECK(f.gc().decided == 1);
}

TEST_CASE("an edit against a record whose tombstone was purged is decided against that tombstone",
          "[store][retention]") {
    retention_fixture f;
    const auto ap3 = f.add("ap-3-binh-hoa");
    const auto other = f.add("ap-3-binh-hoa");
    f.write(ap3, "m-1", 0, false, "Huỳnh Tấn Phát");
    f.write(other, "m-1", 1, true);  // v2: deleted by the other device
    f.write(ap3, "m-2", 0, false, "Lý Tự Trọng");
    f.write(ap3, "m-2", 1, true);    // v2: deleted by ap3 itself
    const auto before = f.pull_all(other, 0);
    f.days(100);
    CHECK(f.gc().tombstones == 2);
    REQUIRE_FALSE(f.has_head("m-1"));

    // ap3 edited m-1 offline from v1: an edit against a deleted head is a conflict, as it
    // was before the purge; the tombstone is back as the head, so the conflict can be resolved.
    const auto edit = f.write(ap3, "m-1", 1, false, "Huỳnh Tấn Phát (đã sửa)");
    CHECK(edit.status == proto::change_status::conflict);
    CHECK(edit.version == 2);
    auto head = f.s->get("members", "m-1");
    REQUIRE(head->has_value());
    CHECK((*head)->deleted);
    CHECK((*head)->version == 2);
    // Devices that still hold m-1 receive the delete again.
    const auto again = f.pull_all(other, before.cursor);
    CHECK(again.ids.count("m-1") == 1);
    auto conflict = f.s->conflict(*edit.conflict_id);
    REQUIRE(conflict->has_value());
    CHECK((*conflict)->incoming["name"] == "Huỳnh Tấn Phát (đã sửa)");
    srv::resolution take;
    take.how = srv::resolution::choice::take_incoming;
    take.head_version = 2;
    auto admin = f.s->add_device("huyện", "ap-3-binh-hoa", srv::device_role::admin);
    REQUIRE(admin.has_value());
    auto resolved = f.s->resolve(admin->first, *edit.conflict_id, take);
    INFO((resolved ? std::string() : resolved.err().message));
    REQUIRE(resolved.has_value());
    CHECK((*f.s->get("members", "m-1"))->version == 3);

    // Recreating over its own purged delete (put with the tombstone's version) brings the
    // record back at the next version: versions never repeat.
    const auto back = f.write(ap3, "m-2", 2, false, "Lý Tự Trọng");
    CHECK(back.status == proto::change_status::applied);
    CHECK(back.version == 3);
    CHECK(f.s->history("members", "m-2")->size() == 3);
}
