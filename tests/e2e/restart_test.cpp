// A server stopped and started again on the same store file keeps everything: records,
// history, conflicts, devices, decided change ids and the feed.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

namespace fieldsync::e2e {

TEST_CASE("a restarted server keeps records, history, conflicts, tokens, answers and the feed", "[e2e][restart]") {
    server_fixture f;
    const auto other = f.add_device("Máy Huyện ủy", "huyen-uy", srv::device_role::admin);
    const auto theme = giong_trom()["theme_2014"].get<std::string>();
    const auto reg = [&](const std::string& status, const std::string& notes) {
        return json{{"member", "m-1"}, {"year", 2014}, {"theme", theme}, {"status", status}, {"notes", notes},
                    {"commitments", giong_trom()["concrete_commitments"]}};
    };
    const json first_batch = batch("b-1", {put_change("c-1", "registrations", "r-1", 0, reg("draft", "")),
                                           put_change("c-2", "members", "m-1", 0, {{"name", "Phan Thị Thảo"}, {"cell", "Chi bộ ấp 1"}})});
    const auto first = f.sync(first_batch);
    f.sync(batch("b-2", {put_change("c-3", "registrations", "r-1", 1, reg("submitted", "bản của đảng viên"))}));
    const auto conflict = only_result(
        f.sync(batch("b-3", {put_change("c-4", "registrations", "r-1", 1, reg("draft", "bản của bí thư chi bộ"))}), other));
    REQUIRE(conflict["status"] == "conflict");
    const auto conflict_id = conflict["conflict_id"].get<std::string>();

    const auto record_before = f.get("/v1/records/registrations/r-1").body_json();
    const auto history_before = f.get("/v1/records/registrations/r-1/history").body_json();
    const auto conflict_before = f.get("/v1/conflicts/" + conflict_id).body_json();
    const auto feed_before = f.sync(json{{"cursor", ""}});

    f.restart();

    CHECK(f.get("/v1/health").status == 200);
    CHECK(f.get("/v1/records/registrations/r-1").body_json() == record_before);
    CHECK(f.get("/v1/records/registrations/r-1/history").body_json() == history_before);
    CHECK(f.get("/v1/conflicts/" + conflict_id).body_json() == conflict_before);
    CHECK(f.get("/v1/conflicts/" + conflict_id, other).status == 200);  // both tokens still valid
    const auto feed_after = f.sync(json{{"cursor", ""}});
    CHECK(feed_after["changes"] == feed_before["changes"]);
    CHECK(feed_after["cursor"] == feed_before["cursor"]);

    // Decided change ids survived: the first batch, replayed, is answered as the first time.
    CHECK(f.sync(first_batch)["results"] == first["results"]);
    CHECK(f.get("/v1/records/registrations/r-1/history").body_json()["versions"].size() == 2);

    // Writing goes on from where it was; the old cursor still delivers only what is new.
    const auto next = only_result(f.sync(batch("b-4", {put_change("c-5", "members", "m-1", 1, {{"name", "Phan Thị Thảo"}, {"cell", "Chi bộ ấp 2"}})})));
    CHECK(next["status"] == "applied");
    CHECK(next["version"] == 2);
    const auto tail = f.sync(json{{"cursor", feed_before["cursor"]}});
    REQUIRE(tail["changes"].size() == 1);
    CHECK(tail["changes"][0]["id"] == "m-1");
    CHECK(tail["changes"][0]["version"] == 2);
}

}  // namespace fieldsync::e2e
