// Retries after a lost answer: a change-set, or single changes of it, sent again are answered
// as the first time and applied once. And one bad change never blocks its batch.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

namespace fieldsync::e2e {
namespace {

json member(const std::string& name, const std::string& cell = "Chi bộ ấp 3") { return {{"name", name}, {"cell", cell}}; }

std::size_t history_size(const server_fixture& f, const std::string& id) {
    const auto h = f.get("/v1/records/members/" + id + "/history");
    return h.status == 200 ? h.body_json()["versions"].size() : 0;
}

}  // namespace

TEST_CASE("a whole batch replayed after a lost answer is answered the same and applied once", "[e2e][idempotency]") {
    server_fixture f;
    f.sync(batch("b-0", {put_change("c-0", "members", "m-1", 0, member("Dương Văn Quang"))}));

    const json body = batch("b-1", {put_change("c-1", "members", "m-2", 0, member("Lý Thị Nga")),
                                    put_change("c-2", "members", "m-1", 1, member("Dương Văn Quang", "Chi bộ ấp 8")),
                                    put_change("c-3", "members", "m-1", 1, member("Dương Văn Quang", "Chi bộ ấp 9")),
                                    put_change("c-4", "no_such_collection", "x-1", 0, json::object())});
    const auto first = f.sync(body);
    REQUIRE(first["results"].size() == 4);
    CHECK(first["results"][0]["status"] == "applied");
    CHECK(first["results"][1]["status"] == "applied");
    CHECK(first["results"][2]["status"] == "conflict");
    CHECK(first["results"][3]["status"] == "rejected");

    // The answer was "lost": the client sends the very same request again.
    const auto second = f.sync(body);
    CHECK(second["results"] == first["results"]);
    const auto third = f.sync(body);
    CHECK(third["results"] == first["results"]);

    CHECK(history_size(f, "m-2") == 1);
    CHECK(history_size(f, "m-1") == 2);
    CHECK(f.get("/v1/records/members/m-1").body_json()["data"]["cell"] == "Chi bộ ấp 8");
    CHECK(f.get("/v1/conflicts?status=any").body_json()["conflicts"].size() == 1);
}

TEST_CASE("a single change replayed inside a new batch is answered the same and applied once", "[e2e][idempotency]") {
    server_fixture f;
    const auto c1 = put_change("c-1", "members", "m-1", 0, member("Châu Văn Phúc"));
    const auto first = only_result(f.sync(batch("b-1", {c1})));
    REQUIRE(first["status"] == "applied");

    // The next batch holds the change again (its answer was lost) and a new edit after it.
    const auto second = f.sync(batch("b-2", {c1, put_change("c-2", "members", "m-1", 1, member("Châu Văn Phúc", "Chi bộ ấp 6"))}));
    REQUIRE(second["results"].size() == 2);
    CHECK(second["results"][0] == first);
    CHECK(second["results"][1]["status"] == "applied");
    CHECK(second["results"][1]["version"] == 2);
    CHECK(history_size(f, "m-1") == 2);

    // The same change again, once more, after the record moved on: still the first answer.
    const auto third = f.sync(batch("b-3", {c1}));
    CHECK(only_result(third) == first);
    CHECK(history_size(f, "m-1") == 2);
    CHECK(f.get("/v1/records/members/m-1").body_json()["version"] == 2);
}

TEST_CASE("a rejected change does not block the rest of its batch", "[e2e][idempotency]") {
    server_fixture f;
    auto missing_unit = put_change("c-3", "members", "m-3", 0, member("Trương Văn Trí"));
    missing_unit.erase("unit_id");
    auto negative = put_change("c-5", "members", "m-5", 0, member("Đoàn Thị Uyên"));
    negative["base_version"] = -1;
    const auto r = f.sync(batch("b-1", {put_change("c-1", "members", "m-1", 0, member("Lâm Văn Việt")),
                                        put_change("c-2", "unknown_things", "u-1", 0, member("x")),
                                        missing_unit,
                                        put_change("c-4", "members", "m-4", 0, json{{"cell", "Chi bộ ấp 3"}}),
                                        negative,
                                        put_change("c-6", "members", "m-6", 0, member("Hồ Thị Xuân"))}));
    REQUIRE(r["results"].size() == 6);
    const auto& res = r["results"];
    CHECK(res[0]["status"] == "applied");
    CHECK(res[1]["status"] == "rejected");
    CHECK(res[1]["error"]["code"] == "unknown_collection");
    CHECK(res[2]["status"] == "rejected");
    CHECK(res[2]["error"]["code"] == "bad_field");
    CHECK(res[3]["status"] == "rejected");
    CHECK(res[3]["error"]["code"] == "schema_violation");
    CHECK(res[4]["status"] == "rejected");
    CHECK(res[4]["error"]["code"] == "bad_version");
    CHECK(res[5]["status"] == "applied");
    for (std::size_t i = 0; i < res.size(); ++i) CHECK(res[i]["change_id"] == "c-" + std::to_string(i + 1));

    CHECK(f.get("/v1/records/members/m-1").status == 200);
    CHECK(f.get("/v1/records/members/m-6").status == 200);
    CHECK(f.get("/v1/records/members/m-3").status == 404);
    CHECK(f.get("/v1/records/members/m-4").status == 404);
    CHECK(f.get("/v1/records/members/m-5").status == 404);
    CHECK(f.get("/v1/records/unknown_things/u-1").status == 404);
}

}  // namespace fieldsync::e2e
