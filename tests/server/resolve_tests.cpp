// Conflict review in the store: every choice, stale refusals, order, scope and roles.

#include <catch2/catch.hpp>
#include "store_under_test.hpp"

#include <fieldsync/server/store.hpp>

#include <filesystem>
#include <random>

namespace fs = std::filesystem;
namespace proto = fieldsync::protocol;
using fieldsync::server::device;
using fieldsync::server::device_role;
using fieldsync::server::resolution;
using fieldsync::server::store;
using proto::json;

namespace {

struct review_fixture {
    fs::path dir;
    std::unique_ptr<store> s;
    device secretary, member, reviewer, field_dev, other_commune;
    int n = 0;

    review_fixture() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("fieldsync-review-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
        fieldsync::server::store_options o;
        o.path = (dir / "central.db").string();
        auto opened = fieldsync::test::open_store_under_test(o);
        REQUIRE(opened.has_value());
        s = std::move(opened).value();
        REQUIRE(s->put_unit({"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""}).has_value());
        REQUIRE(s->put_unit({"binh-hoa", "giong-trom", "Đảng bộ xã Bình Hòa", "commune", ""}).has_value());
        REQUIRE(s->put_unit({"chau-binh", "giong-trom", "Đảng bộ xã Châu Bình", "commune", ""}).has_value());
        REQUIRE(s->put_unit({"ap-1", "binh-hoa", "Chi bộ ấp 1", "cell", ""}).has_value());
        secretary = add("ap-1", device_role::field);
        member = add("ap-1", device_role::field);
        field_dev = add("binh-hoa", device_role::field);
        reviewer = add("binh-hoa", device_role::reviewer);
        other_commune = add("chau-binh", device_role::reviewer);
    }
    ~review_fixture() {
        s.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    device add(const std::string& unit, device_role role) {
        auto d = s->add_device("máy " + unit, unit, role);
        REQUIRE(d.has_value());
        auto all = s->devices();
        for (const auto& x : *all)
            if (x.id == d->first.id) return x;
        FAIL("device not listed");
        return {};
    }
    proto::change_result write(const device& d, std::int64_t base, json data, bool del = false) {
        proto::change_set cs;
        cs.batch_id = "b" + std::to_string(n);
        proto::change_entry e;
        e.c.change_id = "c" + std::to_string(n++);
        e.c.collection = "registrations";
        e.c.id = "dk-2014-an";
        e.c.unit_id = "ap-1";
        e.c.op = del ? proto::op_kind::del : proto::op_kind::put;
        e.c.base_version = base;
        e.c.data = del ? json(nullptr) : std::move(data);
        cs.changes.push_back(std::move(e));
        auto r = s->push(d, std::move(cs));
        REQUIRE(r.has_value());
        return (*r)[0];
    }
    json head() { return (*s->get("registrations", "dk-2014-an"))->data; }
    std::int64_t version() { return (*s->get("registrations", "dk-2014-an"))->version; }

    // Version 1 by the secretary; then both edit from it: the secretary changes the notes
    // and the status, the member the notes, the status and the theme (theme does not collide).
    std::string make_conflict() {
        write(secretary, 0, base_record());
        auto a = base_record();
        a["notes"] = "Chi bộ đề nghị cụ thể hơn";
        a["status"] = "reviewed";
        REQUIRE(write(secretary, 1, a).status == proto::change_status::applied);
        auto b = base_record();
        b["notes"] = "Tôi đã bổ sung việc làm cụ thể";
        b["status"] = "submitted";
        b["theme"] = "nói đi đôi với làm";
        const auto r = write(member, 1, b);
        REQUIRE(r.status == proto::change_status::conflict);
        return *r.conflict_id;
    }
    static json base_record() {
        return {{"member", "m-an"},
                {"year", 2014},
                {"commitments", {"Rời khỏi phòng thì tắt quạt máy, tắt đèn"}},
                {"status", "draft"},
                {"notes", ""}};
    }
};

resolution choose(resolution::choice how, std::int64_t head_version) {
    resolution r;
    r.how = how;
    r.head_version = head_version;
    return r;
}

}  // namespace

TEST_CASE("keep head: colliding fields keep the head, the rest merges, the conflict closes", "[store][review]") {
    review_fixture t;
    const auto id = t.make_conflict();
    auto shown = t.s->conflict(id);
    REQUIRE(shown->has_value());
    CHECK((*shown)->current_version == 2);
    CHECK((*shown)->fields == std::vector<std::string>{"/notes", "/status"});

    auto r = t.s->resolve(t.reviewer, id, choose(resolution::choice::keep_head, 2));
    REQUIRE(r.has_value());
    CHECK(r->status == "resolved");
    CHECK(r->closed_by == t.reviewer.id);
    CHECK(r->resolution["choice"] == "keep_head");
    CHECK(r->resolution["version"] == 3);
    CHECK(t.version() == 3);
    CHECK(t.head()["notes"] == "Chi bộ đề nghị cụ thể hơn");
    CHECK(t.head()["status"] == "reviewed");
    CHECK(t.head()["theme"] == "nói đi đôi với làm");  // undisputed: merged in
    auto h = t.s->history("registrations", "dk-2014-an");
    REQUIRE(h->size() == 3);
    CHECK(h->back().how == "resolved");
    CHECK(h->back().device_id == t.reviewer.id);
    CHECK(h->back().lost["/notes"] == "Tôi đã bổ sung việc làm cụ thể");
    // Neither text is lost: the conflict keeps the incoming side whole.
    CHECK((*t.s->conflict(id))->incoming["notes"] == "Tôi đã bổ sung việc làm cụ thể");
    // It is closed, and stays readable.
    auto again = t.s->resolve(t.reviewer, id, choose(resolution::choice::take_incoming, 3));
    REQUIRE_FALSE(again.has_value());
    CHECK(again.err().code == proto::errc::conflict_closed);
    CHECK(t.s->conflicts("open", 10, 0)->empty());
    CHECK(t.s->conflicts("resolved", 10, 0)->size() == 1);
}

TEST_CASE("take incoming, pick per field, and an edited value", "[store][review]") {
    SECTION("take incoming") {
        review_fixture t;
        const auto id = t.make_conflict();
        REQUIRE(t.s->resolve(t.reviewer, id, choose(resolution::choice::take_incoming, 2)).has_value());
        CHECK(t.head()["notes"] == "Tôi đã bổ sung việc làm cụ thể");
        CHECK(t.head()["status"] == "submitted");
    }
    SECTION("pick per field") {
        review_fixture t;
        const auto id = t.make_conflict();
        auto r = choose(resolution::choice::pick, 2);
        r.picks = {{"/notes", "incoming"}, {"/status", "head"}};
        auto done = t.s->resolve(t.reviewer, id, r);
        REQUIRE(done.has_value());
        CHECK(t.head()["notes"] == "Tôi đã bổ sung việc làm cụ thể");
        CHECK(t.head()["status"] == "reviewed");
        CHECK(done->resolution["picks"]["/notes"] == "incoming");
        auto h = t.s->history("registrations", "dk-2014-an");
        CHECK(h->back().lost["/notes"] == "Chi bộ đề nghị cụ thể hơn");
        CHECK(h->back().lost["/status"] == "submitted");
    }
    SECTION("a pick missing, unknown or not head/incoming is refused and writes nothing") {
        review_fixture t;
        const auto id = t.make_conflict();
        auto r = choose(resolution::choice::pick, 2);
        r.picks = {{"/notes", "incoming"}};
        auto missing = t.s->resolve(t.reviewer, id, r);
        REQUIRE_FALSE(missing.has_value());
        CHECK_THAT(missing.err().message, Catch::Contains("/status"));
        r.picks = {{"/notes", "incoming"}, {"/status", "head"}, {"/year", "head"}};
        CHECK_FALSE(t.s->resolve(t.reviewer, id, r).has_value());
        r.picks = {{"/notes", "incoming"}, {"/status", "both"}};
        CHECK_FALSE(t.s->resolve(t.reviewer, id, r).has_value());
        CHECK(t.version() == 2);
        CHECK((*t.s->conflict(id))->status == "open");
    }
    SECTION("an edited value, checked against the schema") {
        review_fixture t;
        const auto id = t.make_conflict();
        auto r = choose(resolution::choice::edit, 2);
        r.edited = review_fixture::base_record();
        r.edited["status"] = "vague";
        r.edited["notes"] = "Đăng ký còn chung chung, chưa cụ thể";
        r.note = "Thống nhất tại buổi sinh hoạt chi bộ";
        r.edited["year"] = "2014";  // a string: breaks the schema
        auto bad = t.s->resolve(t.reviewer, id, r);
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.err().code == proto::errc::schema_violation);
        CHECK(t.version() == 2);
        r.edited["year"] = 2014;
        auto ok = t.s->resolve(t.reviewer, id, r);
        REQUIRE(ok.has_value());
        CHECK(t.head()["notes"] == "Đăng ký còn chung chung, chưa cụ thể");
        CHECK(ok->resolution["note"] == "Thống nhất tại buổi sinh hoạt chi bộ");
    }
}

TEST_CASE("a resolution against a head that moved is refused as stale", "[store][review]") {
    review_fixture t;
    const auto id = t.make_conflict();
    auto moved = t.head();
    moved["commitments"] = {"Không sử dụng máy in cho việc riêng"};
    REQUIRE(t.write(t.secretary, 2, moved).status == proto::change_status::applied);
    auto stale = t.s->resolve(t.reviewer, id, choose(resolution::choice::keep_head, 2));
    REQUIRE_FALSE(stale.has_value());
    CHECK(stale.err().code == proto::errc::stale);
    CHECK(t.version() == 3);
    // Shown again, decided on the current head: the new commitment is kept.
    CHECK((*t.s->conflict(id))->current_version == 3);
    REQUIRE(t.s->resolve(t.reviewer, id, choose(resolution::choice::take_incoming, 3)).has_value());
    CHECK(t.head()["commitments"][0] == "Không sử dụng máy in cho việc riêng");
    CHECK(t.head()["notes"] == "Tôi đã bổ sung việc làm cụ thể");
}

TEST_CASE("dismissing closes without a new version", "[store][review]") {
    review_fixture t;
    const auto id = t.make_conflict();
    auto r = choose(resolution::choice::dismiss, 2);
    r.note = "trùng lặp";
    auto done = t.s->resolve(t.reviewer, id, r);
    REQUIRE(done.has_value());
    CHECK(done->status == "dismissed");
    CHECK(t.version() == 2);
    CHECK((*t.s->conflict(id))->resolution["note"] == "trùng lặp");
}

TEST_CASE("conflicts of one record are resolved in order", "[store][review]") {
    review_fixture t;
    const auto first = t.make_conflict();
    auto c = review_fixture::base_record();
    c["notes"] = "Ý kiến thứ ba";
    c["status"] = "vague";
    const auto second = t.write(t.member, 1, c);
    REQUIRE(second.status == proto::change_status::conflict);
    auto early = t.s->resolve(t.reviewer, *second.conflict_id, choose(resolution::choice::keep_head, 2));
    REQUIRE_FALSE(early.has_value());
    CHECK_THAT(early.err().message, Catch::Contains(first));
    REQUIRE(t.s->resolve(t.reviewer, first, choose(resolution::choice::keep_head, 2)).has_value());
    REQUIRE(t.s->resolve(t.reviewer, *second.conflict_id, choose(resolution::choice::take_incoming, 3)).has_value());
    CHECK(t.head()["notes"] == "Ý kiến thứ ba");
    CHECK(t.version() == 4);
}

TEST_CASE("only reviewers of the conflict's subtree resolve it", "[store][review]") {
    review_fixture t;
    const auto id = t.make_conflict();
    auto field = t.s->resolve(t.field_dev, id, choose(resolution::choice::keep_head, 2));
    REQUIRE_FALSE(field.has_value());
    CHECK(field.err().code == proto::errc::forbidden);
    auto elsewhere = t.s->resolve(t.other_commune, id, choose(resolution::choice::keep_head, 2));
    REQUIRE_FALSE(elsewhere.has_value());
    CHECK(elsewhere.err().code == proto::errc::not_found);
    CHECK((*t.s->conflict(id))->status == "open");
}

TEST_CASE("a delete against an edit is resolved whole", "[store][review]") {
    review_fixture t;
    t.write(t.secretary, 0, review_fixture::base_record());
    auto edited = review_fixture::base_record();
    edited["notes"] = "Đã nhận xét";
    REQUIRE(t.write(t.secretary, 1, edited).status == proto::change_status::applied);
    const auto r = t.write(t.member, 1, nullptr, true);
    REQUIRE(r.status == proto::change_status::conflict);
    auto pick = choose(resolution::choice::pick, 2);
    pick.picks = {{"", "incoming"}};
    CHECK_FALSE(t.s->resolve(t.reviewer, *r.conflict_id, pick).has_value());
    REQUIRE(t.s->resolve(t.reviewer, *r.conflict_id, choose(resolution::choice::take_incoming, 2)).has_value());
    auto head = t.s->get("registrations", "dk-2014-an");
    CHECK((*head)->deleted);
    CHECK((*head)->version == 3);
    CHECK(t.s->history("registrations", "dk-2014-an")->back().lost[""]["notes"] == "Đã nhận xét");
}

TEST_CASE("preview computes what resolve writes, by the same code, and writes nothing", "[store][review][preview]") {
    review_fixture t;
    const auto id = t.make_conflict();
    const auto feed_before = t.s->pull(0, 1000)->last_seq;

    auto pick = choose(resolution::choice::pick, 2);
    pick.picks = {{"/notes", "incoming"}, {"/status", "head"}};
    pick.note = "gộp ý hai bên";
    auto p = t.s->preview(t.reviewer, id, pick);
    REQUIRE(p.has_value());
    CHECK_FALSE(p->deleted);
    CHECK(p->head_version == 2);
    CHECK(p->record["notes"] == "Tôi đã bổ sung việc làm cụ thể");
    CHECK(p->record["status"] == "reviewed");
    CHECK(p->record["theme"] == "nói đi đôi với làm");
    CHECK(p->changed == std::vector<std::string>{"/notes", "/theme"});
    // Nothing moved: the head, history, the conflict, the feed.
    CHECK(t.version() == 2);
    CHECK(t.s->history("registrations", "dk-2014-an")->size() == 2);
    CHECK((*t.s->conflict(id))->status == "open");
    CHECK(t.s->pull(0, 1000)->last_seq == feed_before);

    // The same refusals as resolve.
    CHECK(t.s->preview(t.field_dev, id, pick).err().code == proto::errc::forbidden);
    CHECK(t.s->preview(t.other_commune, id, pick).err().code == proto::errc::not_found);
    CHECK(t.s->preview(t.reviewer, id, choose(resolution::choice::keep_head, 1)).err().code == proto::errc::stale);

    REQUIRE(t.s->resolve(t.reviewer, id, pick).has_value());
    CHECK(t.head() == p->record);
    CHECK(t.s->preview(t.reviewer, id, choose(resolution::choice::keep_head, 3)).err().code ==
          proto::errc::conflict_closed);
}

TEST_CASE("conflicts carry names: the record's title, the sender, the unit and its path", "[store][review][names]") {
    review_fixture t;
    const auto id = t.make_conflict();
    const auto c = *t.s->conflict(id);
    REQUIRE(c);
    CHECK(c->title == "2014");  // no member record m-an: its name is not known
    CHECK(c->device_name == std::optional<std::string>("máy ap-1"));
    CHECK(c->unit_name == std::optional<std::string>("Chi bộ ấp 1"));
    CHECK(c->path_names == std::vector<std::string>{"Huyện ủy Giồng Trôm", "Đảng bộ xã Bình Hòa", "Chi bộ ấp 1"});
    const auto list = t.s->conflicts(fieldsync::server::scope::of(t.reviewer), fieldsync::server::conflict_filter{});
    REQUIRE(list.has_value());
    REQUIRE(list->size() == 1);
    CHECK(list->front().path_names == c->path_names);
    CHECK(list->front().title == c->title);
}
