// The central store through its interface: the sync engine's write path, idempotency, the
// feed, history, conflicts, devices, group commit under concurrency, and reopening.

#include <catch2/catch.hpp>
#include "store_under_test.hpp"

#include <fieldsync/server/store.hpp>

#include <fieldsync/sqlite/sqlite.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <thread>

namespace fs = std::filesystem;
namespace proto = fieldsync::protocol;
using fieldsync::server::device;
using fieldsync::server::device_role;
using fieldsync::server::store;
using proto::json;

namespace {

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("fieldsync-store-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::unique_ptr<store> open(const fs::path& file, const proto::schema* schema = nullptr,
                            proto::hlc_clock::wall_fn wall = proto::hlc_clock::system_wall_ms) {
    fieldsync::server::store_options o;
    o.path = file.string();
    o.schema = schema;
    o.wall = std::move(wall);
    auto s = fieldsync::test::open_store_under_test(o);
    REQUIRE(s.has_value());
    return std::move(s).value();
}

proto::change_entry change(std::string change_id, std::string id, std::int64_t base, json data,
                           proto::op_kind op = proto::op_kind::put, std::string collection = "members") {
    proto::change_entry e;
    e.c.change_id = std::move(change_id);
    e.c.collection = std::move(collection);
    e.c.id = std::move(id);
    e.c.unit_id = "xa-binh-hoa";
    e.c.op = op;
    e.c.base_version = base;
    e.c.data = std::move(data);
    return e;
}

proto::change_set batch(std::string id, std::vector<proto::change_entry> changes) {
    proto::change_set cs;
    cs.batch_id = std::move(id);
    cs.changes = std::move(changes);
    return cs;
}

std::vector<proto::change_result> push_ok(store& s, const device& d, proto::change_set cs) {
    auto r = s.push(d, std::move(cs));
    REQUIRE(r.has_value());
    return std::move(r).value();
}

json member(std::string name, std::string role = "đảng viên") {
    return {{"name", std::move(name)}, {"cell", "chi-bo-ap-1"}, {"role", std::move(role)}};
}

device add(store& s, std::string name = "phone") {
    auto d = s.add_device(name, "xa-binh-hoa", device_role::field);
    REQUIRE(d.has_value());
    return d->first;
}

}  // namespace

TEST_CASE("a new record is applied as version 1 and shows in the feed, head and history", "[store]") {
    temp_dir dir;
    auto s = open(dir.path / "central.db");
    const auto dev = add(*s);
    const auto r = push_ok(*s, dev, batch("b1", {change("c1", "m-1", 0, member("Nguyễn Văn An"))}));
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == proto::change_status::applied);
    CHECK(r[0].version == 1);

    auto head = s->get("members", "m-1");
    REQUIRE(head.has_value());
    REQUIRE(head->has_value());
    CHECK((*head)->version == 1);
    CHECK((*head)->data["name"] == "Nguyễn Văn An");

    auto page = s->pull(0, 10);
    REQUIRE(page.has_value());
    REQUIRE(page->changes.size() == 1);
    CHECK(page->changes[0].id == "m-1");
    CHECK_FALSE(page->more);

    auto hist = s->history("members", "m-1");
    REQUIRE(hist.has_value());
    REQUIRE(hist->size() == 1);
    CHECK((*hist)[0].device_id == dev.id);
    CHECK((*hist)[0].change_id == "c1");
    CHECK((*hist)[0].how == "applied");
}

TEST_CASE("a replayed change is answered as the first time and applied once", "[store][idempotency]") {
    temp_dir dir;
    auto s = open(dir.path / "central.db");
    const auto dev = add(*s);
    const auto first = push_ok(*s, dev, batch("b1", {change("c1", "m-1", 0, member("Trần Thị Lan")),
                                                     change("c2", "m-2", 0, member("Lê Văn Hùng"))}));
    // The whole batch again, then one change inside a new batch with a new change beside it.
    const auto again = push_ok(*s, dev, batch("b1", {change("c1", "m-1", 0, member("Trần Thị Lan")),
                                                     change("c2", "m-2", 0, member("Lê Văn Hùng"))}));
    CHECK(proto::encode(again[0]) == proto::encode(first[0]));
    CHECK(proto::encode(again[1]) == proto::encode(first[1]));
    const auto mixed = push_ok(*s, dev, batch("b2", {change("c2", "m-2", 0, member("Lê Văn Hùng")),
                                                     change("c3", "m-3", 0, member("Phạm Minh Tuấn"))}));
    CHECK(proto::encode(mixed[0]) == proto::encode(first[1]));
    CHECK(mixed[1].status == proto::change_status::applied);

    auto hist = s->history("members", "m-2");
    REQUIRE(hist.has_value());
    CHECK(hist->size() == 1);
    auto page = s->pull(0, 100);
    REQUIRE(page.has_value());
    CHECK(page->changes.size() == 3);

    // Another device's change with the same change_id is its own change.
    const auto other = add(*s, "laptop");
    const auto theirs = push_ok(*s, other, batch("b9", {change("c1", "m-1", 1, member("Trần Thị Lan", "bí thư"))}));
    CHECK(theirs[0].status == proto::change_status::applied);
    CHECK(theirs[0].version == 2);
}

TEST_CASE("concurrent edits of different fields merge, of the same field they conflict with both texts",
          "[store][merge]") {
    temp_dir dir;
    auto s = open(dir.path / "central.db");
    const auto a = add(*s, "secretary");
    const auto b = add(*s, "member");
    push_ok(*s, a, batch("b0", {change("c0", "r-1", 0, member("Võ Thị Mai"))}));

    auto edit_a = member("Võ Thị Mai", "bí thư chi bộ");
    auto edit_b = member("Võ Thị Mai");
    edit_b["notes"] = "Rời khỏi phòng thì tắt quạt máy, tắt đèn";
    CHECK(push_ok(*s, a, batch("b1", {change("c1", "r-1", 1, edit_a)}))[0].status == proto::change_status::applied);
    const auto merged = push_ok(*s, b, batch("b2", {change("c2", "r-1", 1, edit_b)}));
    CHECK(merged[0].status == proto::change_status::merged);
    CHECK(merged[0].version == 3);
    auto head = s->get("members", "r-1");
    CHECK((*head)->data["role"] == "bí thư chi bộ");
    CHECK((*head)->data["notes"] == "Rời khỏi phòng thì tắt quạt máy, tắt đèn");

    // Both change "notes" from version 3.
    auto x = (*head)->data;
    auto y = (*head)->data;
    x["notes"] = "Không sử dụng máy in cho việc riêng";
    y["notes"] = "Tiết kiệm giấy, mực in, điện";
    CHECK(push_ok(*s, a, batch("b3", {change("c3", "r-1", 3, x)}))[0].status == proto::change_status::applied);
    const auto conflicted = push_ok(*s, b, batch("b4", {change("c4", "r-1", 3, y)}));
    REQUIRE(conflicted[0].status == proto::change_status::conflict);
    CHECK(conflicted[0].version == 4);
    REQUIRE(conflicted[0].conflict_id);

    auto c = s->conflict(*conflicted[0].conflict_id);
    REQUIRE(c.has_value());
    REQUIRE(c->has_value());
    CHECK((*c)->status == "open");
    CHECK((*c)->head["notes"] == "Không sử dụng máy in cho việc riêng");
    CHECK((*c)->incoming["notes"] == "Tiết kiệm giấy, mực in, điện");
    CHECK((*c)->base["notes"] == "Rời khỏi phòng thì tắt quạt máy, tắt đèn");
    CHECK((*c)->fields == std::vector<std::string>{"/notes"});
    CHECK((*c)->device_id == b.id);
    // The head stayed.
    CHECK((*s->get("members", "r-1"))->version == 4);
    auto open_list = s->conflicts("open", 10, 0);
    REQUIRE(open_list.has_value());
    CHECK(open_list->size() == 1);
}

TEST_CASE("rejections do not block the rest of a change-set and are answered again on retry", "[store]") {
    temp_dir dir;
    auto s = open(dir.path / "central.db");
    const auto dev = add(*s);
    auto bad_schema = change("c2", "m-2", 0, json{{"name", 42}, {"cell", "x"}});
    auto decoder_rejected = change("c4", "m-4", 0, member("Hồ Văn Nam"));
    decoder_rejected.rejected = proto::error{proto::errc::bad_field, "field 'unit_id' must be a string"};
    const auto r = push_ok(*s, dev, batch("b1", {change("c1", "m-1", 0, member("Đặng Thị Hà")), bad_schema,
                                                 change("c3", "x-1", 0, json::object(), proto::op_kind::put, "nope"),
                                                 decoder_rejected, change("c5", "m-5", 7, member("Bùi Văn Lộc"))}));
    REQUIRE(r.size() == 5);
    CHECK(r[0].status == proto::change_status::applied);
    CHECK(r[1].status == proto::change_status::rejected);
    CHECK(r[1].err->code == proto::errc::schema_violation);
    CHECK_THAT(r[1].err->message, Catch::Contains("name"));
    CHECK(r[2].err->code == proto::errc::unknown_collection);
    CHECK(r[3].err->code == proto::errc::bad_field);
    CHECK(r[4].err->code == proto::errc::base_ahead);
    auto page = s->pull(0, 100);
    CHECK(page->changes.size() == 1);
}

TEST_CASE("patches, deletes and lww through the store", "[store][merge]") {
    temp_dir dir;
    auto schema_doc = json::parse(proto::schema::default_schema_text());
    schema_doc["collections"]["members"]["policy"] = "lww";
    auto lww_schema = proto::schema::from_json(schema_doc);
    REQUIRE(lww_schema.has_value());
    auto s = open(dir.path / "central.db", &*lww_schema);
    const auto a = add(*s, "a");
    const auto b = add(*s, "b");
    push_ok(*s, a, batch("b0", {change("c0", "r-1", 0, member("Ngô Thanh Sơn"))}));

    auto pa = change("c1", "r-1", 1, json{{"role", "phó bí thư"}}, proto::op_kind::patch);
    pa.c.stamp = proto::hlc{proto::hlc_clock::system_wall_ms() - 1000, 0};
    auto pb = change("c2", "r-1", 1, json{{"role", "chi ủy viên"}}, proto::op_kind::patch);
    pb.c.stamp = proto::hlc{proto::hlc_clock::system_wall_ms() - 2000, 0};  // older: loses
    CHECK(push_ok(*s, a, batch("b1", {pa}))[0].status == proto::change_status::applied);
    const auto r = push_ok(*s, b, batch("b2", {pb}));
    CHECK(r[0].status == proto::change_status::merged);
    CHECK(r[0].version == 3);
    auto head = s->get("members", "r-1");
    CHECK((*head)->data["role"] == "phó bí thư");
    CHECK((*head)->data["name"] == "Ngô Thanh Sơn");
    auto hist = s->history("members", "r-1");
    REQUIRE(hist->size() == 3);
    CHECK((*hist)[2].lost["/role"] == "chi ủy viên");

    // A delete from the head applies; the feed then carries the tombstone.
    const auto d = push_ok(*s, a, batch("b3", {change("c3", "r-1", 3, nullptr, proto::op_kind::del)}));
    CHECK(d[0].status == proto::change_status::applied);
    auto page = s->pull(0, 10);
    REQUIRE(page->changes.size() == 1);
    CHECK(page->changes[0].deleted);
    CHECK(page->changes[0].data.is_null());
}

TEST_CASE("a client clock far in the future is replaced by the server's", "[store][clock]") {
    temp_dir dir;
    std::atomic<std::int64_t> now{1'700'000'000'000};
    auto s = open(dir.path / "central.db", nullptr, [&] { return now.load(); });
    const auto dev = add(*s);
    auto c = change("c1", "m-1", 0, member("Lý Thị Hương"));
    c.c.stamp = proto::hlc{now + 365LL * 24 * 3600 * 1000, 0};
    push_ok(*s, dev, batch("b1", {c}));
    auto hist = s->history("members", "m-1");
    const auto stamp = proto::hlc::parse((*hist)[0].hlc);
    REQUIRE(stamp);
    CHECK(stamp->wall_ms == now);

    auto near = change("c2", "m-2", 0, member("Lý Văn Bình"));
    near.c.stamp = proto::hlc{now + 1000, 7};  // within the bound: kept as sent
    push_ok(*s, dev, batch("b2", {near}));
    CHECK((*s->history("members", "m-2"))[0].hlc == near.c.stamp->to_string());
}

TEST_CASE("group commit: many concurrent change-sets all land once, with a gapless feed", "[store][concurrency]") {
    temp_dir dir;
    auto s = open(dir.path / "central.db");
    constexpr int k_devices = 8, k_batches = 20, k_per_batch = 10;
    std::vector<device> devs;
    for (int i = 0; i < k_devices; ++i) devs.push_back(add(*s, "d" + std::to_string(i)));
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int d = 0; d < k_devices; ++d) {
        threads.emplace_back([&, d] {
            for (int b = 0; b < k_batches; ++b) {
                std::vector<proto::change_entry> cs;
                for (int i = 0; i < k_per_batch; ++i) {
                    const auto id = "m-" + std::to_string(d) + "-" + std::to_string(b) + "-" + std::to_string(i);
                    cs.push_back(change("c-" + id, id, 0, member("Châu Ngọc Yến")));
                }
                auto r = s->push(devs[d], batch("b-" + std::to_string(d) + "-" + std::to_string(b), cs));
                if (!r || r->size() != k_per_batch) ++failures;
                for (const auto& x : *r)
                    if (x.status != proto::change_status::applied) ++failures;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(failures == 0);

    std::set<std::string> ids;
    std::int64_t cursor = 0, last_seq = 0;
    for (;;) {
        auto page = s->pull(cursor, 37);
        REQUIRE(page.has_value());
        for (const auto& c : page->changes) CHECK(ids.insert(c.id).second);
        CHECK(page->last_seq > last_seq - (page->changes.empty() ? 1 : 0));
        last_seq = page->last_seq;
        cursor = page->last_seq;
        if (!page->more) break;
    }
    CHECK(ids.size() == static_cast<std::size_t>(k_devices * k_batches * k_per_batch));
    // seq has no gap: the last one equals the number of versions written.
    CHECK(last_seq == k_devices * k_batches * k_per_batch);
}

TEST_CASE("a reopened store keeps heads, history, conflicts, answers and devices", "[store][restart]") {
    temp_dir dir;
    const auto file = dir.path / "central.db";
    std::string token;
    device dev;
    {
        auto s = open(file);
        auto d = s->add_device("máy tính bảng", "xa-binh-hoa", device_role::admin);
        REQUIRE(d.has_value());
        dev = d->first;
        token = d->second;
        push_ok(*s, dev, batch("b1", {change("c1", "m-1", 0, member("Dương Quốc Việt"))}));
        s->close();
        // After close, submissions are refused as unavailable, and nothing is applied.
        auto late = s->push(dev, batch("b2", {change("c2", "m-2", 0, member("Dương Quốc Việt"))}));
        REQUIRE_FALSE(late.has_value());
        CHECK(late.err().code == proto::errc::unavailable);
    }
    auto s = open(file);
    auto who = s->authenticate(token);
    REQUIRE(who.has_value());
    REQUIRE(who->has_value());
    CHECK((*who)->id == dev.id);
    CHECK((*who)->role == device_role::admin);
    CHECK_FALSE(s->authenticate(token + "x")->has_value());
    CHECK((*s->get("members", "m-1"))->data["name"] == "Dương Quốc Việt");
    CHECK_FALSE(s->get("members", "m-2")->has_value());
    const auto again = push_ok(*s, dev, batch("b1", {change("c1", "m-1", 0, member("Dương Quốc Việt"))}));
    CHECK(again[0].status == proto::change_status::applied);
    CHECK(again[0].version == 1);
    CHECK(s->history("members", "m-1")->size() == 1);
}

TEST_CASE("a store that cannot write answers storage errors and applies nothing", "[store][faults][sqlite]") {
    temp_dir dir;
    const auto file = dir.path / "central.db";
    auto s = open(file);
    const auto dev = add(*s);
    push_ok(*s, dev, batch("b1", {change("c1", "m-1", 0, member("Hoàng Thị Thủy"))}));

    // Another connection holds the write lock past the busy timeout: the change-set fails
    // whole, as `unavailable`, and a retry after the lock is gone applies it once.
    auto blocker = std::make_unique<fieldsync::sqlite::db>(file.string());
    blocker->exec("BEGIN EXCLUSIVE");
    auto refused = s->push(dev, batch("b2", {change("c2", "m-2", 0, member("Hoàng Văn Đức"))}));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.err().code == proto::errc::unavailable);
    blocker.reset();  // closing the connection rolls its transaction back

    CHECK_FALSE(s->get("members", "m-2")->has_value());
    const auto retried = push_ok(*s, dev, batch("b2", {change("c2", "m-2", 0, member("Hoàng Văn Đức"))}));
    CHECK(retried[0].status == proto::change_status::applied);
    CHECK(retried[0].version == 1);
}

// The notice waiting syncs are woken by (SPEC.md, "Waiting for changes"): after a commit that
// moved the feed and after administrative writes; not after a commit that changed no page;
// never after the subscription ended.
TEST_CASE("commit listeners hear of commits that move the feed and of administrative writes", "[store][wait]") {
    temp_dir dir;
    auto s = open(dir.path / "central.db");
    const auto dev = add(*s);
    std::atomic<int> told{0};
    auto watch = s->watch_commits([&] { ++told; });
    REQUIRE(watch);

    push_ok(*s, dev, batch("b1", {change("c1", "m-1", 0, member("Nguyễn Văn An"))}));
    // Told before the push's answer: the writer tells, then answers.
    CHECK(told == 1);

    // A repeat is answered from `decided`: nothing moved.
    push_ok(*s, dev, batch("b1", {change("c1", "m-1", 0, member("Nguyễn Văn An"))}));
    CHECK(told == 1);

    REQUIRE(s->put_unit({"xa-binh-hoa", "", "Xã Bình Hòa", "commune", ""}).has_value());
    CHECK(told == 2);

    push_ok(*s, dev, batch("b2", {change("c2", "m-2", 0, member("Trần Thị Bé"))}));
    CHECK(told == 3);

    watch.reset();
    push_ok(*s, dev, batch("b3", {change("c3", "m-3", 0, member("Lê Văn Tám"))}));
    CHECK(told == 3);
}
