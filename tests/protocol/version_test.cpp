// The handshake's pieces (SPEC.md, "Versions and the handshake"): header values, how a
// server ranks a client, and the upgrade notice's codec.
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/protocol/version.hpp>

#include <catch2/catch.hpp>

namespace fp = fieldsync::protocol;
using fp::client_standing;
using fp::json;

TEST_CASE("version headers are decimal integers from 1 to 2^63-1", "[protocol][version]") {
    CHECK(fp::parse_version("1") == 1);
    CHECK(fp::parse_version("42") == 42);
    CHECK(fp::parse_version("9223372036854775807") == INT64_MAX);
    for (const char* bad : {"", "0", "-1", "+2", " 2", "2 ", "2.0", "1e3", "0x2", "9223372036854775808", "two"})
        CHECK_FALSE(fp::parse_version(bad));
}

TEST_CASE("a server ranks clients by protocol and schema", "[protocol][version]") {
    const fp::server_versions s{.protocol = 3, .min_protocol = 2, .schema = 5, .min_schema = 4};
    CHECK(fp::standing(fp::client_versions{3, 5, true}, s) == client_standing::current);
    CHECK(fp::standing(fp::client_versions{3, 9, true}, s) == client_standing::current);  // newer schema: fields kept
    CHECK(fp::standing(fp::client_versions{2, 5, true}, s) == client_standing::older);
    CHECK(fp::standing(fp::client_versions{3, 4, true}, s) == client_standing::older);
    CHECK(fp::standing(fp::client_versions{1, 5, true}, s) == client_standing::too_old);
    CHECK(fp::standing(fp::client_versions{3, 3, true}, s) == client_standing::too_old);
    CHECK(fp::standing(fp::client_versions{4, 5, true}, s) == client_standing::too_new);
    CHECK(fp::standing(fp::client_versions{4, 1, true}, s) == client_standing::too_new);
}

TEST_CASE("the upgrade notice travels in a sync response and back", "[protocol][version]") {
    fp::sync_response r;
    r.cursor = "7";
    r.upgrade = fp::upgrade_notice{true, {.protocol = 2, .min_protocol = 1, .schema = 3, .min_schema = 2}};
    const auto j = fp::encode(r);
    CHECK(j.at("upgrade") == json{{"required", true}, {"protocol", 2}, {"min_protocol", 1}, {"schema", 3}, {"min_schema", 2}});
    const auto back = fp::decode_sync_response(j);
    REQUIRE(back);
    REQUIRE(back->upgrade);
    CHECK(back->upgrade->required);
    CHECK(back->upgrade->server.schema == 3);
    CHECK(back->upgrade->server.min_schema == 2);

    fp::sync_response none;
    CHECK_FALSE(fp::encode(none).contains("upgrade"));
    auto broken = j;
    broken["upgrade"].erase("schema");
    CHECK_FALSE(fp::decode_sync_response(broken));
}

TEST_CASE("a schema's min_client_schema lies between 1 and its version", "[protocol][version][schema]") {
    auto doc = json::parse(std::string(fp::schema::default_schema_text()));
    CHECK(fp::schema::from_json(doc)->min_client_version() == 1);
    doc["version"] = 4;
    doc["min_client_schema"] = 3;
    CHECK(fp::schema::from_json(doc)->min_client_version() == 3);
    for (const json bad : {json(0), json(5), json("3"), json(2.0)}) {
        doc["min_client_schema"] = bad;
        const auto s = fp::schema::from_json(doc);
        REQUIRE_FALSE(s);
        CHECK(s.err().message.find("min_client_schema") != std::string::npos);
    }
}
