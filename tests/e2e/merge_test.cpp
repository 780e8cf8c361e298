// Every branch of the merge rule (design.md), through POST /v1/sync and the read endpoints of
// a real server.

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

namespace fieldsync::e2e {
namespace {

json member(const std::string& name, const std::string& cell = "Chi bộ ấp 3", json extra = json::object()) {
    json d = {{"name", name}, {"cell", cell}};
    for (auto& [k, v] : extra.items()) d[k] = v;
    return d;
}

std::string hlc_at(std::int64_t wall_ms) { return std::to_string(wall_ms) + "-0"; }

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

TEST_CASE("a new record is applied, then an edit of its head fast-forwards", "[e2e][merge]") {
    server_fixture f;
    const auto name = giong_trom()["family_names"][0].get<std::string>() + " Văn An";
    auto r1 = f.sync(batch("b-1", {put_change("c-1", "members", "m-1", 0, member(name))}));
    const auto res1 = only_result(r1);
    CHECK(res1["status"] == "applied");
    CHECK(res1["version"] == 1);
    CHECK(res1["change_id"] == "c-1");
    REQUIRE(r1["changes"].size() == 1);
    CHECK(r1["changes"][0]["id"] == "m-1");
    CHECK(r1["changes"][0]["data"]["name"] == name);
    CHECK(r1["cursor"].is_string());
    CHECK(r1["server_hlc"].is_string());

    auto got = f.get("/v1/records/members/m-1");
    REQUIRE(got.status == 200);
    CHECK(got.body_json()["version"] == 1);
    CHECK(got.body_json()["deleted"] == false);
    CHECK(got.body_json()["data"] == member(name));
    CHECK(got.body_json()["unit_id"] == "xa-binh-hoa");

    auto r2 = f.sync(batch("b-2", {put_change("c-2", "members", "m-1", 1, member(name, "Chi bộ ấp 4"))}));
    CHECK(only_result(r2)["status"] == "applied");
    CHECK(only_result(r2)["version"] == 2);

    auto hist = f.get("/v1/records/members/m-1/history");
    REQUIRE(hist.status == 200);
    const auto versions = hist.body_json()["versions"];
    REQUIRE(versions.size() == 2);
    CHECK(versions[0]["version"] == 1);
    CHECK(versions[0]["how"] == "applied");
    CHECK(versions[0]["device_id"] == f.device().id);
    CHECK(versions[0]["change_id"] == "c-1");
    CHECK(versions[1]["version"] == 2);
    CHECK(versions[1]["data"]["cell"] == "Chi bộ ấp 4");
    CHECK(versions[1]["seq"].get<std::int64_t>() > versions[0]["seq"].get<std::int64_t>());
}

TEST_CASE("concurrent edits of different fields merge", "[e2e][merge]") {
    server_fixture f;
    const auto other = f.add_device("Máy bí thư chi bộ", "xa-binh-hoa");
    f.sync(batch("b-0", {put_change("c-0", "members", "m-1", 0, member("Trần Thị Mai", "Chi bộ ấp 3", {{"role", "đảng viên"}}))}));

    // Both devices edited version 1 offline; each changed a different field.
    auto a = f.sync(batch("b-a", {put_change("c-a", "members", "m-1", 1,
                                             member("Trần Thị Mai", "Chi bộ ấp 3", {{"role", "bí thư chi bộ"}}))}));
    CHECK(only_result(a)["status"] == "applied");
    CHECK(only_result(a)["version"] == 2);
    const auto commitment = giong_trom()["concrete_commitments"][0].get<std::string>();
    auto b = f.sync(batch("b-b", {put_change("c-b", "members", "m-1", 1,
                                             member("Trần Thị Mai", "Chi bộ ấp 3",
                                                    {{"role", "đảng viên"}, {"notes", commitment}}))}),
                    other);
    CHECK(only_result(b)["status"] == "merged");
    CHECK(only_result(b)["version"] == 3);
    CHECK_FALSE(only_result(b).contains("conflict_id"));

    const auto rec = f.get("/v1/records/members/m-1").body_json();
    CHECK(rec["version"] == 3);
    CHECK(rec["data"]["role"] == "bí thư chi bộ");
    CHECK(rec["data"]["notes"] == commitment);
    const auto hist = f.get("/v1/records/members/m-1/history").body_json()["versions"];
    REQUIRE(hist.size() == 3);
    CHECK(hist[2]["how"] == "merged");

    // A concurrent edit that the head already contains changes nothing but is still merged.
    auto c = f.sync(batch("b-c", {put_change("c-c", "members", "m-1", 1,
                                             member("Trần Thị Mai", "Chi bộ ấp 3", {{"role", "bí thư chi bộ"}}))}));
    CHECK(only_result(c)["status"] == "merged");
    CHECK(f.get("/v1/records/members/m-1").body_json()["data"]["notes"] == commitment);
}

TEST_CASE("nested objects merge by field", "[e2e][merge]") {
    server_fixture f;
    const json contact = {{"phone", "0903 000 111"}, {"address", "ấp 3, xã Bình Hòa"}};
    f.sync(batch("b-0", {put_change("c-0", "members", "m-1", 0, member("Lê Văn Hùng", "Chi bộ ấp 3", {{"contact", contact}}))}));

    json a_contact = contact;
    a_contact["phone"] = "0903 999 888";
    json b_contact = contact;
    b_contact["address"] = "ấp 5, xã Bình Hòa";
    CHECK(only_result(f.sync(batch("b-a", {put_change("c-a", "members", "m-1", 1,
                                                      member("Lê Văn Hùng", "Chi bộ ấp 3", {{"contact", a_contact}}))})))["status"] ==
          "applied");
    const auto b = only_result(
        f.sync(batch("b-b", {put_change("c-b", "members", "m-1", 1, member("Lê Văn Hùng", "Chi bộ ấp 3", {{"contact", b_contact}}))})));
    CHECK(b["status"] == "merged");
    CHECK(b["version"] == 3);
    const auto rec = f.get("/v1/records/members/m-1").body_json();
    CHECK(rec["data"]["contact"]["phone"] == "0903 999 888");
    CHECK(rec["data"]["contact"]["address"] == "ấp 5, xã Bình Hòa");
}

TEST_CASE("the same field edited twice is an open conflict holding both texts byte for byte, NFC and NFD",
          "[e2e][merge][text]") {
    server_fixture f;
    const auto other = f.add_device("Máy đảng viên", "xa-binh-hoa");
    const auto& data = giong_trom();
    const auto base_text = data["vague_commitments"][0].get<std::string>();
    const auto head_text = data["concrete_commitments"][0].get<std::string>();           // NFC, as in the file
    const auto incoming_text = to_nfd(data["concrete_commitments"][1].get<std::string>());  // decomposed
    REQUIRE(incoming_text != data["concrete_commitments"][1].get<std::string>());
    REQUIRE(incoming_text.size() > data["concrete_commitments"][1].get<std::string>().size());

    f.sync(batch("b-0", {put_change("c-0", "members", "m-1", 0, member("Phạm Thị Hạnh", "Chi bộ ấp 3", {{"notes", base_text}}))}));
    const auto a = only_result(f.sync(batch(
        "b-a", {put_change("c-a", "members", "m-1", 1, member("Phạm Thị Hạnh", "Chi bộ ấp 3", {{"notes", head_text}}))})));
    REQUIRE(a["status"] == "applied");

    const auto b = only_result(f.sync(batch(
        "b-b", {put_change("c-b", "members", "m-1", 1, member("Phạm Thị Hạnh", "Chi bộ ấp 3", {{"notes", incoming_text}}))}), other));
    CHECK(b["status"] == "conflict");
    CHECK(b["version"] == 2);  // the head stays
    REQUIRE(b.contains("conflict_id"));
    const auto conflict_id = b["conflict_id"].get<std::string>();

    // The head keeps the first text, unchanged to the byte.
    const auto rec = f.get("/v1/records/members/m-1");
    REQUIRE(rec.status == 200);
    CHECK(rec.body_json()["version"] == 2);
    CHECK(rec.body_json()["data"]["notes"].get<std::string>() == head_text);
    CHECK(rec.body.find(head_text) != std::string::npos);  // sent as UTF-8, not re-encoded

    // The conflict holds both sides whole, each byte for byte.
    const auto c = f.get("/v1/conflicts/" + conflict_id);
    REQUIRE(c.status == 200);
    const auto cj = c.body_json();
    CHECK(cj["id"] == conflict_id);
    CHECK(cj["status"] == "open");
    CHECK(cj["collection"] == "members");
    CHECK(cj["record_id"] == "m-1");
    CHECK(cj["base_version"] == 1);
    CHECK(cj["head_version"] == 2);
    CHECK(cj["base"]["notes"].get<std::string>() == base_text);
    CHECK(cj["head"]["notes"].get<std::string>() == head_text);
    CHECK(cj["incoming"]["notes"].get<std::string>() == incoming_text);
    CHECK(c.body.find(incoming_text) != std::string::npos);
    CHECK(cj["fields"] == json::array({"/notes"}));
    CHECK(cj["change_id"] == "c-b");

    const auto list = f.get("/v1/conflicts?status=open");
    REQUIRE(list.status == 200);
    REQUIRE(list.body_json()["conflicts"].size() == 1);
    CHECK(list.body_json()["conflicts"][0]["id"] == conflict_id);
    CHECK(f.get("/v1/conflicts?status=resolved").body_json()["conflicts"].empty());

    // NFD and NFC names are stored and pulled as sent, never normalised.
    const auto name_nfc = data["family_names"][9].get<std::string>() + " " + data["middle_names"][6].get<std::string>() + " " +
                          data["given_names"][4].get<std::string>();
    const auto name_nfd = to_nfd(name_nfc);
    REQUIRE(name_nfd != name_nfc);
    f.sync(batch("b-n", {put_change("c-n1", "members", "m-nfc", 0, member(name_nfc)),
                         put_change("c-n2", "members", "m-nfd", 0, member(name_nfd))}));
    CHECK(f.get("/v1/records/members/m-nfc").body_json()["data"]["name"].get<std::string>() == name_nfc);
    CHECK(f.get("/v1/records/members/m-nfd").body_json()["data"]["name"].get<std::string>() == name_nfd);
    const auto pulled = f.sync(json{{"cursor", ""}});
    int seen = 0;
    for (const auto& ch : pulled["changes"]) {
        if (ch["id"] == "m-nfc") {
            CHECK(ch["data"]["name"].get<std::string>() == name_nfc);
            ++seen;
        }
        if (ch["id"] == "m-nfd") {
            CHECK(ch["data"]["name"].get<std::string>() == name_nfd);
            ++seen;
        }
    }
    CHECK(seen == 2);
}

TEST_CASE("a delete against an edited head is a conflict", "[e2e][merge]") {
    server_fixture f;
    f.sync(batch("b-0", {put_change("c-0", "members", "m-1", 0, member("Võ Văn Nam"))}));
    REQUIRE(only_result(f.sync(batch("b-a", {put_change("c-a", "members", "m-1", 1, member("Võ Văn Nam", "Chi bộ ấp 7"))})))["status"] ==
            "applied");
    const auto d = only_result(f.sync(batch("b-d", {delete_change("c-d", "members", "m-1", 1)})));
    CHECK(d["status"] == "conflict");
    CHECK(d["version"] == 2);
    REQUIRE(d.contains("conflict_id"));
    const auto c = f.get("/v1/conflicts/" + d["conflict_id"].get<std::string>()).body_json();
    CHECK(c["incoming_deleted"] == true);
    CHECK(c["head_deleted"] == false);
    CHECK(c["head"]["cell"] == "Chi bộ ấp 7");
    const auto rec = f.get("/v1/records/members/m-1").body_json();
    CHECK(rec["deleted"] == false);
    CHECK(rec["version"] == 2);
}

TEST_CASE("an edit against a deleted head is a conflict", "[e2e][merge]") {
    server_fixture f;
    f.sync(batch("b-0", {put_change("c-0", "members", "m-1", 0, member("Đặng Thị Lan"))}));
    const auto del = only_result(f.sync(batch("b-d", {delete_change("c-d", "members", "m-1", 1)})));
    REQUIRE(del["status"] == "applied");
    CHECK(del["version"] == 2);
    const auto gone = f.get("/v1/records/members/m-1").body_json();
    CHECK(gone["deleted"] == true);
    CHECK(gone["data"].is_null());

    const auto e = only_result(f.sync(batch("b-e", {put_change("c-e", "members", "m-1", 1, member("Đặng Thị Lan", "Chi bộ ấp 2"))})));
    CHECK(e["status"] == "conflict");
    CHECK(e["version"] == 2);
    REQUIRE(e.contains("conflict_id"));
    const auto c = f.get("/v1/conflicts/" + e["conflict_id"].get<std::string>()).body_json();
    CHECK(c["head_deleted"] == true);
    CHECK(c["incoming_deleted"] == false);
    CHECK(c["incoming"]["cell"] == "Chi bộ ấp 2");
    CHECK(f.get("/v1/records/members/m-1").body_json()["deleted"] == true);
}

TEST_CASE("two devices creating the same id merge against an empty base", "[e2e][merge]") {
    server_fixture f;
    const auto other = f.add_device("Máy thứ hai", "xa-binh-hoa");
    REQUIRE(only_result(f.sync(batch("b-a", {put_change("c-a", "members", "m-1", 0, member("Huỳnh Văn Tâm", "Chi bộ ấp 1", {{"role", "đảng viên"}}))})))["status"] ==
            "applied");
    // Same values where both set a field merge; different values collide.
    const auto b = only_result(f.sync(
        batch("b-b", {put_change("c-b", "members", "m-1", 0, member("Huỳnh Văn Tâm", "Chi bộ ấp 2", {{"role", "đảng viên"}}))}), other));
    CHECK(b["status"] == "conflict");
    REQUIRE(b.contains("conflict_id"));
    const auto c = f.get("/v1/conflicts/" + b["conflict_id"].get<std::string>()).body_json();
    CHECK(c["fields"] == json::array({"/cell"}));
    CHECK(c["base_version"] == 0);

    const auto same = only_result(f.sync(
        batch("b-c", {put_change("c-c", "members", "m-1", 0, member("Huỳnh Văn Tâm", "Chi bộ ấp 1", {{"joined", "2010-05-19"}}))}), other));
    CHECK(same["status"] == "merged");
    CHECK(f.get("/v1/records/members/m-1").body_json()["data"]["joined"] == "2010-05-19");
}

TEST_CASE("an lww collection lets the later clock win a collision and keeps the loser in history", "[e2e][merge][lww]") {
    const auto doc = json::parse(R"({"version": 1, "collections": {
        "attendance": {"policy": "lww", "fields": {
            "count": {"type": "integer", "required": true},
            "note":  {"type": "string"}}}}})");
    auto parsed = proto::schema::from_json(doc);
    REQUIRE(parsed);
    const proto::schema schema = std::move(*parsed);
    server_fixture f(server_fixture::quick_options(), &schema);
    const auto other = f.add_device("Máy tổ chức thứ hai", "xa-binh-hoa");

    const auto t0 = now_ms() - 60'000;
    auto put = [&](const std::string& cid, std::int64_t base, json data, std::int64_t wall) {
        auto c = put_change(cid, "attendance", "s-1", base, std::move(data));
        c["hlc"] = hlc_at(wall);
        return c;
    };
    REQUIRE(only_result(f.sync(batch("b-0", {put("c-0", 0, {{"count", 10}}, t0)})))["status"] == "applied");
    REQUIRE(only_result(f.sync(batch("b-a", {put("c-a", 1, {{"count", 12}}, t0 + 2000)})))["status"] == "applied");

    // Earlier clock: the head's value stays; the answer is merged, not a conflict.
    const auto lose = only_result(f.sync(batch("b-b", {put("c-b", 1, {{"count", 11}, {"note", "tổ 2"}}, t0 + 1000)}), other));
    CHECK(lose["status"] == "merged");
    CHECK_FALSE(lose.contains("conflict_id"));
    auto rec = f.get("/v1/records/attendance/s-1").body_json();
    CHECK(rec["data"]["count"] == 12);
    CHECK(rec["data"]["note"] == "tổ 2");  // no collision on note: taken from the incoming side

    // Later clock: the incoming value wins; the head's value is kept in history as lost.
    const auto win = only_result(f.sync(batch("b-c", {put("c-c", 1, {{"count", 15}}, t0 + 3000)}), other));
    CHECK(win["status"] == "merged");
    rec = f.get("/v1/records/attendance/s-1").body_json();
    CHECK(rec["data"]["count"] == 15);
    const auto hist = f.get("/v1/records/attendance/s-1/history").body_json()["versions"];
    REQUIRE_FALSE(hist.empty());
    const auto& last = hist.back();
    CHECK(last["version"] == rec["version"]);
    CHECK(last["how"] == "merged");
    CHECK(last["lost"].value("/count", json()) == 12);
    CHECK(f.get("/v1/conflicts?status=any").body_json()["conflicts"].empty());
}

TEST_CASE("a base ahead of the head, or a base that cannot be used, is rejected", "[e2e][merge]") {
    server_fixture f;
    f.sync(batch("b-0", {put_change("c-0", "members", "m-1", 0, member("Bùi Văn Lộc"))}));

    const auto ahead = only_result(f.sync(batch("b-1", {put_change("c-1", "members", "m-1", 5, member("Bùi Văn Lộc", "X"))})));
    CHECK(ahead["status"] == "rejected");
    CHECK(ahead["error"]["code"] == "base_ahead");
    CHECK_FALSE(ahead["error"]["message"].get<std::string>().empty());
    const auto new_ahead = only_result(f.sync(batch("b-2", {put_change("c-2", "members", "m-none", 3, member("Bùi Văn Lộc"))})));
    CHECK(new_ahead["status"] == "rejected");
    CHECK(new_ahead["error"]["code"] == "base_ahead");
    CHECK(f.get("/v1/records/members/m-none").status == 404);
    CHECK(f.get("/v1/records/members/m-1").body_json()["version"] == 1);

    // A patch needs its base's fields; a deleted base has none.
    REQUIRE(only_result(f.sync(batch("b-3", {delete_change("c-3", "members", "m-1", 1)})))["status"] == "applied");
    const auto unknown = only_result(f.sync(batch("b-4", {patch_change("c-4", "members", "m-1", 2, {{"role", "x"}})})));
    CHECK(unknown["status"] == "rejected");
    CHECK(unknown["error"]["code"] == "unknown_base");
    CHECK(f.get("/v1/records/members/m-1").body_json()["version"] == 2);
}

TEST_CASE("a patch changes only the fields it names and merges like a put", "[e2e][merge][patch]") {
    server_fixture f;
    f.sync(batch("b-0", {put_change("c-0", "members", "m-1", 0, member("Ngô Thị Yến", "Chi bộ ấp 3", {{"role", "đảng viên"}}))}));
    const auto p1 = only_result(f.sync(batch("b-1", {patch_change("c-1", "members", "m-1", 1, {{"role", "phó bí thư"}})})));
    CHECK(p1["status"] == "applied");
    CHECK(p1["version"] == 2);
    auto rec = f.get("/v1/records/members/m-1").body_json()["data"];
    CHECK(rec == member("Ngô Thị Yến", "Chi bộ ấp 3", {{"role", "phó bí thư"}}));

    // A concurrent patch from version 1 touching another field merges.
    const auto p2 = only_result(f.sync(batch("b-2", {patch_change("c-2", "members", "m-1", 1, {{"notes", "Tiết kiệm giấy"}})})));
    CHECK(p2["status"] == "merged");
    CHECK(p2["version"] == 3);
    rec = f.get("/v1/records/members/m-1").body_json()["data"];
    CHECK(rec["role"] == "phó bí thư");
    CHECK(rec["notes"] == "Tiết kiệm giấy");

    // null removes a field (RFC 7396).
    const auto p3 = only_result(f.sync(batch("b-3", {patch_change("c-3", "members", "m-1", 3, {{"notes", nullptr}})})));
    CHECK(p3["status"] == "applied");
    CHECK_FALSE(f.get("/v1/records/members/m-1").body_json()["data"].contains("notes"));

    // A patch from version 1 colliding on role is a conflict like any other.
    const auto p4 = only_result(f.sync(batch("b-4", {patch_change("c-4", "members", "m-1", 1, {{"role", "bí thư"}})})));
    CHECK(p4["status"] == "conflict");
}

}  // namespace fieldsync::e2e
