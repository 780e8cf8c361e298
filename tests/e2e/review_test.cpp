// Conflict review through HTTP (issue 5): the filtered list, one conflict with its writers,
// every choice of POST /v1/conflicts/{id}/resolve, stale refusal then success, routing by
// subtree and roles, closed conflicts staying readable, and the /admin/ page's headers.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

namespace fieldsync::e2e {
namespace {

using dev = std::pair<srv::device, std::string>;

struct review_tree {
    server_fixture f;
    dev secretary, member, neighbour_a, neighbour_b, commune_field, reviewer, other_reviewer, admin;
    int n = 0;

    review_tree() {
        put({"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""});
        put({"binh-hoa", "giong-trom", "Đảng bộ xã Bình Hòa", "commune", ""});
        put({"chau-binh", "giong-trom", "Đảng bộ xã Châu Bình", "commune", ""});
        put({"ap-1", "binh-hoa", "Chi bộ ấp 1", "cell", ""});
        put({"ap-9", "chau-binh", "Chi bộ ấp 9", "cell", ""});
        secretary = add("Bí thư chi bộ ấp 1", "ap-1", srv::device_role::field);
        member = add("Đảng viên Nguyễn Văn An", "ap-1", srv::device_role::field);
        neighbour_a = add("Bí thư chi bộ ấp 9", "ap-9", srv::device_role::field);
        neighbour_b = add("Đảng viên ấp 9", "ap-9", srv::device_role::field);
        commune_field = add("Máy văn phòng xã", "binh-hoa", srv::device_role::field);
        reviewer = add("Kiểm tra xã Bình Hòa", "binh-hoa", srv::device_role::reviewer);
        other_reviewer = add("Kiểm tra xã Châu Bình", "chau-binh", srv::device_role::reviewer);
        admin = add("Huyện ủy", "giong-trom", srv::device_role::admin);
    }
    void put(const srv::unit& u) { REQUIRE(f.store().put_unit(u).has_value()); }
    dev add(const std::string& name, const std::string& unit, srv::device_role role) {
        auto d = f.store().add_device(name, unit, role);
        REQUIRE(d.has_value());
        return *d;
    }
    static json base_record() {
        return {{"member", "m-an"},
                {"year", 2014},
                {"commitments", {"Rời khỏi phòng thì tắt quạt máy, tắt đèn"}},
                {"status", "draft"},
                {"notes", ""}};
    }
    json write(const dev& d, const std::string& id, const std::string& unit, std::int64_t base, const json& data) {
        const auto c = "c-" + std::to_string(n++);
        return only_result(f.sync(batch("b-" + c, {put_change(c, "registrations", id, base, data, unit)}), d.second));
    }
    json remove(const dev& d, const std::string& id, const std::string& unit, std::int64_t base) {
        const auto c = "c-" + std::to_string(n++);
        return only_result(f.sync(batch("b-" + c, {delete_change(c, "registrations", id, base, unit)}), d.second));
    }
    // Version 1, then two edits from it: notes and status collide, theme does not.
    std::string make_conflict(const std::string& id, const std::string& unit, const dev& a, const dev& b) {
        REQUIRE(write(a, id, unit, 0, base_record())["status"] == "applied");
        auto x = base_record();
        x["notes"] = "Chi bộ đề nghị cụ thể hơn";
        x["status"] = "reviewed";
        REQUIRE(write(a, id, unit, 1, x)["status"] == "applied");
        auto y = base_record();
        y["notes"] = "Tôi đã bổ sung việc làm cụ thể";
        y["status"] = "submitted";
        y["theme"] = "nói đi đôi với làm";
        const auto r = write(b, id, unit, 1, y);
        REQUIRE(r["status"] == "conflict");
        return r["conflict_id"].get<std::string>();
    }
    http_reply resolve(const std::string& conflict_id, const json& body, const std::string& token) {
        return http_request(f.port(), "POST", "/v1/conflicts/" + conflict_id + "/resolve", body.dump(),
                            {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
    }
    http_reply preview(const std::string& conflict_id, const json& body, const std::string& token) {
        return http_request(f.port(), "POST", "/v1/conflicts/" + conflict_id + "/preview", body.dump(),
                            {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
    }
    // A member record, written by the cell's secretary (so registrations name it).
    void member_record(const std::string& id, const std::string& unit, const std::string& name) {
        const auto c = "c-" + std::to_string(n++);
        REQUIRE(only_result(f.sync(batch("b-" + c, {put_change(c, "members", id, 0, {{"name", name}, {"cell", unit}}, unit)}),
                                   unit == "ap-9" ? neighbour_a.second : secretary.second))["status"] == "applied");
    }
    // What a preview must leave as it was: the record's history, the conflict, the feed.
    json world(const std::string& conflict_id, const std::string& record_id) {
        auto feed = f.store().pull(0, 100000);
        REQUIRE(feed.has_value());
        return {{"history", f.get("/v1/records/registrations/" + record_id + "/history", admin.second).body_json()},
                {"conflict", f.get("/v1/conflicts/" + conflict_id, admin.second).body_json()},
                {"seq", feed->last_seq},
                {"open", f.get("/v1/conflicts", admin.second).body_json()["conflicts"].size()}};
    }
    json head(const std::string& id) {
        auto r = f.get("/v1/records/registrations/" + id, admin.second);
        REQUIRE(r.status == 200);
        return r.body_json();
    }
};

}  // namespace

TEST_CASE("GET /v1/conflicts/{id} shows base, head, incoming, the current head and who wrote each side",
          "[e2e][review]") {
    review_tree t;
    const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
    const auto r = t.f.get("/v1/conflicts/" + id, t.reviewer.second);
    REQUIRE(r.status == 200);
    const auto c = r.body_json();
    CHECK(c["status"] == "open");
    CHECK(c["fields"] == json{"/notes", "/status"});
    CHECK(c["base"]["notes"] == "");
    CHECK(c["head"]["notes"] == "Chi bộ đề nghị cụ thể hơn");
    CHECK(c["incoming"]["notes"] == "Tôi đã bổ sung việc làm cụ thể");
    CHECK(c["current_version"] == 2);
    CHECK(c["current"]["status"] == "reviewed");
    CHECK(c["path"] == "/giong-trom/binh-hoa/ap-1/");
    CHECK(c["writers"]["incoming"]["device_id"] == t.member.first.id);
    CHECK(c["writers"]["incoming"]["device_name"] == "Đảng viên Nguyễn Văn An");
    CHECK(c["writers"]["head"]["device_id"] == t.secretary.first.id);
    CHECK(c["writers"]["head"]["device_name"] == "Bí thư chi bộ ấp 1");
    CHECK(c["writers"]["head"]["version"] == 2);
    CHECK(c["writers"]["base"]["version"] == 1);
    CHECK(c["writers"]["head"]["server_ms"].get<std::int64_t>() > 0);
    CHECK(c["writers"]["incoming"]["server_ms"].get<std::int64_t>() > 0);
}

TEST_CASE("every choice resolves through HTTP and writes a resolved version", "[e2e][review]") {
    review_tree t;
    SECTION("keep_head") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        const auto r = t.resolve(id, {{"choice", "keep_head"}, {"head_version", 2}, {"note", "giữ bản của bí thư"}},
                                 t.reviewer.second);
        REQUIRE(r.status == 200);
        const auto c = r.body_json();
        CHECK(c["status"] == "resolved");
        CHECK(c["closed_by"] == t.reviewer.first.id);
        CHECK(c["closed_by_name"] == "Kiểm tra xã Bình Hòa");
        CHECK(c["resolution"]["choice"] == "keep_head");
        CHECK(c["resolution"]["note"] == "giữ bản của bí thư");
        CHECK(c["resolution"]["version"] == 3);
        CHECK(c["current_version"] == 3);
        const auto h = t.head("dk-1");
        CHECK(h["version"] == 3);
        CHECK(h["data"]["notes"] == "Chi bộ đề nghị cụ thể hơn");
        CHECK(h["data"]["theme"] == "nói đi đôi với làm");  // undisputed: merged
        const auto hist = t.f.get("/v1/records/registrations/dk-1/history", t.reviewer.second).body_json();
        REQUIRE(hist["versions"].size() == 3);
        CHECK(hist["versions"][2]["how"] == "resolved");
        CHECK(hist["versions"][2]["device_id"] == t.reviewer.first.id);
        CHECK(hist["versions"][2]["lost"]["/notes"] == "Tôi đã bổ sung việc làm cụ thể");  // kept in history
    }
    SECTION("take_incoming") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        REQUIRE(t.resolve(id, {{"choice", "take_incoming"}, {"head_version", 2}}, t.reviewer.second).status == 200);
        const auto h = t.head("dk-1");
        CHECK(h["data"]["notes"] == "Tôi đã bổ sung việc làm cụ thể");
        CHECK(h["data"]["status"] == "submitted");
    }
    SECTION("pick per field") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        const auto bad = t.resolve(id, {{"choice", "pick"}, {"head_version", 2}, {"picks", {{"/notes", "incoming"}}}},
                                   t.reviewer.second);
        CHECK(bad.status == 400);  // /status has no pick
        CHECK(bad.error_code() == "bad_request");
        const auto r = t.resolve(
            id, {{"choice", "pick"}, {"head_version", 2}, {"picks", {{"/notes", "incoming"}, {"/status", "head"}}}},
            t.reviewer.second);
        REQUIRE(r.status == 200);
        CHECK(r.body_json()["resolution"]["picks"]["/notes"] == "incoming");
        const auto h = t.head("dk-1");
        CHECK(h["data"]["notes"] == "Tôi đã bổ sung việc làm cụ thể");
        CHECK(h["data"]["status"] == "reviewed");
    }
    SECTION("edit") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        auto edited = review_tree::base_record();
        edited["notes"] = "Cả hai ý: cụ thể hơn, đã bổ sung";
        edited["status"] = "reviewed";
        const auto broken = t.resolve(id, {{"choice", "edit"}, {"head_version", 2}, {"record", {{"year", "x"}}}},
                                      t.reviewer.second);
        CHECK(broken.status == 400);
        CHECK(broken.error_code() == "schema_violation");
        REQUIRE(t.resolve(id, {{"choice", "edit"}, {"head_version", 2}, {"record", edited}}, t.reviewer.second).status ==
                200);
        CHECK(t.head("dk-1")["data"]["notes"] == "Cả hai ý: cụ thể hơn, đã bổ sung");
    }
    SECTION("edit to a delete") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        REQUIRE(t.resolve(id, {{"choice", "edit"}, {"head_version", 2}, {"deleted", true}}, t.reviewer.second).status ==
                200);
        CHECK(t.head("dk-1")["deleted"] == true);
    }
    SECTION("dismiss writes nothing") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        const auto r = t.resolve(id, {{"choice", "dismiss"}, {"head_version", 2}}, t.reviewer.second);
        REQUIRE(r.status == 200);
        CHECK(r.body_json()["status"] == "dismissed");
        CHECK(t.head("dk-1")["version"] == 2);
    }
    SECTION("a delete against an edit collides whole") {
        REQUIRE(t.write(t.secretary, "dk-2", "ap-1", 0, review_tree::base_record())["status"] == "applied");
        REQUIRE(t.remove(t.secretary, "dk-2", "ap-1", 1)["status"] == "applied");
        auto y = review_tree::base_record();
        y["notes"] = "sửa sau khi bị xóa";
        const auto c = t.write(t.member, "dk-2", "ap-1", 1, y);
        REQUIRE(c["status"] == "conflict");
        const auto id = c["conflict_id"].get<std::string>();
        CHECK(t.f.get("/v1/conflicts/" + id, t.reviewer.second).body_json()["fields"] == json{""});
        const auto pick = t.resolve(id, {{"choice", "pick"}, {"head_version", 2}, {"picks", {{"", "incoming"}}}},
                                    t.reviewer.second);
        CHECK(pick.status == 400);
        REQUIRE(t.resolve(id, {{"choice", "take_incoming"}, {"head_version", 2}}, t.reviewer.second).status == 200);
        const auto h = t.head("dk-2");
        CHECK(h["deleted"] == false);
        CHECK(h["data"]["notes"] == "sửa sau khi bị xóa");
    }
}

TEST_CASE("a stale resolution is refused with the conflict as it is now, deciding on the current head succeeds",
          "[e2e][review]") {
    review_tree t;
    const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
    auto moved = review_tree::base_record();
    moved["notes"] = "Chi bộ đề nghị cụ thể hơn";
    moved["status"] = "reviewed";
    moved["commitments"] = {"Rời khỏi phòng thì tắt quạt máy, tắt đèn", "Đi họp đúng giờ"};
    REQUIRE(t.write(t.secretary, "dk-1", "ap-1", 2, moved)["status"] == "applied");  // head is now 3

    const auto stale = t.resolve(id, {{"choice", "keep_head"}, {"head_version", 2}}, t.reviewer.second);
    CHECK(stale.status == 409);
    CHECK(stale.error_code() == "stale");
    const auto again = stale.body_json()["conflict"];
    CHECK(again["id"] == id);
    CHECK(again["status"] == "open");
    CHECK(again["current_version"] == 3);
    CHECK(again["current"]["commitments"].size() == 2);
    CHECK(t.head("dk-1")["version"] == 3);  // nothing written

    const auto ok = t.resolve(id, {{"choice", "take_incoming"}, {"head_version", 3}}, t.reviewer.second);
    REQUIRE(ok.status == 200);
    const auto h = t.head("dk-1");
    CHECK(h["version"] == 4);
    CHECK(h["data"]["notes"] == "Tôi đã bổ sung việc làm cụ thể");

    const auto twice = t.resolve(id, {{"choice", "keep_head"}, {"head_version", 4}}, t.reviewer.second);
    CHECK(twice.status == 409);
    CHECK(twice.error_code() == "conflict_closed");
}

TEST_CASE("conflicts are routed by subtree: a commune reviewer sees its cells, not the neighbour commune",
          "[e2e][review]") {
    review_tree t;
    const auto mine = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
    const auto theirs = t.make_conflict("dk-9", "ap-9", t.neighbour_a, t.neighbour_b);

    auto ids_of = [](const http_reply& r) {
        std::vector<std::string> out;
        const auto body = r.body_json();
        for (const auto& c : body["conflicts"]) out.push_back(c["id"].get<std::string>());
        return out;
    };
    CHECK(ids_of(t.f.get("/v1/conflicts", t.reviewer.second)) == std::vector<std::string>{mine});
    CHECK(ids_of(t.f.get("/v1/conflicts", t.other_reviewer.second)) == std::vector<std::string>{theirs});
    CHECK(ids_of(t.f.get("/v1/conflicts", t.admin.second)).size() == 2);
    CHECK(t.f.get("/v1/conflicts/" + theirs, t.reviewer.second).status == 404);
    // A unit filter narrows within the scope and never reaches outside it.
    CHECK(ids_of(t.f.get("/v1/conflicts?unit=chau-binh", t.reviewer.second)).empty());
    CHECK(ids_of(t.f.get("/v1/conflicts?unit=ap-9", t.admin.second)) == std::vector<std::string>{theirs});
    CHECK(ids_of(t.f.get("/v1/conflicts?unit=binh-hoa", t.admin.second)) == std::vector<std::string>{mine});

    const auto other = t.resolve(theirs, {{"choice", "keep_head"}, {"head_version", 2}}, t.reviewer.second);
    CHECK(other.status == 404);
    CHECK(other.error_code() == "not_found");
    const auto field = t.resolve(mine, {{"choice", "keep_head"}, {"head_version", 2}}, t.commune_field.second);
    CHECK(field.status == 403);
    CHECK(field.error_code() == "forbidden");
    CHECK(t.f.get("/v1/conflicts/" + mine, t.reviewer.second).body_json()["status"] == "open");
    CHECK(t.resolve(theirs, {{"choice", "keep_head"}, {"head_version", 2}}, t.other_reviewer.second).status == 200);
}

TEST_CASE("the list filters by collection, unit, device, age and status, and pages", "[e2e][review]") {
    review_tree t;
    const auto a = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
    const auto b = t.make_conflict("dk-2", "ap-1", t.member, t.secretary);
    auto ids_of = [&](const std::string& q) {
        const auto r = t.f.get("/v1/conflicts" + q, t.reviewer.second);
        REQUIRE(r.status == 200);
        std::vector<std::string> out;
        const auto body = r.body_json();
        for (const auto& c : body["conflicts"]) out.push_back(c["id"].get<std::string>());
        return out;
    };
    using v = std::vector<std::string>;
    CHECK(ids_of("") == v{b, a});  // newest first
    CHECK(ids_of("?collection=registrations") == v{b, a});
    CHECK(ids_of("?collection=members").empty());
    CHECK(ids_of("?device=" + t.member.first.id) == v{a});
    CHECK(ids_of("?device=" + t.secretary.first.id) == v{b});
    CHECK(ids_of("?unit=ap-1") == v{b, a});
    CHECK(ids_of("?limit=1") == v{b});
    CHECK(ids_of("?limit=1&offset=1") == v{a});
    CHECK(ids_of("?newer_than_ms=3600000") == v{b, a});
    CHECK(ids_of("?older_than_ms=3600000").empty());

    REQUIRE(t.resolve(a, {{"choice", "keep_head"}, {"head_version", 2}}, t.reviewer.second).status == 200);
    REQUIRE(t.resolve(b, {{"choice", "dismiss"}, {"head_version", 2}}, t.reviewer.second).status == 200);
    CHECK(ids_of("").empty());
    CHECK(ids_of("?status=resolved") == v{a});
    CHECK(ids_of("?status=dismissed") == v{b});
    CHECK(ids_of("?status=any") == v{b, a});
    // Closed conflicts stay readable, with who closed them and how.
    const auto shown = t.f.get("/v1/conflicts/" + b, t.reviewer.second).body_json();
    CHECK(shown["status"] == "dismissed");
    CHECK(shown["resolution"]["choice"] == "dismiss");
    CHECK(shown["incoming"]["notes"] == "Tôi đã bổ sung việc làm cụ thể");  // neither text lost
    CHECK(shown["head"]["notes"] == "Chi bộ đề nghị cụ thể hơn");

    CHECK(t.f.get("/v1/conflicts?status=later", t.reviewer.second).error_code() == "bad_request");
    CHECK(t.f.get("/v1/conflicts?older_than_ms=-1", t.reviewer.second).error_code() == "bad_request");
}

TEST_CASE("resolve refuses malformed bodies with stable codes", "[e2e][review]") {
    review_tree t;
    const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
    CHECK(t.resolve(id, {{"head_version", 2}}, t.reviewer.second).error_code() == "bad_request");
    CHECK(t.resolve(id, {{"choice", "maybe"}, {"head_version", 2}}, t.reviewer.second).error_code() == "bad_request");
    CHECK(t.resolve(id, {{"choice", "keep_head"}}, t.reviewer.second).error_code() == "bad_request");
    CHECK(t.resolve(id, {{"choice", "edit"}, {"head_version", 2}}, t.reviewer.second).error_code() == "bad_request");
    CHECK(t.resolve("no-such", {{"choice", "keep_head"}, {"head_version", 2}}, t.reviewer.second).status == 404);
    const auto text = http_request(t.f.port(), "POST", "/v1/conflicts/" + id + "/resolve", "{}",
                                   {{"Authorization", "Bearer " + t.reviewer.second}});
    CHECK(text.status == 415);
    const auto get = http_request(t.f.port(), "GET", "/v1/conflicts/" + id + "/resolve", "",
                                  {{"Authorization", "Bearer " + t.reviewer.second}});
    CHECK(get.status == 405);
    CHECK(t.resolve(id, {{"choice", "keep_head"}, {"head_version", 2}}, "wrong-token").status == 401);
}

TEST_CASE("the review page is served at /admin/ with a strict Content-Security-Policy", "[e2e][review][web]") {
    server_fixture f;
    const auto page = http_request(f.port(), "GET", "/admin/");
    REQUIRE(page.status == 200);
    CHECK(page.headers.at("content-type") == "text/html; charset=utf-8");
    const auto csp = page.headers.at("content-security-policy");
    CHECK(csp.find("default-src 'self'") != std::string::npos);
    CHECK(csp.find("script-src 'self'") != std::string::npos);
    CHECK(csp.find("unsafe-inline") == std::string::npos);
    CHECK(page.headers.at("x-content-type-options") == "nosniff");
    CHECK(page.body.find("<script src=") != std::string::npos);
    CHECK(page.body.find("<script>") == std::string::npos);  // no inline script
    CHECK(page.body.find("style=") == std::string::npos);    // no inline style
    const auto js = http_request(f.port(), "GET", "/admin/app.js");
    REQUIRE(js.status == 200);
    CHECK(js.headers.at("content-type") == "text/javascript; charset=utf-8");
    CHECK(js.body.find("innerHTML") == std::string::npos);
    CHECK(http_request(f.port(), "GET", "/admin/style.css").headers.at("content-type") == "text/css; charset=utf-8");
    CHECK(http_request(f.port(), "GET", "/admin/nope.js").status == 404);
    const auto bare = http_request(f.port(), "GET", "/admin");
    CHECK(bare.status == 301);
    CHECK(bare.headers.at("location") == "/admin/");
}

// SPEC.md, "Decisions reaching the device": a sequence. A malformed `held` is refused whole
// and changes nothing; an open conflict has no outcome yet; another device asking for it
// learns nothing ("unknown"); once resolved, the device that sent the held change is told the
// choice, the note and the reviewer's unit by name, together with the version written.
TEST_CASE("a held change's outcome reaches only the device that sent it", "[e2e][review][decisions]") {
    review_tree t;
    const auto id = std::string("dk-quyet-dinh");
    const auto conflict = t.make_conflict(id, "ap-1", t.secretary, t.member);
    const json asks = {{"cursor", ""}, {"held", {conflict, "khong-co-xung-dot"}}};

    // Refused whole: nothing written, and the next request sees the world as it was.
    const auto refused = t.f.post_sync({{"batch_id", "b-held"},
                                        {"changes", {put_change("c-held", "registrations", "dk-khac", 0,
                                                                review_tree::base_record(), "ap-1")}},
                                        {"held", {1, 2}}},
                                       t.member.second);
    CHECK(refused.status == 400);
    CHECK(refused.body_json()["error"]["code"] == "bad_request");
    CHECK(t.f.get("/v1/records/registrations/dk-khac", t.admin.second).status == 404);

    // Open: no outcome for the sender; an unknown id is said to be unknown.
    auto open = t.f.sync(asks, t.member.second);
    REQUIRE(open["resolutions"].size() == 1);
    CHECK(open["resolutions"][0] == json{{"conflict_id", "khong-co-xung-dot"}, {"status", "unknown"}});

    const auto head_version = t.head(id)["version"].get<std::int64_t>();
    const auto done = t.resolve(conflict,
                                {{"choice", "pick"},
                                 {"head_version", head_version},
                                 {"picks", {{"/notes", "incoming"}, {"/status", "head"}}},
                                 {"note", "Lấy ghi chú của đảng viên, giữ trạng thái của chi bộ"}},
                                t.reviewer.second);
    INFO(done.body);
    REQUIRE(done.status == 200);

    // Another device of the same cell, naming the conflict, learns nothing of it.
    auto other = t.f.sync({{"cursor", ""}, {"held", {conflict}}}, t.secretary.second);
    REQUIRE(other["resolutions"].size() == 1);
    CHECK(other["resolutions"][0]["status"] == "unknown");
    CHECK_FALSE(other["resolutions"][0].contains("note"));

    // The sender is told, and the page of the same answer holds the version the decision wrote.
    auto told = t.f.sync(asks, t.member.second);
    REQUIRE(told["resolutions"].size() == 2);
    const auto& n = told["resolutions"][0];
    CHECK(n["conflict_id"] == conflict);
    CHECK(n["status"] == "resolved");
    CHECK(n["choice"] == "pick");
    CHECK(n["note"] == "Lấy ghi chú của đảng viên, giữ trạng thái của chi bộ");
    CHECK(n["version"] == head_version + 1);
    CHECK(n["reviewer"] == json{{"unit_id", "binh-hoa"}, {"unit_name", "Đảng bộ xã Bình Hòa"}});
    bool on_page = false;
    for (const auto& p : told["changes"])
        if (p["id"] == id) on_page = p["version"] == head_version + 1;
    CHECK(on_page);
}


TEST_CASE("conflicts are named for people: the record's title, the sender's device, units by name",
          "[e2e][review][names]") {
    review_tree t;
    // The member as the cell's phone typed it, decomposed (NFD): the title keeps its bytes.
    const std::string nfd_name = "Nguye\xcc\x82\xcc\x83n Va\xcc\x86n Ba\xcc\x89y";
    t.member_record("m-an", "ap-1", nfd_name);
    const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
    for (const auto& [what, c] :
         {std::pair{"list", t.f.get("/v1/conflicts", t.reviewer.second).body_json()["conflicts"].at(0)},
          std::pair{"detail", t.f.get("/v1/conflicts/" + id, t.reviewer.second).body_json()}}) {
        INFO(what);
        CHECK(c["id"] == id);
        CHECK(c["title"] == nfd_name + ", 2014");
        CHECK(c["device_name"] == "Đảng viên Nguyễn Văn An");
        CHECK(c["unit_name"] == "Chi bộ ấp 1");
        CHECK(c["path_names"] == json{"Huyện ủy Giồng Trôm", "Đảng bộ xã Bình Hòa", "Chi bộ ấp 1"});
        CHECK_FALSE(c.contains("closed_by_name"));
    }
    // Closed: the reviewer by name, in the list too; history names every version's device.
    REQUIRE(t.resolve(id, {{"choice", "keep_head"}, {"head_version", 2}}, t.reviewer.second).status == 200);
    const auto closed = t.f.get("/v1/conflicts?status=resolved", t.admin.second).body_json()["conflicts"].at(0);
    CHECK(closed["closed_by_name"] == "Kiểm tra xã Bình Hòa");
    CHECK(closed["title"] == nfd_name + ", 2014");
    const auto hist = t.f.get("/v1/records/registrations/dk-1/history", t.reviewer.second).body_json()["versions"];
    REQUIRE(hist.size() == 3);
    CHECK(hist[0]["device_name"] == "Bí thư chi bộ ấp 1");
    CHECK(hist[2]["device_name"] == "Kiểm tra xã Bình Hòa");

    // A member outside the reviewer's scope is not named to it; the district's admin sees it.
    t.member_record("m-chau", "ap-9", "Lê Thị Hoa");
    auto x = review_tree::base_record();
    x["member"] = "m-chau";
    REQUIRE(t.write(t.secretary, "dk-2", "ap-1", 0, x)["status"] == "applied");
    auto a = x, b = x;
    a["notes"] = "bản của bí thư";
    b["notes"] = "bản của đảng viên";
    REQUIRE(t.write(t.secretary, "dk-2", "ap-1", 1, a)["status"] == "applied");
    const auto c2 = t.write(t.member, "dk-2", "ap-1", 1, b)["conflict_id"].get<std::string>();
    CHECK(t.f.get("/v1/conflicts/" + c2, t.reviewer.second).body_json()["title"] == "2014");
    CHECK(t.f.get("/v1/conflicts/" + c2, t.admin.second).body_json()["title"] == "Lê Thị Hoa, 2014");

    // A device whose unit is not in the tree: no unit name, its id in the path.
    const auto stray = t.add("Máy chưa gán đơn vị", "ap-moi", srv::device_role::field);
    const auto stray2 = t.add("Máy thứ hai chưa gán", "ap-moi", srv::device_role::field);
    REQUIRE(t.write(stray, "dk-3", "ap-moi", 0, review_tree::base_record())["status"] == "applied");
    auto p = review_tree::base_record(), q = review_tree::base_record();
    p["status"] = "submitted";
    q["status"] = "reviewed";
    REQUIRE(t.write(stray, "dk-3", "ap-moi", 1, p)["status"] == "applied");
    const auto c3 = t.write(stray2, "dk-3", "ap-moi", 1, q)["conflict_id"].get<std::string>();
    const auto s3 = t.f.get("/v1/conflicts/" + c3, t.admin.second).body_json();
    CHECK(s3["unit_name"].is_null());
    CHECK(s3["path_names"] == json{"ap-moi"});
    CHECK(s3["device_name"] == "Máy thứ hai chưa gán");
    CHECK(s3["title"] == nfd_name + ", 2014");  // the admin sees every member
}

TEST_CASE("a preview shows what resolving would write, for every choice, and writes nothing",
          "[e2e][review][preview]") {
    review_tree t;
    const auto check_choice = [&](const std::string& record_id, const std::string& conflict_id, const json& body,
                                  const json& changed) {
        INFO(body.dump());
        const auto before = t.world(conflict_id, record_id);
        const auto p = t.preview(conflict_id, body, t.reviewer.second);
        REQUIRE(p.status == 200);
        const auto seen = p.body_json();
        CHECK(seen["changed"] == changed);
        CHECK(seen["head_version"] == body["head_version"]);
        // Twice, and nothing moved: history, the conflict, the feed, the open conflicts.
        CHECK(t.preview(conflict_id, body, t.reviewer.second).body_json() == seen);
        CHECK(t.world(conflict_id, record_id) == before);
        // What resolving with the same body writes is what was shown.
        REQUIRE(t.resolve(conflict_id, body, t.reviewer.second).status == 200);
        const auto h = t.head(record_id);
        CHECK(h["deleted"] == seen["deleted"]);
        CHECK(h["data"] == seen["record"]);
        if (body["choice"] == "dismiss") CHECK(h["version"] == body["head_version"]);
    };
    SECTION("keep_head") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        check_choice("dk-1", id, {{"choice", "keep_head"}, {"head_version", 2}}, json{"/theme"});
    }
    SECTION("take_incoming") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        check_choice("dk-1", id, {{"choice", "take_incoming"}, {"head_version", 2}}, json{"/notes", "/status", "/theme"});
    }
    SECTION("pick") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        check_choice("dk-1", id,
                     {{"choice", "pick"}, {"head_version", 2}, {"picks", {{"/notes", "incoming"}, {"/status", "head"}}}},
                     json{"/notes", "/theme"});
    }
    SECTION("edit") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        auto rec = review_tree::base_record();
        rec["notes"] = "Ủy ban kiểm tra viết lại";
        rec.erase("status");
        check_choice("dk-1", id, {{"choice", "edit"}, {"head_version", 2}, {"record", rec}}, json{"/notes", "/status"});
    }
    SECTION("edit to a delete") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        check_choice("dk-1", id, {{"choice", "edit"}, {"head_version", 2}, {"deleted", true}},
                     json{"/commitments", "/member", "/notes", "/status", "/year"});
    }
    SECTION("dismiss") {
        const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
        check_choice("dk-1", id, {{"choice", "dismiss"}, {"head_version", 2}}, json::array());
    }
    SECTION("a delete against an edit, either side") {
        for (const char* choice : {"take_incoming", "keep_head"}) {
            const std::string rid = std::string("dk-del-") + choice;
            REQUIRE(t.write(t.secretary, rid, "ap-1", 0, review_tree::base_record())["status"] == "applied");
            REQUIRE(t.remove(t.secretary, rid, "ap-1", 1)["status"] == "applied");
            auto y = review_tree::base_record();
            y["notes"] = "sửa sau khi bị xóa";
            const auto c = t.write(t.member, rid, "ap-1", 1, y);
            REQUIRE(c["status"] == "conflict");
            const bool take = std::string(choice) == "take_incoming";
            check_choice(rid, c["conflict_id"].get<std::string>(), {{"choice", choice}, {"head_version", 2}},
                         take ? json{"/commitments", "/member", "/notes", "/status", "/year"} : json::array());
        }
    }
}

TEST_CASE("a preview is refused as resolve refuses, and a refused one changes nothing", "[e2e][review][preview]") {
    review_tree t;
    const auto id = t.make_conflict("dk-1", "ap-1", t.secretary, t.member);
    const json keep = {{"choice", "keep_head"}, {"head_version", 2}};
    CHECK(t.preview(id, keep, t.member.second).status == 403);
    CHECK(t.preview(id, keep, t.other_reviewer.second).status == 404);  // outside its commune
    CHECK(t.preview("no-such", keep, t.reviewer.second).status == 404);
    CHECK(t.preview(id, {{"choice", "pick"}, {"head_version", 2}, {"picks", {{"/notes", "incoming"}}}},
                    t.reviewer.second).error_code() == "bad_request");  // no pick for /status
    CHECK(t.preview(id, {{"choice", "pick"}, {"head_version", 2}, {"picks", {{"/year", "head"}}}}, t.reviewer.second)
              .error_code() == "bad_request");
    CHECK(t.preview(id, {{"choice", "maybe"}, {"head_version", 2}}, t.reviewer.second).error_code() == "bad_request");
    auto bad = review_tree::base_record();
    bad.erase("year");
    CHECK(t.preview(id, {{"choice", "edit"}, {"head_version", 2}, {"record", bad}}, t.reviewer.second).error_code() ==
          "schema_violation");
    const auto text = http_request(t.f.port(), "POST", "/v1/conflicts/" + id + "/preview", keep.dump(),
                                   {{"Authorization", "Bearer " + t.reviewer.second}});
    CHECK(text.status == 415);
    CHECK(http_request(t.f.port(), "GET", "/v1/conflicts/" + id + "/preview", "",
                       {{"Authorization", "Bearer " + t.reviewer.second}}).status == 405);

    // The head moves: a preview on the old head is stale and carries the conflict as it is now.
    auto moved = review_tree::base_record();
    moved["notes"] = "Chi bộ đề nghị cụ thể hơn";
    moved["status"] = "reviewed";
    moved["commitments"] = {"Đi họp đúng giờ"};
    REQUIRE(t.write(t.secretary, "dk-1", "ap-1", 2, moved)["status"] == "applied");
    const auto before = t.world(id, "dk-1");
    const auto stale = t.preview(id, keep, t.reviewer.second);
    CHECK(stale.status == 409);
    CHECK(stale.error_code() == "stale");
    CHECK(stale.body_json()["conflict"]["current_version"] == 3);
    CHECK(stale.body_json()["conflict"]["title"] == "2014");  // m-an has no record here
    CHECK(t.world(id, "dk-1") == before);

    // Another device decides meanwhile; reads see the world as it is, and the preview says closed.
    REQUIRE(t.resolve(id, {{"choice", "take_incoming"}, {"head_version", 3}}, t.admin.second).status == 200);
    const auto now = t.f.get("/v1/conflicts/" + id, t.reviewer.second).body_json();
    CHECK(now["status"] == "resolved");
    CHECK(now["closed_by_name"] == "Huyện ủy");
    CHECK(t.head("dk-1")["version"] == 4);
    CHECK(t.head("dk-1")["data"]["notes"] == "Tôi đã bổ sung việc làm cụ thể");
    CHECK(t.preview(id, {{"choice", "keep_head"}, {"head_version", 4}}, t.reviewer.second).error_code() ==
          "conflict_closed");
}

}  // namespace fieldsync::e2e
