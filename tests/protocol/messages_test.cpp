// The codecs of POST /v1/sync: every decoding error names its field and has its code, and
// every message survives encode -> decode unchanged (SPEC.md, "POST /v1/sync").
#include <fieldsync/protocol/encoding.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <catch2/catch.hpp>

#include <limits>
#include <string>

namespace fp = fieldsync::protocol;
using fp::json;
using Catch::Matchers::Contains;

namespace {

json valid_change() {
    return {{"change_id", "01HZX3K7Q8V5M2N4P6R8T0W2Y4"},
            {"collection", "study_sessions"},
            {"id", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},
            {"unit_id", "xa-binh-hoa"},
            {"op", "put"},
            {"base_version", 0},
            {"data",
             {{"unit", "xa-binh-hoa"},
              {"date", "2014-05-15"},
              {"audience", "giáo viên"},
              {"invited", 38},
              {"attended", 37}}},
            {"hlc", "1764163200000-3"}};
}

json change_with(const std::string& field, json value) {
    json c = valid_change();
    c[field] = std::move(value);
    return c;
}

json change_without(const std::string& field) {
    json c = valid_change();
    c.erase(field);
    return c;
}

json change_set_of(json changes) {
    return {{"batch_id", "batch-2014-07-30-ap-3"}, {"changes", std::move(changes)}, {"cursor", ""}};
}

void check_rejected(const fp::change_entry& e, fp::errc code, const std::string& names) {
    INFO("expected rejection naming " << names);
    REQUIRE(e.rejected);
    CHECK(e.rejected->code == code);
    CHECK_THAT(e.rejected->message, Contains(names));
}

}  // namespace

TEST_CASE("a valid change decodes field by field", "[protocol][messages]") {
    const auto e = fp::decode_change(valid_change());
    REQUIRE_FALSE(e.rejected);
    CHECK(e.c.change_id == "01HZX3K7Q8V5M2N4P6R8T0W2Y4");
    CHECK(e.c.collection == "study_sessions");
    CHECK(e.c.id == "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    CHECK(e.c.unit_id == "xa-binh-hoa");
    CHECK(e.c.op == fp::op_kind::put);
    CHECK(e.c.base_version == 0);
    CHECK(e.c.data["audience"] == "giáo viên");
    REQUIRE(e.c.stamp);
    CHECK(*e.c.stamp == fp::hlc{1764163200000, 3});
}

TEST_CASE("ops: put, patch, delete", "[protocol][messages]") {
    CHECK(fp::op_name(fp::op_kind::put) == "put");
    CHECK(fp::op_name(fp::op_kind::patch) == "patch");
    CHECK(fp::op_name(fp::op_kind::del) == "delete");

    auto patch = change_with("op", "patch");
    patch["base_version"] = 4;
    patch["data"] = {{"attended", 38}, {"theme", nullptr}};
    const auto p = fp::decode_change(patch);
    REQUIRE_FALSE(p.rejected);
    CHECK(p.c.op == fp::op_kind::patch);
    CHECK(p.c.data["theme"].is_null());

    auto del = change_with("op", "delete");
    del.erase("data");
    del["base_version"] = 2;
    const auto d = fp::decode_change(del);
    REQUIRE_FALSE(d.rejected);
    CHECK(d.c.op == fp::op_kind::del);
    CHECK(d.c.data.is_null());

    del["data"] = nullptr;
    CHECK_FALSE(fp::decode_change(del).rejected);

    check_rejected(fp::decode_change(change_with("op", "upsert")), fp::errc::bad_field, "'op'");
    check_rejected(fp::decode_change(change_with("op", "PUT")), fp::errc::bad_field, "'op'");
}

TEST_CASE("a missing field is rejected naming the field", "[protocol][messages]") {
    check_rejected(fp::decode_change(change_without("change_id")), fp::errc::bad_field, "'change_id'");
    check_rejected(fp::decode_change(change_without("collection")), fp::errc::bad_field, "'collection'");
    check_rejected(fp::decode_change(change_without("id")), fp::errc::bad_field, "'id'");
    check_rejected(fp::decode_change(change_without("unit_id")), fp::errc::bad_field, "'unit_id'");
    check_rejected(fp::decode_change(change_without("op")), fp::errc::bad_field, "'op'");
    check_rejected(fp::decode_change(change_without("base_version")), fp::errc::bad_version, "'base_version'");
    check_rejected(fp::decode_change(change_without("data")), fp::errc::bad_field, "'data'");
    // hlc is optional: absent or null means "the server stamps it".
    const auto no_hlc = fp::decode_change(change_without("hlc"));
    REQUIRE_FALSE(no_hlc.rejected);
    CHECK_FALSE(no_hlc.c.stamp);
    const auto null_hlc = fp::decode_change(change_with("hlc", nullptr));
    REQUIRE_FALSE(null_hlc.rejected);
    CHECK_FALSE(null_hlc.c.stamp);
}

TEST_CASE("a mistyped field is rejected naming the field", "[protocol][messages]") {
    check_rejected(fp::decode_change(change_with("change_id", 42)), fp::errc::bad_field, "'change_id'");
    check_rejected(fp::decode_change(change_with("collection", json::array())), fp::errc::bad_field, "'collection'");
    check_rejected(fp::decode_change(change_with("collection", "")), fp::errc::bad_field, "'collection'");
    check_rejected(fp::decode_change(change_with("collection", std::string(65, 'c'))), fp::errc::bad_field,
                   "'collection'");
    check_rejected(fp::decode_change(change_with("id", 7)), fp::errc::bad_field, "'id'");
    check_rejected(fp::decode_change(change_with("id", "")), fp::errc::bad_field, "'id'");
    check_rejected(fp::decode_change(change_with("id", "a/b")), fp::errc::bad_field, "'id'");
    check_rejected(fp::decode_change(change_with("id", std::string(129, 'x'))), fp::errc::bad_field, "'id'");
    check_rejected(fp::decode_change(change_with("unit_id", true)), fp::errc::bad_field, "'unit_id'");
    check_rejected(fp::decode_change(change_with("unit_id", "xã Bình Hòa")), fp::errc::bad_field, "'unit_id'");
    check_rejected(fp::decode_change(change_with("op", 1)), fp::errc::bad_field, "'op'");
    check_rejected(fp::decode_change(change_with("data", json::array({1, 2}))), fp::errc::bad_field, "'data'");
    check_rejected(fp::decode_change(change_with("data", "text")), fp::errc::bad_field, "'data'");
    check_rejected(fp::decode_change(change_with("data", nullptr)), fp::errc::bad_field, "'data'");
    check_rejected(fp::decode_change(change_with("hlc", 1764163200000)), fp::errc::bad_field, "'hlc'");
    check_rejected(fp::decode_change(change_with("hlc", "yesterday")), fp::errc::bad_field, "'hlc'");
    check_rejected(fp::decode_change(change_with("hlc", "1764163200000")), fp::errc::bad_field, "'hlc'");
    check_rejected(fp::decode_change(change_with("hlc", "-5-1")), fp::errc::bad_field, "'hlc'");
    check_rejected(fp::decode_change(json::array()), fp::errc::bad_field, "object");

    auto del = change_with("op", "delete");
    check_rejected(fp::decode_change(del), fp::errc::bad_field, "'data'");
}

TEST_CASE("a rejected change still carries its change_id", "[protocol][messages]") {
    const auto e = fp::decode_change(change_with("data", 5));
    REQUIRE(e.rejected);
    CHECK(e.c.change_id == "01HZX3K7Q8V5M2N4P6R8T0W2Y4");
}

TEST_CASE("base_version must be an integer in [0, INT64_MAX]", "[protocol][messages]") {
    const auto check_bad = [](json v) {
        INFO("base_version " << v.dump());
        check_rejected(fp::decode_change(change_with("base_version", std::move(v))), fp::errc::bad_version,
                       "'base_version'");
    };
    check_bad(-1);
    check_bad(std::numeric_limits<std::int64_t>::min());
    check_bad(1.5);
    check_bad(2.0);  // a JSON number with a fraction part, even .0, is not an integer
    check_bad(json::parse("9223372036854775808"));
    check_bad(json::parse("18446744073709551615"));
    check_bad(json::parse("18446744073709551616"));
    check_bad(json::parse("1e3"));
    check_bad("3");
    check_bad(true);
    check_bad(nullptr);
    check_bad(json::array({1}));

    const auto max = fp::decode_change(change_with("base_version", json::parse("9223372036854775807")));
    REQUIRE_FALSE(max.rejected);
    CHECK(max.c.base_version == std::numeric_limits<std::int64_t>::max());
    const auto zero = fp::decode_change(change_with("base_version", json::parse("-0")));
    REQUIRE_FALSE(zero.rejected);
    CHECK(zero.c.base_version == 0);
}

TEST_CASE("a patch needs a base_version", "[protocol][messages][patch]") {
    auto patch = change_with("op", "patch");
    patch["base_version"] = 0;
    check_rejected(fp::decode_change(patch), fp::errc::bad_version, "base_version");
}

TEST_CASE("as_int64 accepts only integers in range", "[protocol][messages]") {
    CHECK(fp::as_int64(json(0)) == 0);
    CHECK(fp::as_int64(json(5), 1) == 5);
    CHECK_FALSE(fp::as_int64(json(0), 1));
    CHECK(fp::as_int64(json(-3), -10) == -3);
    CHECK_FALSE(fp::as_int64(json(-1)));
    CHECK(fp::as_int64(json(std::uint64_t{7})) == 7);
    CHECK_FALSE(fp::as_int64(json(std::uint64_t{7}), 8));
    CHECK_FALSE(fp::as_int64(json(std::uint64_t{1} << 63)));
    CHECK_FALSE(fp::as_int64(json(3.0)));
    CHECK_FALSE(fp::as_int64(json("3")));
}

TEST_CASE("valid_id: printable ASCII, no path or URL specials, 1 to 128 bytes", "[protocol][messages]") {
    CHECK(fp::valid_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
    CHECK(fp::valid_id("01HZX3K7Q8V5M2N4P6R8T0W2Y4"));
    CHECK(fp::valid_id("chi-bo-ap-3:2014"));
    CHECK(fp::valid_id(std::string(fp::tuning::max_id_bytes, 'a')));
    CHECK_FALSE(fp::valid_id(std::string(fp::tuning::max_id_bytes + 1, 'a')));
    CHECK_FALSE(fp::valid_id(""));
    for (const char* bad : {"a/b", "a?b", "a#b", "a%20b", "a b", "a\tb", "a\x7f", "ấp-3", "a\nb"}) {
        INFO(bad);
        CHECK_FALSE(fp::valid_id(bad));
    }
}

TEST_CASE("decode_change_set: envelope errors refuse the whole request", "[protocol][messages]") {
    const auto code_of = [](const json& body) {
        const auto r = fp::decode_change_set(body);
        REQUIRE_FALSE(r);
        return r.err().code;
    };
    const auto message_of = [](const json& body) {
        const auto r = fp::decode_change_set(body);
        REQUIRE_FALSE(r);
        return r.err().message;
    };

    CHECK(code_of(json::array()) == fp::errc::bad_request);
    CHECK(code_of("text") == fp::errc::bad_request);
    CHECK(code_of(json{{"batch_id", "b1"}, {"changes", json::object()}}) == fp::errc::bad_request);
    CHECK_THAT(message_of(json{{"batch_id", "b1"}, {"changes", 5}}), Contains("'changes'"));
    CHECK(code_of(json{{"batch_id", 5}}) == fp::errc::bad_request);
    CHECK_THAT(message_of(json{{"batch_id", "a/b"}}), Contains("'batch_id'"));
    CHECK(code_of(json{{"cursor", 17}}) == fp::errc::bad_cursor);
    CHECK_THAT(message_of(json{{"cursor", 17}}), Contains("'cursor'"));
    for (const json& limit : {json(0), json(-1), json(1.5), json("10"), json(true)}) {
        INFO("limit " << limit.dump());
        CHECK(code_of(json{{"limit", limit}}) == fp::errc::bad_request);
        CHECK_THAT(message_of(json{{"limit", limit}}), Contains("'limit'"));
    }

    SECTION("changes without a batch_id") {
        CHECK(code_of(json{{"changes", json::array({valid_change()})}}) == fp::errc::bad_request);
        CHECK_THAT(message_of(json{{"changes", json::array({valid_change()})}}), Contains("batch_id"));
    }
    SECTION("a change without change_id: bad_request naming the index and the field") {
        json body = change_set_of(json::array({valid_change(), change_without("change_id")}));
        body["changes"][0]["change_id"] = "c-0";
        CHECK(code_of(body) == fp::errc::bad_request);
        CHECK_THAT(message_of(body), Contains("changes[1]") && Contains("'change_id'"));
    }
    SECTION("a change whose change_id is not an id") {
        CHECK(code_of(change_set_of(json::array({change_with("change_id", 12)}))) == fp::errc::bad_request);
        CHECK(code_of(change_set_of(json::array({change_with("change_id", "")}))) == fp::errc::bad_request);
    }
    SECTION("a change that is not an object") {
        CHECK(code_of(change_set_of(json::array({valid_change(), 3}))) == fp::errc::bad_request);
        CHECK_THAT(message_of(change_set_of(json::array({valid_change(), 3}))), Contains("changes[1]"));
    }
    SECTION("the same change_id twice") {
        json second = valid_change();
        second["id"] = "another-record";
        const json body = change_set_of(json::array({valid_change(), second}));
        CHECK(code_of(body) == fp::errc::duplicate_change_id);
        CHECK_THAT(message_of(body), Contains("01HZX3K7Q8V5M2N4P6R8T0W2Y4"));
    }
    SECTION("more changes than the per-batch limit") {
        json changes = json::array();
        for (std::size_t i = 0; i <= fp::tuning::max_changes_per_batch; ++i)
            changes.push_back(change_with("change_id", "c-" + std::to_string(i)));
        CHECK(code_of(change_set_of(changes)) == fp::errc::too_many_changes);
        CHECK_THAT(message_of(change_set_of(changes)), Contains("1000"));
        changes.erase(changes.size() - 1);
        const auto ok = fp::decode_change_set(change_set_of(changes));
        REQUIRE(ok);
        CHECK(ok->changes.size() == fp::tuning::max_changes_per_batch);
    }
}

TEST_CASE("decode_change_set: a bad change never blocks the others", "[protocol][messages]") {
    json changes = json::array();
    changes.push_back(change_with("change_id", "c-1"));
    auto bad = change_with("change_id", "c-2");
    bad["base_version"] = -4;
    changes.push_back(bad);
    auto bad_data = change_with("change_id", "c-3");
    bad_data["data"] = json::array();
    changes.push_back(bad_data);
    changes.push_back(change_with("change_id", "c-4"));

    const auto cs = fp::decode_change_set(change_set_of(changes));
    REQUIRE(cs);
    REQUIRE(cs->changes.size() == 4);
    CHECK_FALSE(cs->changes[0].rejected);
    REQUIRE(cs->changes[1].rejected);
    CHECK(cs->changes[1].rejected->code == fp::errc::bad_version);
    CHECK(cs->changes[1].c.change_id == "c-2");
    REQUIRE(cs->changes[2].rejected);
    CHECK(cs->changes[2].rejected->code == fp::errc::bad_field);
    CHECK_FALSE(cs->changes[3].rejected);
    CHECK(cs->batch_id == "batch-2014-07-30-ap-3");
}

TEST_CASE("decode_change_set: pull-only requests, cursor and limit", "[protocol][messages]") {
    const auto empty = fp::decode_change_set(json::object());
    REQUIRE(empty);
    CHECK(empty->changes.empty());
    CHECK(empty->cursor.empty());
    CHECK(empty->limit == 0);
    CHECK(empty->batch_id.empty());

    const auto nulls = fp::decode_change_set(json{{"batch_id", nullptr}, {"changes", nullptr}, {"cursor", nullptr}});
    REQUIRE(nulls);
    CHECK(nulls->changes.empty());

    const auto paged = fp::decode_change_set(json{{"cursor", "1842"}, {"limit", 200}, {"changes", json::array()}});
    REQUIRE(paged);
    CHECK(paged->cursor == "1842");
    CHECK(paged->limit == 200);

    const auto capped = fp::decode_change_set(json{{"limit", 1'000'000}});
    REQUIRE(capped);
    CHECK(capped->limit == fp::tuning::max_pull_limit);
}

TEST_CASE("status names are the wire strings", "[protocol][messages]") {
    CHECK(fp::status_name(fp::change_status::applied) == "applied");
    CHECK(fp::status_name(fp::change_status::merged) == "merged");
    CHECK(fp::status_name(fp::change_status::conflict) == "conflict");
    CHECK(fp::status_name(fp::change_status::rejected) == "rejected");
    CHECK(fp::status_name(fp::change_status::queued) == "queued");
}

TEST_CASE("round trip: change", "[protocol][messages][roundtrip]") {
    for (const char* op : {"put", "patch", "delete"}) {
        INFO(op);
        json wire = valid_change();
        wire["op"] = op;
        wire["base_version"] = 3;
        if (std::string(op) == "delete") wire.erase("data");
        const auto decoded = fp::decode_change(wire);
        REQUIRE_FALSE(decoded.rejected);
        CHECK(fp::encode(decoded.c) == wire);
        const auto again = fp::decode_change(fp::encode(decoded.c));
        REQUIRE_FALSE(again.rejected);
        CHECK(fp::encode(again.c) == wire);
    }
    const auto no_hlc = fp::decode_change(change_without("hlc"));
    CHECK_FALSE(fp::encode(no_hlc.c).contains("hlc"));
}

TEST_CASE("round trip: change_set", "[protocol][messages][roundtrip]") {
    SECTION("with changes, cursor and limit") {
        json changes = json::array({change_with("change_id", "c-1"), change_with("change_id", "c-2")});
        changes[1]["op"] = "delete";
        changes[1].erase("data");
        json wire = change_set_of(changes);
        wire["cursor"] = "977";
        wire["limit"] = 250;
        const auto cs = fp::decode_change_set(wire);
        REQUIRE(cs);
        CHECK(fp::encode(*cs) == wire);
        const auto again = fp::decode_change_set(fp::encode(*cs));
        REQUIRE(again);
        CHECK(fp::encode(*again) == wire);
    }
    SECTION("pull only: no batch_id, no changes") {
        fp::change_set cs;
        cs.cursor = "12";
        const json wire = fp::encode(cs);
        const auto decoded = fp::decode_change_set(wire);
        INFO(wire.dump());
        REQUIRE(decoded);
        CHECK(decoded->cursor == "12");
        CHECK(decoded->changes.empty());
        CHECK(decoded->limit == 0);
        CHECK(fp::encode(*decoded) == wire);
    }
}

TEST_CASE("round trip: change_result", "[protocol][messages][roundtrip]") {
    fp::change_result applied{"c-1", fp::change_status::applied, 1, std::nullopt, std::nullopt};
    fp::change_result merged{"c-2", fp::change_status::merged, 7, std::nullopt, std::nullopt};
    fp::change_result conflict{"c-3", fp::change_status::conflict, 4, std::string("cf-0190a1b2"), std::nullopt};
    fp::change_result rejected{"c-4", fp::change_status::rejected, 0, std::nullopt,
                               fp::error{fp::errc::schema_violation, "registrations: field 'year' is required"}};
    // A relay hub's answer for a change it forwards (SPEC.md, "Relay hubs").
    fp::change_result queued{"c-5", fp::change_status::queued, 2, std::nullopt, std::nullopt};
    for (const auto* r : {&applied, &merged, &conflict, &rejected, &queued}) {
        const json wire = fp::encode(*r);
        const auto back = fp::decode_change_result(wire);
        REQUIRE(back);
        CHECK(back->change_id == r->change_id);
        CHECK(back->status == r->status);
        CHECK(back->version == r->version);
        CHECK(back->conflict_id == r->conflict_id);
        CHECK(back->err.has_value() == r->err.has_value());
        if (r->err) {
            CHECK(back->err->code == r->err->code);
            CHECK(back->err->message == r->err->message);
        }
        CHECK(fp::encode(*back) == wire);
    }
    CHECK(fp::encode(rejected) == json::parse(R"({"change_id":"c-4","status":"rejected","version":0,
        "error":{"code":"schema_violation","message":"registrations: field 'year' is required"}})"));
    CHECK(fp::encode(conflict) ==
          json::parse(R"({"change_id":"c-3","status":"conflict","version":4,"conflict_id":"cf-0190a1b2"})"));
    CHECK(fp::encode(queued) == json::parse(R"({"change_id":"c-5","status":"queued","version":2})"));

    CHECK_FALSE(fp::decode_change_result(json::array()));
    CHECK_FALSE(fp::decode_change_result(json{{"change_id", "c"}}));
    CHECK_FALSE(fp::decode_change_result(json{{"change_id", "c"}, {"status", "accepted"}}));
}

TEST_CASE("round trip: pulled_change", "[protocol][messages][roundtrip]") {
    fp::pulled_change live{"members", "mem-1", "chi-bo-ap-3", 2, false,
                           json{{"name", "Huỳnh Thị Hạnh"}, {"cell", "chi-bo-ap-3"}}, {}};
    fp::pulled_change gone{"members", "mem-2", "chi-bo-ap-3", 5, true, nullptr, {}};
    for (const auto* p : {&live, &gone}) {
        const json wire = fp::encode(*p);
        const auto back = fp::decode_pulled_change(wire);
        REQUIRE(back);
        CHECK(back->collection == p->collection);
        CHECK(back->id == p->id);
        CHECK(back->unit_id == p->unit_id);
        CHECK(back->version == p->version);
        CHECK(back->deleted == p->deleted);
        CHECK(back->data == p->data);
        CHECK(fp::encode(*back) == wire);
    }
    CHECK(fp::encode(gone)["data"].is_null());
    CHECK_FALSE(fp::decode_pulled_change(json{{"collection", "members"}, {"id", "m"}, {"unit_id", "u"}}));
    CHECK_FALSE(fp::decode_pulled_change(json{{"collection", "members"}, {"id", "m"}, {"unit_id", "u"}, {"version", 0}}));
}

TEST_CASE("round trip: sync_response", "[protocol][messages][roundtrip]") {
    fp::sync_response r;
    r.results.push_back({"c-1", fp::change_status::applied, 1, std::nullopt, std::nullopt});
    r.results.push_back({"c-2", fp::change_status::rejected, 0, std::nullopt,
                         fp::error{fp::errc::base_ahead, "base_version 9 is newer than the server's version 2"}});
    r.changes.push_back({"units", "xa-hung-le", "huyen-giong-trom", 1, false,
                         json{{"name", "Đảng bộ xã Hưng Lễ"}, {"kind", "commune"}, {"parent", "huyen-giong-trom"}}, {}});
    r.cursor = "4411";
    r.more = true;
    r.server_hlc = fp::hlc{1764163200123, 0};
    r.incarnation = "9c1e0f2a4b5d46e7a8b9c0d1e2f3a4b5";

    const json wire = fp::encode(r);
    CHECK(wire["server_hlc"] == "1764163200123-0");
    CHECK(wire["incarnation"] == "9c1e0f2a4b5d46e7a8b9c0d1e2f3a4b5");
    const auto back = fp::decode_sync_response(wire);
    REQUIRE(back);
    CHECK(fp::encode(*back) == wire);
    CHECK(back->more);
    CHECK(back->cursor == "4411");
    REQUIRE(back->server_hlc);
    CHECK(*back->server_hlc == *r.server_hlc);
    CHECK(back->incarnation == r.incarnation);

    fp::sync_response empty;
    const json empty_wire = fp::encode(empty);
    CHECK(empty_wire == json::parse(R"({"results":[],"changes":[],"cursor":"","more":false})"));
    const auto empty_back = fp::decode_sync_response(empty_wire);
    REQUIRE(empty_back);
    CHECK(fp::encode(*empty_back) == empty_wire);

    json bad_result = wire;
    bad_result["results"][0].erase("status");
    CHECK_FALSE(fp::decode_sync_response(bad_result));
    json bad_change = wire;
    bad_change["changes"][0].erase("version");
    CHECK_FALSE(fp::decode_sync_response(bad_change));
}

TEST_CASE("round trip: error", "[protocol][messages][roundtrip]") {
    const fp::error e{fp::errc::too_many_changes, "a change-set holds at most 1000 changes"};
    const json wire = fp::encode(e);
    CHECK(wire == json::parse(
                      R"({"error":{"code":"too_many_changes","message":"a change-set holds at most 1000 changes"}})"));
    const auto back = fp::decode_error(wire);
    REQUIRE(back);
    CHECK(back->code == e.code);
    CHECK(back->message == e.message);

    CHECK_FALSE(fp::decode_error(json::array()));
    CHECK_FALSE(fp::decode_error(json{{"error", "bad"}}));
    CHECK_FALSE(fp::decode_error(json{{"error", {{"message", "no code"}}}}));
    const auto unknown = fp::decode_error(json{{"error", {{"code", "from_the_future"}, {"message", "m"}}}});
    REQUIRE(unknown);
    CHECK(unknown->code == fp::errc::internal);
}

TEST_CASE("dropped records and the scope reset round-trip, and are absent when empty", "[protocol][messages]") {
    fp::sync_response r;
    r.cursor = "2.17";
    r.dropped = {{"members", "m-1"}, {"registrations", "dk-2014-an"}};
    r.reset = true;
    const auto j = fp::encode(r);
    CHECK(j["dropped"].size() == 2);
    CHECK(j["reset"] == true);
    auto back = fp::decode_sync_response(j);
    REQUIRE(back.has_value());
    REQUIRE(back->dropped.size() == 2);
    CHECK(back->dropped[1].collection == "registrations");
    CHECK(back->dropped[1].id == "dk-2014-an");
    CHECK(back->reset);

    const auto plain = fp::encode(fp::sync_response{});
    CHECK_FALSE(plain.contains("dropped"));
    CHECK_FALSE(plain.contains("reset"));
    auto bad = fp::decode_sync_response(json{{"dropped", {{{"id", "m-1"}}}}});
    CHECK_FALSE(bad.has_value());
}

// Decisions reaching the device (SPEC.md): the request's "held" and the answer's "resolutions".
TEST_CASE("a change-set names held conflicts, and an answer carries their outcomes", "[protocol][decisions]") {
    auto cs = fp::decode_change_set(json{{"cursor", "3"}, {"held", {"c-1", "c-2"}}});
    REQUIRE(cs);
    CHECK(cs->held == std::vector<std::string>{"c-1", "c-2"});
    CHECK(fp::decode_change_set(fp::encode(*cs))->held == cs->held);
    for (const auto& bad : {json{{"held", "c-1"}}, json{{"held", {1}}}, json{{"held", {"có dấu cách"}}}}) {
        auto refused = fp::decode_change_set(bad);
        REQUIRE_FALSE(refused);
        CHECK(refused.err().code == fp::errc::bad_request);
    }
    json too_many = json::array();
    for (std::size_t i = 0; i <= fp::tuning::max_held_per_sync; ++i) too_many.push_back("c-" + std::to_string(i));
    CHECK_FALSE(fp::decode_change_set(json{{"held", too_many}}));

    fp::sync_response r;
    r.cursor = "9";
    fp::resolution_notice n;
    n.conflict_id = "c-1";
    n.status = "resolved";
    n.choice = "pick";
    n.note = "Gộp ý hai bên";
    n.version = 7;
    n.closed_ms = 1733400000000;
    n.reviewer_unit_id = "giong-trom";
    n.reviewer_unit_name = "Huyện ủy Giồng Trôm";
    r.resolutions.push_back(n);
    r.resolutions.push_back({"c-2", "unknown"});
    const auto back = fp::decode_sync_response(fp::encode(r));
    REQUIRE(back);
    REQUIRE(back->resolutions.size() == 2);
    CHECK(back->resolutions[0].note == "Gộp ý hai bên");
    CHECK(back->resolutions[0].reviewer_unit_name == "Huyện ủy Giồng Trôm");
    CHECK(back->resolutions[0].version == 7);
    CHECK(back->resolutions[1].status == "unknown");
    CHECK(back->resolutions[1].choice.empty());
    CHECK_FALSE(fp::encode(fp::sync_response{}).contains("resolutions"));
    CHECK_FALSE(fp::decode_sync_response(json{{"resolutions", {{{"conflict_id", "c"}, {"status", "open"}}}}}));
}

TEST_CASE("a change-set may ask to wait for a change, in JSON and in CBOR", "[protocol][messages][wait]") {
    const auto none = fp::decode_change_set(json{{"cursor", "3"}});
    REQUIRE(none);
    CHECK(none->wait_ms == 0);
    CHECK_FALSE(fp::encode(*none).contains("wait_ms"));
    CHECK(fp::decode_change_set(json{{"wait_ms", nullptr}})->wait_ms == 0);
    CHECK(fp::decode_change_set(json{{"wait_ms", 0}})->wait_ms == 0);

    // Not lowered by the codec: the server lowers it to its own maximum.
    const json wire = {{"cursor", "3"}, {"wait_ms", 3'600'000}, {"limit", 100}, {"changes", json::array()}};
    const auto cs = fp::decode_change_set(wire);
    REQUIRE(cs);
    CHECK(cs->wait_ms == 3'600'000);
    CHECK(fp::encode(*cs) == wire);

    const auto bytes = fp::to_cbor(fp::encode(*cs));
    const auto parsed = fp::parse_cbor(bytes, fp::tuning::max_json_depth);
    REQUIRE(parsed);
    const auto from_cbor = fp::decode_change_set(*parsed);
    REQUIRE(from_cbor);
    CHECK(from_cbor->wait_ms == 3'600'000);
    CHECK(fp::encode(*from_cbor) == wire);

    for (const auto& bad : {json(-1), json(2.5), json(25000.0), json("25000"), json(true), json::array({1}),
                            json(std::numeric_limits<std::uint64_t>::max())}) {
        INFO(bad.dump());
        const auto refused = fp::decode_change_set(json{{"wait_ms", bad}});
        REQUIRE_FALSE(refused);
        CHECK(refused.err().code == fp::errc::bad_request);
        CHECK_THAT(refused.err().message, Contains("wait_ms"));
        // The same refusal from CBOR: a float stays a float there (major type 7, not 0).
        const auto cbor = fp::parse_cbor(fp::to_cbor(json{{"wait_ms", bad}}), fp::tuning::max_json_depth);
        REQUIRE(cbor);
        CHECK_FALSE(fp::decode_change_set(*cbor));
    }
}

TEST_CASE("encode_json writes what encode().dump() writes, with stored records spliced in as they are",
          "[protocol][messages][encode_json]") {
    const auto dumped = [](const fp::sync_response& r) {
        return fp::encode(r).dump(-1, ' ', false, json::error_handler_t::replace);
    };
    fp::sync_response r;
    // Every kind of result; ids with the characters JSON escapes.
    r.results.push_back({"c-1", fp::change_status::applied, 1, std::nullopt, std::nullopt});
    r.results.push_back({"c-\"2\"\\", fp::change_status::merged, 4, std::nullopt, std::nullopt});
    r.results.push_back({"c-3", fp::change_status::conflict, 2, std::string("k-9"), std::nullopt});
    r.results.push_back({"c-4\t\x01", fp::change_status::rejected, 0, std::nullopt,
                         fp::error{fp::errc::out_of_scope, "đơn vị 'xã Hưng Lễ' nằm ngoài phạm vi"}});
    r.results.push_back({"c-5", fp::change_status::queued, 0, std::nullopt, std::nullopt});
    // Records: a tree, a stored text (the server's), one deleted, one as a diff; Vietnamese
    // in NFC and in NFD, and a byte that is not UTF-8 (replaced, as the server's answers do).
    const json member{{"name", "Nguyễn Thị Hồng"}, {"note", "Nguye\u0302\u0303n \"Hai\"\n"}, {"age", 47},
                      {"tags", json::array({"chi bộ ấp 3", nullptr, true})}};
    r.changes.push_back({"members", "m-1", "ap-3", 2, false, member, {}});
    fp::pulled_change stored{"members", "m-2", "ap-3", 1, false, nullptr, {}};
    stored.data_json = member.dump();
    r.changes.push_back(stored);
    r.changes.push_back({"members", "m-3", "ap-3", 5, true, nullptr, {}});
    r.changes.push_back({"members", "m-4", "ap-\xff", 3, false, json{{"age", 48}}, 2});
    r.dropped.push_back({"members", "m-9"});
    r.reset = true;
    r.cursor = "2.4411";
    r.more = true;
    r.server_hlc = fp::hlc{1764163200123, 7};
    r.upgrade = fp::upgrade_notice{false, {}};
    r.incarnation = "9c1e0f2a4b5d46e7a8b9c0d1e2f3a4b5";
    r.resolutions.push_back({"k-1", "resolved", "pick", "giữ bản của chi bộ", 6, 1764163200999, "xa-hung-le", "Đảng bộ xã Hưng Lễ"});
    r.resolutions.push_back({"k-2", "unknown", "", "", 0, 0, "", ""});

    const std::string text = fp::encode_json(r);
    CHECK(text == dumped(r));
    CHECK(text.find("\\ufffd") == std::string::npos);  // U+FFFD is written as UTF-8, not escaped
    CHECK(json::parse(text)["changes"][3]["unit_id"] == "ap-\xEF\xBF\xBD");

    // The stored text goes in as it is, not re-serialised: spacing it shows that.
    r.changes[1].data_json = R"({"age": 47,  "name": "Nguyễn Thị Hồng"})";
    const std::string spliced = fp::encode_json(r);
    CHECK(spliced.find(R"("data":{"age": 47,  "name": "Nguyễn Thị Hồng"})") != std::string::npos);
    CHECK(json::parse(spliced) == json::parse(dumped(r)));
    // And materialize() gives the tree back.
    auto copy = r.changes[1];
    fp::materialize(copy);
    CHECK(copy.data_json.empty());
    CHECK(copy.data == json{{"age", 47}, {"name", "Nguyễn Thị Hồng"}});

    // Empty, and one remembered answer alone.
    CHECK(fp::encode_json(fp::sync_response{}) == dumped(fp::sync_response{}));
    CHECK(fp::encode_json(r.results[3]) == fp::encode(r.results[3]).dump());
}
