// The version handshake on the wire (SPEC.md, "Versions and the handshake"): request headers,
// the upgrade notice, and the two refusals with the server's versions.

#include "e2e/support.hpp"

#include <fieldsync/protocol/version.hpp>

#include <catch2/catch.hpp>

namespace fieldsync::e2e {

namespace {

/// The default schema at version 3, serving pulls to clients of schema 2 or newer.
proto::schema schema_v3() {
    auto doc = json::parse(std::string(proto::schema::default_schema_text()));
    doc["version"] = 3;
    doc["min_client_schema"] = 2;
    auto s = proto::schema::from_json(doc);
    REQUIRE(s);
    return std::move(*s);
}

http_reply sync_as(const server_fixture& f, const json& body, const std::string& protocol, const std::string& schema) {
    std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + f.token()},
                                                                {"Content-Type", "application/json"}};
    if (!protocol.empty()) headers.emplace_back("Fieldsync-Protocol", protocol);
    if (!schema.empty()) headers.emplace_back("Fieldsync-Schema", schema);
    return http_request(f.port(), "POST", "/v1/sync", body.dump(), headers);
}

json member_data(const std::string& name) { return {{"name", name}, {"cell", "Chi bộ ấp 3 Bình Hòa"}}; }

void check_server_versions(const json& v) {
    CHECK(v.at("protocol") == proto::protocol_version);
    CHECK(v.at("min_protocol") == 1);
    CHECK(v.at("schema") == 3);
    CHECK(v.at("min_schema") == 2);
}

}  // namespace

TEST_CASE("the handshake: current, older, too old and too new clients", "[e2e][handshake]") {
    const auto schema = schema_v3();
    server_fixture f(server_fixture::quick_options(), &schema);
    const auto nfd = to_nfd("Nguyễn Thị Hồng");

    SECTION("a current client gets a plain answer") {
        const auto r = sync_as(f, batch("b1", {put_change("c1", "members", "m1", 0, member_data(nfd))}),
                               std::to_string(proto::protocol_version), "3");
        REQUIRE(r.status == 200);
        CHECK_FALSE(r.body_json().contains("upgrade"));
        CHECK(only_result(r.body_json()).at("status") == "applied");
    }
    SECTION("an older client is served and told it may upgrade") {
        const auto r = sync_as(f, batch("b1", {put_change("c1", "members", "m1", 0, member_data(nfd))}), "1", "2");
        REQUIRE(r.status == 200);
        const auto body = r.body_json();
        REQUIRE(body.contains("upgrade"));
        CHECK(body["upgrade"].at("required") == false);
        check_server_versions(body["upgrade"]);
        CHECK(body.at("changes").size() == 1);  // its own record, pulled as usual
    }
    SECTION("a client below the minimum pushes, gets an empty page, and is refused everything else") {
        // No headers at all: a client from before the handshake is protocol 1, schema 1.
        json first = batch("b1", {put_change("c1", "members", "m1", 0, member_data(nfd)),
                                  put_change("c2", "members", "m2", 0, {{"name", 5}})});
        first["cursor"] = "";
        const auto r = sync_as(f, first, "", "");
        REQUIRE(r.status == 200);
        const auto body = r.body_json();
        REQUIRE(body.at("results").size() == 2);
        CHECK(body["results"][0].at("status") == "applied");
        CHECK(body["results"][1].at("status") == "rejected");
        CHECK(body.at("changes").empty());
        CHECK(body.at("cursor") == "");
        CHECK(body.at("more") == false);
        CHECK(body["upgrade"].at("required") == true);
        check_server_versions(body["upgrade"]);
        auto head = f.store().get("members", "m1");
        REQUIRE(head);
        REQUIRE(head->has_value());
        CHECK((*head)->data.at("name") == nfd);

        // The same change-set again is answered the same (idempotency holds for them too).
        const auto replay = sync_as(f, first, "", "");
        REQUIRE(replay.status == 200);
        CHECK(replay.body_json().at("results") == body.at("results"));

        for (const auto& refused :
             {sync_as(f, json{{"cursor", ""}}, "1", "1"),
              http_request(f.port(), "GET", "/v1/records/members/m1",
                           "", {{"Authorization", "Bearer " + f.token()}, {"Fieldsync-Schema", "1"}}),
              http_request(f.port(), "GET", "/v1/records/members/m1/history", "",
                           {{"Authorization", "Bearer " + f.token()}, {"Fieldsync-Protocol", "2"}})}) {
            CHECK(refused.status == 426);
            CHECK(refused.error_code() == "client_too_old");
            check_server_versions(refused.body_json()["error"].at("server"));
        }
        // Review tools name no versions: the conflict list is still served.
        CHECK(http_request(f.port(), "GET", "/v1/conflicts", "", {{"Authorization", "Bearer " + f.token()}}).status ==
              200);
        // With a schema at the minimum, the same device reads again.
        CHECK(sync_as(f, json{{"cursor", ""}}, "1", "2").status == 200);
    }
    SECTION("a client newer than the server is refused before anything is applied") {
        const auto r = sync_as(f, batch("b1", {put_change("c1", "members", "m9", 0, member_data(nfd))}),
                               std::to_string(proto::protocol_version + 1), "3");
        CHECK(r.status == 400);
        CHECK(r.error_code() == "unsupported_protocol");
        CHECK(r.error_message().find("protocols 1 to " + std::to_string(proto::protocol_version)) != std::string::npos);
        check_server_versions(r.body_json()["error"].at("server"));
        auto head = f.store().get("members", "m9");
        REQUIRE(head);
        CHECK_FALSE(head->has_value());
        // A newer schema alone is fine: the server keeps the fields it does not know.
        json extra = member_data(nfd);
        extra["phone"] = "0903 123 456";
        const auto ok = sync_as(f, batch("b2", {put_change("c2", "members", "m9", 0, extra)}),
                                std::to_string(proto::protocol_version), "7");
        REQUIRE(ok.status == 200);
        CHECK_FALSE(ok.body_json().contains("upgrade"));
        head = f.store().get("members", "m9");
        REQUIRE(head);
        REQUIRE(head->has_value());
        CHECK((*head)->data.at("phone") == "0903 123 456");
    }
    SECTION("malformed version headers are refused") {
        const std::vector<std::pair<std::string, std::string>> bad = {
            {"0", "3"}, {"two", "3"}, {"2", "-1"}, {"2", "3.0"}, {"2", "99999999999999999999"}};
        for (const auto& [p, s] : bad) {
            const auto r = sync_as(f, json{{"cursor", ""}}, p, s);
            INFO(p << " " << s);
            CHECK(r.status == 400);
            CHECK(r.error_code() == "bad_request");
        }
    }
}

}  // namespace fieldsync::e2e
