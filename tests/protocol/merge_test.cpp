// protocol::decide and protocol::merge3: every branch of the merge rule (design.md, "The merge
// rule"; SPEC.md, "The merge rule"), with the records of domain.md.
#include <fieldsync/protocol/merge.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace fp = fieldsync::protocol;
using fp::json;
using fp::merge_kind;
using fp::merge_policy;

namespace {

fp::head_state live_head(std::int64_t version, json data, fp::hlc stamp = {1'700'000'000'000, 0},
                         std::string writer = "dev-xa-binh-hoa") {
    fp::head_state h;
    h.version = version;
    h.state = {false, std::move(data)};
    h.stamp = stamp;
    h.writer = std::move(writer);
    return h;
}

fp::head_state deleted_head(std::int64_t version, fp::hlc stamp = {1'700'000'000'000, 0},
                            std::string writer = "dev-xa-binh-hoa") {
    fp::head_state h;
    h.version = version;
    h.state = {true, nullptr};
    h.stamp = stamp;
    h.writer = std::move(writer);
    return h;
}

fp::incoming_change make_change(fp::op_kind op, std::int64_t base_version, const json* data,
                                fp::hlc stamp = {1'700'000'000'500, 0}, std::string writer = "dev-chi-bo-ap-3") {
    fp::incoming_change c;
    c.op = op;
    c.base_version = base_version;
    c.data = data;
    c.stamp = stamp;
    c.writer = std::move(writer);
    return c;
}

fp::version_state live(json data) { return {false, std::move(data)}; }

// A registration as a cell secretary would type it (domain.md).
json registration() {
    return {{"member", "mem-nguyen-van-an"},
            {"year", 2014},
            {"theme", "Nêu cao tinh thần trách nhiệm, chống chủ nghĩa cá nhân, nói đi đôi với làm"},
            {"commitments", {"Rời khỏi phòng thì tắt quạt máy, tắt đèn"}},
            {"status", "draft"},
            {"notes", "Đăng ký ngày 30/07/2014"}};
}

}  // namespace

TEST_CASE("to_status maps every merge kind to its wire status", "[protocol][merge]") {
    CHECK(fp::to_status(merge_kind::fast_forward) == fp::change_status::applied);
    CHECK(fp::to_status(merge_kind::merged) == fp::change_status::merged);
    CHECK(fp::to_status(merge_kind::unchanged) == fp::change_status::merged);
    CHECK(fp::to_status(merge_kind::conflict) == fp::change_status::conflict);
    CHECK(fp::to_status(merge_kind::rejected) == fp::change_status::rejected);
}

TEST_CASE("a new record fast-forwards", "[protocol][merge]") {
    const json data = registration();
    const auto o = fp::decide(std::nullopt, std::nullopt, make_change(fp::op_kind::put, 0, &data), merge_policy::review);
    CHECK(o.kind == merge_kind::fast_forward);
    CHECK_FALSE(o.result.deleted);
    CHECK(o.result.data == data);
    CHECK(o.incoming.data == data);
    CHECK(o.collisions.empty());
    CHECK(o.lost.empty());
    CHECK_FALSE(o.err);
}

TEST_CASE("a new record with a base_version is base_ahead", "[protocol][merge]") {
    const json data = registration();
    const auto o = fp::decide(std::nullopt, std::nullopt, make_change(fp::op_kind::put, 3, &data), merge_policy::review);
    CHECK(o.kind == merge_kind::rejected);
    REQUIRE(o.err);
    CHECK(o.err->code == fp::errc::base_ahead);
    CHECK_THAT(o.err->message, Catch::Matchers::Contains("3"));
}

TEST_CASE("an edit of the head itself fast-forwards", "[protocol][merge]") {
    const auto head = live_head(3, registration());
    json data = registration();
    data["status"] = "submitted";
    data["notes"] = "Bổ sung: không sử dụng máy in cho việc riêng";
    const auto o = fp::decide(head, std::nullopt, make_change(fp::op_kind::put, 3, &data), merge_policy::review);
    CHECK(o.kind == merge_kind::fast_forward);
    CHECK(o.result.data == data);
    CHECK(o.collisions.empty());
}

TEST_CASE("a put with the version of a deleted head resurrects the record", "[protocol][merge]") {
    const auto head = deleted_head(4);
    const json data = registration();
    const auto o = fp::decide(head, std::nullopt, make_change(fp::op_kind::put, 4, &data), merge_policy::review);
    CHECK(o.kind == merge_kind::fast_forward);
    CHECK_FALSE(o.result.deleted);
    CHECK(o.result.data == data);
}

TEST_CASE("a delete of the head itself fast-forwards to a tombstone", "[protocol][merge]") {
    const auto head = live_head(2, registration());
    const auto o = fp::decide(head, std::nullopt, make_change(fp::op_kind::del, 2, nullptr), merge_policy::review);
    CHECK(o.kind == merge_kind::fast_forward);
    CHECK(o.result.deleted);
    CHECK(o.result.data.is_null());
    CHECK(o.incoming.deleted);
}

TEST_CASE("concurrent edits of different fields merge", "[protocol][merge]") {
    const json base = registration();
    json head_data = base;
    head_data["notes"] = "Chi bộ đã nhận xét: cụ thể, sát với công việc";
    json incoming = base;
    incoming["status"] = "submitted";
    incoming["commitments"].push_back("Không sử dụng máy in cho việc riêng");

    for (const auto policy : {merge_policy::review, merge_policy::lww}) {
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming), policy);
        CHECK(o.kind == merge_kind::merged);
        CHECK(fp::to_status(o.kind) == fp::change_status::merged);
        CHECK(o.collisions.empty());
        CHECK(o.lost.empty());
        CHECK(o.result.data["notes"] == head_data["notes"]);
        CHECK(o.result.data["status"] == "submitted");
        CHECK(o.result.data["commitments"] == incoming["commitments"]);
        CHECK(o.result.data["member"] == base["member"]);
        CHECK(o.result.data.size() == base.size());
        CHECK(o.incoming.data == incoming);
    }
}

TEST_CASE("a field added on one side and another changed on the other merge", "[protocol][merge]") {
    const json base = registration();
    json head_data = base;
    head_data["status"] = "reviewed";
    json incoming = base;
    incoming["reviewed_by"] = "Trần Thị Mai";
    const auto o =
        fp::decide(live_head(5, head_data), live(base), make_change(fp::op_kind::put, 4, &incoming), merge_policy::review);
    CHECK(o.kind == merge_kind::merged);
    CHECK(o.result.data["status"] == "reviewed");
    CHECK(o.result.data["reviewed_by"] == "Trần Thị Mai");
}

TEST_CASE("the same field changed to the same value is no collision", "[protocol][merge]") {
    const json base = registration();
    json head_data = base;
    head_data["status"] = "submitted";

    SECTION("nothing else changed: the head stays (unchanged, answered merged)") {
        const json incoming = head_data;
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::unchanged);
        CHECK(fp::to_status(o.kind) == fp::change_status::merged);
        CHECK(o.result.data == head_data);
        CHECK(o.collisions.empty());
    }
    SECTION("with another field changed: merged") {
        json incoming = head_data;
        incoming["notes"] = "Đã nộp cho chi bộ";
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::merged);
        CHECK(o.collisions.empty());
        CHECK(o.result.data["status"] == "submitted");
        CHECK(o.result.data["notes"] == "Đã nộp cho chi bộ");
    }
}

TEST_CASE("the same field changed to different values, review policy: conflict", "[protocol][merge]") {
    const json base = registration();
    json head_data = base;
    head_data["notes"] = "Nội dung còn chung chung, chưa cụ thể";
    head_data["status"] = "vague";
    json incoming = base;
    incoming["notes"] = "Đã sửa: tiết kiệm giấy, mực in, điện";
    incoming["theme"] = "Nói đi đôi với làm";

    const auto o =
        fp::decide(live_head(3, head_data), live(base), make_change(fp::op_kind::put, 2, &incoming), merge_policy::review);
    CHECK(o.kind == merge_kind::conflict);
    CHECK(fp::to_status(o.kind) == fp::change_status::conflict);
    CHECK(o.collisions == std::vector<std::string>{"/notes"});
    // The head stays whole and the incoming record is kept whole for the reviewer.
    CHECK_FALSE(o.result.deleted);
    CHECK(o.result.data == head_data);
    CHECK(o.incoming.data == incoming);
    CHECK(o.lost.empty());
    CHECK_FALSE(o.err);
}

TEST_CASE("the same field changed to different values, lww policy: later HLC wins", "[protocol][merge]") {
    const json base = registration();
    json head_data = base;
    head_data["notes"] = "Ghi chú của chi bộ";
    json incoming = base;
    incoming["notes"] = "Ghi chú của đảng viên";
    incoming["status"] = "submitted";

    SECTION("incoming is later: its value wins, the head's value is lost") {
        const auto o = fp::decide(live_head(3, head_data, {1000, 5}), live(base),
                                  make_change(fp::op_kind::put, 2, &incoming, {1000, 6}), merge_policy::lww);
        CHECK(o.kind == merge_kind::merged);
        CHECK(o.collisions == std::vector<std::string>{"/notes"});
        CHECK(o.result.data["notes"] == "Ghi chú của đảng viên");
        CHECK(o.result.data["status"] == "submitted");
        CHECK(o.lost == json{{"/notes", "Ghi chú của chi bộ"}});
    }
    SECTION("incoming is earlier: the head's value stays, the incoming value is lost") {
        const auto o = fp::decide(live_head(3, head_data, {2000, 0}), live(base),
                                  make_change(fp::op_kind::put, 2, &incoming, {1999, 99}), merge_policy::lww);
        CHECK(o.kind == merge_kind::merged);  // status still merged in: non-colliding field
        CHECK(o.result.data["notes"] == "Ghi chú của chi bộ");
        CHECK(o.result.data["status"] == "submitted");
        CHECK(o.lost == json{{"/notes", "Ghi chú của đảng viên"}});
    }
    SECTION("incoming is earlier and changed nothing else: the head's content stays") {
        // Still a new version (merged), so that history keeps the value that lost.
        json only_notes = base;
        only_notes["notes"] = "Ghi chú của đảng viên";
        const auto o = fp::decide(live_head(3, head_data, {2000, 0}), live(base),
                                  make_change(fp::op_kind::put, 2, &only_notes, {1500, 0}), merge_policy::lww);
        CHECK(o.kind == merge_kind::merged);
        CHECK(o.result.data == head_data);
        CHECK(o.lost == json{{"/notes", "Ghi chú của đảng viên"}});
    }
}

TEST_CASE("lww with equal HLCs is decided by the writer id", "[protocol][merge]") {
    const json base = registration();
    json head_data = base;
    head_data["notes"] = "A";
    json incoming = base;
    incoming["notes"] = "B";
    const fp::hlc same{5000, 1};

    const auto later_writer = fp::decide(live_head(2, head_data, same, "dev-a"), live(base),
                                         make_change(fp::op_kind::put, 1, &incoming, same, "dev-b"), merge_policy::lww);
    CHECK(later_writer.result.data["notes"] == "B");
    CHECK(later_writer.lost == json{{"/notes", "A"}});

    const auto earlier_writer = fp::decide(live_head(2, head_data, same, "dev-b"), live(base),
                                           make_change(fp::op_kind::put, 1, &incoming, same, "dev-a"), merge_policy::lww);
    CHECK(earlier_writer.result.data["notes"] == "A");
    CHECK(earlier_writer.lost == json{{"/notes", "B"}});

    // The same writer and clock (a replay) never overwrites the head.
    const auto same_writer = fp::decide(live_head(2, head_data, same, "dev-a"), live(base),
                                        make_change(fp::op_kind::put, 1, &incoming, same, "dev-a"), merge_policy::lww);
    CHECK(same_writer.result.data["notes"] == "A");
}

TEST_CASE("nested objects merge by field", "[protocol][merge]") {
    const json base = {{"unit", "xa-binh-hoa"},
                       {"date", "2014-07-30"},
                       {"attendance", {{"invited", 40}, {"attended", 35}, {"by_audience", {{"teachers", 20}}}}}};
    SECTION("different nested fields: merged") {
        json head_data = base;
        head_data["attendance"]["invited"] = 42;
        json incoming = base;
        incoming["attendance"]["by_audience"]["farmers"] = 15;
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::merged);
        CHECK(o.result.data["attendance"]["invited"] == 42);
        CHECK(o.result.data["attendance"]["attended"] == 35);
        CHECK(o.result.data["attendance"]["by_audience"] == json{{"teachers", 20}, {"farmers", 15}});
    }
    SECTION("the same nested field: the collision names the nested pointer") {
        json head_data = base;
        head_data["attendance"]["by_audience"]["teachers"] = 21;
        json incoming = base;
        incoming["attendance"]["by_audience"]["teachers"] = 19;
        incoming["attendance"]["invited"] = 41;
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::conflict);
        CHECK(o.collisions == std::vector<std::string>{"/attendance/by_audience/teachers"});
        CHECK(o.result.data == head_data);

        const auto lww = fp::decide(live_head(2, head_data, {1, 0}), live(base),
                                    make_change(fp::op_kind::put, 1, &incoming, {2, 0}), merge_policy::lww);
        CHECK(lww.kind == merge_kind::merged);
        CHECK(lww.result.data["attendance"]["by_audience"]["teachers"] == 19);
        CHECK(lww.result.data["attendance"]["invited"] == 41);
        CHECK(lww.lost == json{{"/attendance/by_audience/teachers", 21}});
    }
    SECTION("both sides add the same nested object with different fields: merged by field") {
        json head_data = base;
        head_data["location"] = {{"hamlet", "ấp 3"}};
        json incoming = base;
        incoming["location"] = {{"commune", "Bình Hòa"}};
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::merged);
        CHECK(o.result.data["location"] == json{{"hamlet", "ấp 3"}, {"commune", "Bình Hòa"}});
    }
    SECTION("an object replacing a scalar on both sides differently collides as a value") {
        json base2 = base;
        base2["location"] = "ấp 3";
        json head_data = base2;
        head_data["location"] = {{"hamlet", "ấp 3"}};
        json incoming = base2;
        incoming["location"] = {{"hamlet", "ấp 4"}};
        const auto o = fp::decide(live_head(2, head_data), live(base2), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::conflict);
        CHECK(o.collisions == std::vector<std::string>{"/location"});
    }
}

TEST_CASE("arrays are values, never merged by element", "[protocol][merge]") {
    const json base = registration();
    json head_data = base;
    head_data["commitments"].push_back("Tiết kiệm giấy, mực in, điện");
    SECTION("different appends collide on the whole array") {
        json incoming = base;
        incoming["commitments"].push_back("Việc hôm nay, không để ngày mai");
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::conflict);
        CHECK(o.collisions == std::vector<std::string>{"/commitments"});

        const auto lww = fp::decide(live_head(2, head_data, {1, 0}), live(base),
                                    make_change(fp::op_kind::put, 1, &incoming, {2, 0}), merge_policy::lww);
        CHECK(lww.result.data["commitments"] == incoming["commitments"]);
        CHECK(lww.lost == json{{"/commitments", head_data["commitments"]}});
    }
    SECTION("the same array on both sides is fine") {
        json incoming = head_data;
        incoming["status"] = "submitted";
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::merged);
        CHECK(o.result.data["commitments"] == head_data["commitments"]);
        CHECK(o.result.data["status"] == "submitted");
    }
}

TEST_CASE("a field removed on one side", "[protocol][merge]") {
    const json base = registration();
    SECTION("and changed on the other: collision") {
        json head_data = base;
        head_data.erase("notes");
        json incoming = base;
        incoming["notes"] = "Đã bổ sung nội dung cụ thể";
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::conflict);
        CHECK(o.collisions == std::vector<std::string>{"/notes"});

        // lww where the removing side (head) loses: the "lost" value says it was absent.
        const auto lww = fp::decide(live_head(2, head_data, {1, 0}), live(base),
                                    make_change(fp::op_kind::put, 1, &incoming, {2, 0}), merge_policy::lww);
        CHECK(lww.result.data["notes"] == "Đã bổ sung nội dung cụ thể");
        CHECK(lww.lost == json{{"/notes", "(absent)"}});

        // lww where the removing side (head) wins: the field stays removed.
        const auto lww2 = fp::decide(live_head(2, head_data, {3, 0}), live(base),
                                     make_change(fp::op_kind::put, 1, &incoming, {2, 0}), merge_policy::lww);
        CHECK_FALSE(lww2.result.data.contains("notes"));
        CHECK(lww2.lost == json{{"/notes", "Đã bổ sung nội dung cụ thể"}});
    }
    SECTION("and unchanged on the other: removed") {
        json head_data = base;
        head_data["status"] = "submitted";
        json incoming = base;
        incoming.erase("notes");
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::merged);
        CHECK_FALSE(o.result.data.contains("notes"));
        CHECK(o.result.data["status"] == "submitted");
    }
    SECTION("removed on both sides: removed, no collision") {
        json head_data = base;
        head_data.erase("notes");
        head_data["status"] = "submitted";
        json incoming = base;
        incoming.erase("notes");
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::put, 1, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::unchanged);
        CHECK(o.result.data == head_data);
    }
}

TEST_CASE("a delete against a changed head collides on the whole record", "[protocol][merge]") {
    const json base = registration();
    json head_data = base;
    head_data["status"] = "reviewed";
    const auto del = [](fp::hlc stamp) { return make_change(fp::op_kind::del, 1, nullptr, stamp); };

    const auto review = fp::decide(live_head(2, head_data, {10, 0}), live(base), del({20, 0}), merge_policy::review);
    CHECK(review.kind == merge_kind::conflict);
    CHECK(review.collisions == std::vector<std::string>{""});
    CHECK_FALSE(review.result.deleted);
    CHECK(review.result.data == head_data);
    CHECK(review.incoming.deleted);

    const auto lww_wins = fp::decide(live_head(2, head_data, {10, 0}), live(base), del({20, 0}), merge_policy::lww);
    CHECK(lww_wins.kind == merge_kind::merged);
    CHECK(lww_wins.result.deleted);
    CHECK(lww_wins.lost == json{{"", head_data}});

    const auto lww_loses = fp::decide(live_head(2, head_data, {30, 0}), live(base), del({20, 0}), merge_policy::lww);
    CHECK(lww_loses.kind == merge_kind::merged);  // a new version that keeps the lost delete
    CHECK_FALSE(lww_loses.result.deleted);
    CHECK(lww_loses.result.data == head_data);
    CHECK(lww_loses.lost == json{{"", "(deleted)"}});
}

TEST_CASE("a delete against a head whose content equals the base applies", "[protocol][merge]") {
    // Version 2 changed the status and version 3 changed it back: the content the deleting
    // device saw is still the head's content.
    const json base = registration();
    const auto o = fp::decide(live_head(3, base), live(base), make_change(fp::op_kind::del, 1, nullptr),
                              merge_policy::review);
    CHECK(o.kind == merge_kind::merged);
    CHECK(o.result.deleted);
    CHECK(o.collisions.empty());
}

TEST_CASE("an edit against a deleted head collides on the whole record", "[protocol][merge]") {
    const json base = registration();
    json incoming = base;
    incoming["notes"] = "Sửa sau khi họp chi bộ ấp 3";

    const auto review = fp::decide(deleted_head(2, {10, 0}), live(base),
                                   make_change(fp::op_kind::put, 1, &incoming, {20, 0}), merge_policy::review);
    CHECK(review.kind == merge_kind::conflict);
    CHECK(review.collisions == std::vector<std::string>{""});
    CHECK(review.result.deleted);
    CHECK(review.incoming.data == incoming);

    const auto lww_wins = fp::decide(deleted_head(2, {10, 0}), live(base),
                                     make_change(fp::op_kind::put, 1, &incoming, {20, 0}), merge_policy::lww);
    CHECK(lww_wins.kind == merge_kind::merged);
    CHECK_FALSE(lww_wins.result.deleted);
    CHECK(lww_wins.result.data == incoming);
    CHECK(lww_wins.lost == json{{"", "(deleted)"}});

    const auto lww_loses = fp::decide(deleted_head(2, {30, 0}), live(base),
                                      make_change(fp::op_kind::put, 1, &incoming, {20, 0}), merge_policy::lww);
    CHECK(lww_loses.kind == merge_kind::merged);  // a new version that keeps the lost edit
    CHECK(lww_loses.result.deleted);
    CHECK(lww_loses.lost == json{{"", incoming}});
}

TEST_CASE("an edit made on a tombstone against a later tombstone applies", "[protocol][merge]") {
    const json incoming = registration();
    const auto o = fp::decide(deleted_head(4), fp::version_state{true, nullptr},
                              make_change(fp::op_kind::put, 2, &incoming), merge_policy::review);
    CHECK(o.kind == merge_kind::merged);
    CHECK_FALSE(o.result.deleted);
    CHECK(o.result.data == incoming);
}

TEST_CASE("a delete against a deleted head is unchanged", "[protocol][merge]") {
    const json base = registration();
    SECTION("concurrent") {
        const auto o = fp::decide(deleted_head(2), live(base), make_change(fp::op_kind::del, 1, nullptr),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::unchanged);
        CHECK(fp::to_status(o.kind) == fp::change_status::merged);
        CHECK(o.result.deleted);
        CHECK(o.collisions.empty());
    }
    SECTION("of the head itself") {
        const auto o = fp::decide(deleted_head(2), std::nullopt, make_change(fp::op_kind::del, 2, nullptr),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::unchanged);
        CHECK(o.result.deleted);
    }
}

TEST_CASE("base_version 0 for an existing record merges against an empty base", "[protocol][merge]") {
    // Two devices created the same id offline.
    const json head_data = {{"name", "Nguyễn Văn An"}, {"cell", "chi-bo-ap-3"}, {"role", "Bí thư"}};
    SECTION("fields both set differently collide; equal and one-sided fields merge") {
        const json incoming = {{"name", "Nguyễn Văn Ân"}, {"cell", "chi-bo-ap-3"}, {"joined", "1998-05-19"}};
        const auto o = fp::decide(live_head(1, head_data), std::nullopt, make_change(fp::op_kind::put, 0, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::conflict);
        CHECK(o.collisions == std::vector<std::string>{"/name"});
        CHECK(o.result.data == head_data);
    }
    SECTION("no field set differently: merged") {
        const json incoming = {{"name", "Nguyễn Văn An"}, {"joined", "1998-05-19"}};
        const auto o = fp::decide(live_head(1, head_data), std::nullopt, make_change(fp::op_kind::put, 0, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::merged);
        CHECK(o.result.data == json{{"name", "Nguyễn Văn An"}, {"cell", "chi-bo-ap-3"}, {"role", "Bí thư"},
                                    {"joined", "1998-05-19"}});
    }
    SECTION("the base passed by the caller is ignored for base_version 0") {
        const json incoming = {{"name", "Nguyễn Văn Ân"}};
        const auto o = fp::decide(live_head(1, head_data), live(json{{"name", "Nguyễn Văn Ân"}}),
                                  make_change(fp::op_kind::put, 0, &incoming), merge_policy::review);
        CHECK(o.kind == merge_kind::conflict);
        CHECK(o.collisions == std::vector<std::string>{"/name"});
    }
    SECTION("a delete with base_version 0 collides with the existing record") {
        const auto o = fp::decide(live_head(1, head_data), std::nullopt, make_change(fp::op_kind::del, 0, nullptr),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::conflict);
        CHECK(o.collisions == std::vector<std::string>{""});
    }
    SECTION("an existing tombstone: a create collides with it") {
        const json incoming = {{"name", "Nguyễn Văn An"}, {"cell", "chi-bo-ap-3"}};
        const auto o = fp::decide(deleted_head(2), std::nullopt, make_change(fp::op_kind::put, 0, &incoming),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::conflict);
        CHECK(o.collisions == std::vector<std::string>{""});
    }
}

TEST_CASE("base_version newer than the head is base_ahead", "[protocol][merge]") {
    const json data = registration();
    const auto o = fp::decide(live_head(2, data), std::nullopt, make_change(fp::op_kind::put, 5, &data),
                              merge_policy::review);
    CHECK(o.kind == merge_kind::rejected);
    REQUIRE(o.err);
    CHECK(o.err->code == fp::errc::base_ahead);
    CHECK(fp::to_status(o.kind) == fp::change_status::rejected);
}

TEST_CASE("a base_version missing from history is unknown_base", "[protocol][merge]") {
    const json data = registration();
    for (const auto op : {fp::op_kind::put, fp::op_kind::patch, fp::op_kind::del}) {
        const auto o = fp::decide(live_head(5, data), std::nullopt,
                                  make_change(op, 2, op == fp::op_kind::del ? nullptr : &data), merge_policy::review);
        CHECK(o.kind == merge_kind::rejected);
        REQUIRE(o.err);
        CHECK(o.err->code == fp::errc::unknown_base);
        CHECK_THAT(o.err->message, Catch::Matchers::Contains("2"));
    }
}

TEST_CASE("a patch is an RFC 7396 merge patch against base_version", "[protocol][merge][patch]") {
    const json base = registration();
    SECTION("against the head: fast-forward; null removes a field") {
        const json patch = {{"status", "submitted"}, {"notes", nullptr}};
        const auto o = fp::decide(live_head(2, base), std::nullopt, make_change(fp::op_kind::patch, 2, &patch),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::fast_forward);
        json expected = base;
        expected["status"] = "submitted";
        expected.erase("notes");
        CHECK(o.result.data == expected);
        CHECK(o.incoming.data == expected);
    }
    SECTION("nested objects patch by field; arrays are replaced") {
        json with_nested = base;
        with_nested["review"] = {{"by", "Trần Thị Mai"}, {"period", "6 tháng đầu năm"}};
        const json patch = {{"review", {{"period", "cả năm"}, {"by", nullptr}}},
                            {"commitments", {"Tiết kiệm giấy, mực in, điện"}}};
        const auto o = fp::decide(live_head(1, with_nested), std::nullopt, make_change(fp::op_kind::patch, 1, &patch),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::fast_forward);
        CHECK(o.result.data["review"] == json{{"period", "cả năm"}});
        CHECK(o.result.data["commitments"] == json::array({"Tiết kiệm giấy, mực in, điện"}));
        CHECK(o.result.data["member"] == base["member"]);
    }
    SECTION("concurrent: the patch's untouched fields keep the head's changes") {
        json head_data = base;
        head_data["notes"] = "Chi bộ đã nhận xét";
        const json patch = {{"status", "submitted"}};
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::patch, 1, &patch),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::merged);
        CHECK(o.result.data["notes"] == "Chi bộ đã nhận xét");
        CHECK(o.result.data["status"] == "submitted");
    }
    SECTION("concurrent: a patch removing a field the head changed collides") {
        json head_data = base;
        head_data["notes"] = "Chi bộ đã nhận xét";
        const json patch = {{"notes", nullptr}};
        const auto o = fp::decide(live_head(2, head_data), live(base), make_change(fp::op_kind::patch, 1, &patch),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::conflict);
        CHECK(o.collisions == std::vector<std::string>{"/notes"});
        CHECK_FALSE(o.incoming.data.contains("notes"));
    }
    SECTION("against a deleted head: rejected unknown_base") {
        const json patch = {{"status", "submitted"}};
        const auto o = fp::decide(deleted_head(3), std::nullopt, make_change(fp::op_kind::patch, 3, &patch),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::rejected);
        REQUIRE(o.err);
        CHECK(o.err->code == fp::errc::unknown_base);
    }
    SECTION("against a deleted base version: rejected unknown_base") {
        const json patch = {{"status", "submitted"}};
        const auto o = fp::decide(live_head(4, base), fp::version_state{true, nullptr},
                                  make_change(fp::op_kind::patch, 2, &patch), merge_policy::review);
        CHECK(o.kind == merge_kind::rejected);
        REQUIRE(o.err);
        CHECK(o.err->code == fp::errc::unknown_base);
    }
}

TEST_CASE("merge3 escapes keys with '/' and '~' as JSON pointers (RFC 6901)", "[protocol][merge]") {
    const json base = {{"a/b", 1}, {"m~n", 1}, {"p~q", {{"x/y", 1}, {"~/", 1}}}, {"", 1}};
    const json head = {{"a/b", 2}, {"m~n", 2}, {"p~q", {{"x/y", 2}, {"~/", 2}}}, {"", 2}};
    const json incoming = {{"a/b", 3}, {"m~n", 3}, {"p~q", {{"x/y", 3}, {"~/", 3}}}, {"", 3}};
    std::vector<std::string> collisions;
    const json out = fp::merge3(base, head, incoming, fp::prefer::head, collisions);
    std::sort(collisions.begin(), collisions.end());
    CHECK(collisions == std::vector<std::string>{"/", "/a~1b", "/m~0n", "/p~0q/x~1y", "/p~0q/~0~1"});
    CHECK(out == head);
    // Every pointer resolves to the colliding field.
    for (const auto& p : collisions) {
        const json::json_pointer ptr(p);
        REQUIRE(incoming.contains(ptr));
        CHECK(incoming.at(ptr) == 3);
    }

    std::vector<std::string> again;
    CHECK(fp::merge3(base, head, incoming, fp::prefer::incoming, again) == incoming);
    CHECK(again.size() == 5);
}

TEST_CASE("lww records lost values under escaped pointers", "[protocol][merge]") {
    const json base = {{"ghi chú/ấp 3", "a"}, {"tỉ lệ~", "b"}};
    const json head_data = {{"ghi chú/ấp 3", "head"}, {"tỉ lệ~", "head"}};
    const json incoming = {{"ghi chú/ấp 3", "incoming"}, {"tỉ lệ~", "incoming"}};
    const auto o = fp::decide(live_head(2, head_data, {1, 0}), live(base),
                              make_change(fp::op_kind::put, 1, &incoming, {2, 0}), merge_policy::lww);
    CHECK(o.result.data == incoming);
    CHECK(o.lost == json{{"/ghi chú~1ấp 3", "head"}, {"/tỉ lệ~0", "head"}});
}

TEST_CASE("merge3 with a non-object base treats every field as added", "[protocol][merge]") {
    std::vector<std::string> collisions;
    const json out = fp::merge3(nullptr, json{{"a", 1}, {"b", 2}}, json{{"a", 1}, {"b", 3}, {"c", 4}},
                                fp::prefer::head, collisions);
    CHECK(collisions == std::vector<std::string>{"/b"});
    CHECK(out == json{{"a", 1}, {"b", 2}, {"c", 4}});
}

TEST_CASE("numbers compare by value: 1 and 1.0 are one value, as are 10 and 1e1", "[merge][numbers]") {
    // SPEC.md, "The merge rule", 4: a number written another way is not an edit.
    const json base = {{"member", "mem-le-thi-hoa"}, {"year", 2015}, {"attended", 1}, {"invited", 10}};
    auto head = base;
    head["attended"] = 2;
    const auto with = [&](json attended, json invited) {
        json in = base;
        in["attended"] = std::move(attended);
        in["invited"] = std::move(invited);
        return in;
    };

    SECTION("the same values written as floats change nothing: the head's edit stands") {
        const auto in = with(json::parse("1.0"), json::parse("1e1"));
        const auto o = fp::decide(live_head(2, head), live(base), make_change(fp::op_kind::put, 1, &in),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::unchanged);
        CHECK(o.collisions.empty());
        CHECK(o.result.data["attended"] == 2);
        CHECK(o.result.data["invited"] == 10);
    }
    SECTION("other values are edits: 1.5 against the head's 2 collides, 1e2 merges in") {
        const auto in = with(json::parse("1.5"), json::parse("1e2"));
        const auto o = fp::decide(live_head(2, head), live(base), make_change(fp::op_kind::put, 1, &in),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::conflict);
        CHECK(o.collisions == std::vector<std::string>{"/attended"});
    }
    SECTION("a number and a string of it differ") {
        const auto in = with(1, "10");
        const auto o = fp::decide(live_head(2, head), live(base), make_change(fp::op_kind::put, 1, &in),
                                  merge_policy::review);
        CHECK(o.kind == merge_kind::merged);
        CHECK(o.result.data["invited"] == "10");
        CHECK(o.result.data["attended"] == 2);
    }
    SECTION("merge3 alone: equal numbers of either form keep the head's") {
        std::vector<std::string> collisions;
        CHECK(fp::merge3(json{{"n", 1}}, json{{"n", 3}}, json{{"n", json::parse("1.0")}}, fp::prefer::head,
                         collisions) == json{{"n", 3}});
        CHECK(fp::merge3(json{{"n", json::parse("1e1")}}, json{{"n", 3}}, json{{"n", 10}}, fp::prefer::head,
                         collisions) == json{{"n", 3}});
        CHECK(collisions.empty());
    }
}
