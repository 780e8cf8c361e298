// The version handshake through a real server (issue 6, "an old-schema client uploads"):
// replicas built with an older schema or protocol push everything they hold, keep the fields
// of the newer schema they do not know, and are told to upgrade; a replica newer than the
// server gets server_too_old and keeps its outbox.

#include "e2e_support.hpp"
#include "replica_internal.hpp"

using namespace fieldsync;
using namespace fieldsync::test;
using client::errc;
using client::sync_state;

namespace {

/// The default schema at `version`, whose members gained a field `phone` in version 2.
protocol::schema schema_at(std::int64_t version, std::int64_t min_client = 1) {
    auto doc = json::parse(std::string(protocol::schema::default_schema_text()));
    doc["version"] = version;
    if (min_client > 1) doc["min_client_schema"] = min_client;
    if (version >= 2) doc["collections"]["members"]["fields"]["phone"] = {{"type", "string"}, {"max_length", 40}};
    auto s = protocol::schema::from_json(doc);
    INFO((s ? std::string() : s.err().message));
    REQUIRE(s);
    return std::move(*s);
}

/// A replica built with `schema`, speaking `protocol_version`.
std::unique_ptr<client::replica> replica_with(live_server& server, temp_dir& dir, const std::string& name,
                                              const protocol::schema& schema, std::int64_t protocol_version) {
    client::replica_options o;
    o.path = dir.file(name + ".db");
    o.schema = &schema;
    auto r = client::replica::open(std::move(o));
    REQUIRE(r);
    client::replica_test_access::set_protocol_version(**r, protocol_version);
    ok((*r)->configure(server.url(), server.add_device("Máy " + name)));
    return std::move(*r);
}

json head_of(live_server& server, const std::string& id) {
    auto h = server.store().get("members", id);
    REQUIRE(h);
    REQUIRE(h->has_value());
    return (*h)->data;
}

// "Nguyễn Thị Hồng" typed decomposed (NFD): base letters followed by combining marks.
const std::string k_nfd_name = "Nguye\xCC\x82\xCC\x83n Thi\xCC\xA3 Ho\xCC\x82\xCC\x80ng";

}  // namespace

TEST_CASE("an old-schema client uploads its edits, keeps the newer schema's fields and is told to upgrade",
          "[client][e2e][handshake]") {
    const auto v1 = schema_at(1);
    const auto v2 = schema_at(2);
    live_server server({.schema = &v2});
    temp_dir dir;
    auto fresh = replica_with(server, dir, "new", v2, protocol::protocol_version);
    auto old = replica_with(server, dir, "old", v1, 1);

    // A current client writes members with the field the old schema lacks.
    const auto m1 = ok(fresh->put("members", {{"name", "Trần Văn Ba"}, {"cell", "Chi bộ ấp 3"}, {"phone", "0903 123 456"}},
                                  {.id = "", .unit_id = "ap-3"}))
                        .id;
    const auto m2 = ok(fresh->put("members", {{"name", "Lê Thị Tư"}, {"cell", "Chi bộ ấp 3"}, {"role", "đảng viên"},
                                              {"phone", "0913 000 111"}},
                                  {.id = "", .unit_id = "ap-3"}))
                        .id;
    const auto fresh_report = ok(fresh->sync());
    CHECK_FALSE(fresh_report.upgrade);

    // The old client pulls them (with the unknown field, byte for byte) and is told to upgrade.
    const auto first = ok(old->sync());
    REQUIRE(first.upgrade);
    CHECK_FALSE(first.upgrade->required);
    CHECK(first.upgrade->server.protocol == protocol::protocol_version);
    CHECK(first.upgrade->server.schema == 2);
    CHECK(ok(old->get("members", m1))->data.at("phone") == "0903 123 456");

    // Offline, the old client rewrites both records whole as its schema knows them (no phone):
    // m1 as a patchable edit, m2 with a null field (which goes as a whole-record put), and
    // creates a member; meanwhile the new client changes m1's phone.
    ok(old->put("members", {{"name", k_nfd_name}, {"cell", "Chi bộ ấp 3"}}, {.id = m1, .unit_id = ""}));
    ok(old->put("members", {{"name", "Lê Thị Tư"}, {"cell", "Chi bộ ấp 3"}, {"role", nullptr}},
                {.id = m2, .unit_id = ""}));
    const auto m3 = ok(old->put("members", {{"name", "Võ Văn Năm"}, {"cell", "Chi bộ ấp 3"}}, {.id = "", .unit_id = "ap-3"})).id;
    CHECK(ok(old->get("members", m1))->data.at("phone") == "0903 123 456");  // kept locally
    ok(fresh->patch("members", m1, {{"phone", "0909 999 999"}}));
    ok(fresh->sync());

    const auto up = ok(old->sync());
    CHECK(up.pushed == 3);
    CHECK(up.rejected == 0);
    CHECK(up.conflicts == 0);
    REQUIRE(up.upgrade);
    CHECK_FALSE(up.upgrade->required);
    CHECK(ok(old->pending_count()) == 0);

    // The server kept every field: the old client's name (NFD bytes as sent), the new
    // client's phone, and m2's phone through a whole-record put.
    const auto h1 = head_of(server, m1);
    CHECK(h1.at("name") == k_nfd_name);
    CHECK(h1.at("phone") == "0909 999 999");
    const auto h2 = head_of(server, m2);
    CHECK(h2.at("phone") == "0913 000 111");
    CHECK(h2.at("role").is_null());
    CHECK(head_of(server, m3).at("name") == "Võ Văn Năm");

    // And the new client sees the old client's edits with its own fields intact.
    ok(fresh->sync());
    CHECK(ok(fresh->get("members", m1))->data == h1);
    CHECK(ok(fresh->get("members", m2))->data == h2);
}

TEST_CASE("a client below the server's minimum pushes its pending edits first, then gets client_too_old",
          "[client][e2e][handshake]") {
    const auto v1 = schema_at(1);
    const auto v2 = schema_at(2);
    const auto v2_strict = schema_at(2, 2);
    live_server server({.schema = &v2});
    temp_dir dir;
    auto fresh = replica_with(server, dir, "new", v2, protocol::protocol_version);
    auto old = replica_with(server, dir, "old", v1, 1);
    const auto m1 = ok(fresh->put("members", {{"name", "Trần Văn Ba"}, {"cell", "Chi bộ ấp 3"}, {"phone", "0903 123 456"}},
                                  {.id = "", .unit_id = "ap-3"}))
                        .id;
    ok(fresh->sync());
    ok(old->sync());

    // Offline edits of the old client; then the district raises the minimum client schema.
    ok(old->put("members", {{"name", k_nfd_name}, {"cell", "Chi bộ ấp 3"}}, {.id = m1, .unit_id = ""}));
    std::vector<std::string> created;
    for (std::size_t i = 0; i < 3; ++i)
        created.push_back(ok(old->put("members", member(i), {.id = "", .unit_id = "ap-3"})).id);
    server.restart({.schema = &v2_strict});
    ok(old->configure(server.url(), server.add_device("Máy old, again")));

    const auto r = old->sync();
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::client_too_old);
    CHECK(client::classify(errc::client_too_old) == protocol::retry_class::permanent);
    // Everything it held was uploaded and answered before it was stopped.
    CHECK(ok(old->pending_count()) == 0);
    CHECK(ok(old->get("members", m1))->state == sync_state::synced);
    const auto h1 = head_of(server, m1);
    CHECK(h1.at("name") == k_nfd_name);
    CHECK(h1.at("phone") == "0903 123 456");
    for (const auto& id : created) CHECK(head_of(server, id).at("cell") == "Chi bộ ấp 3");

    // Its next sync has nothing to push: the pull is refused by the server itself (426).
    const auto again = old->sync();
    REQUIRE_FALSE(again);
    CHECK(again.err().code == errc::client_too_old);
    CHECK(again.err().message.find("client_too_old") != std::string::npos);

    // A current client is served as before.
    ok(fresh->configure(server.url(), server.add_device("Máy new, again")));
    ok(fresh->sync());
    CHECK(ok(fresh->get("members", m1))->data == h1);
}

TEST_CASE("a client of a protocol below the server's minimum still uploads, then gets client_too_old",
          "[client][e2e][handshake]") {
    live_server server({.min_client_protocol = protocol::protocol_version});
    temp_dir dir;
    auto old = replica_with(server, dir, "old", protocol::schema::default_schema(), 1);
    const auto id = ok(old->put("members", member(4), {.id = "", .unit_id = "ap-3"})).id;
    const auto r = old->sync();
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::client_too_old);
    CHECK(ok(old->pending_count()) == 0);
    CHECK(head_of(server, id) == member(4));
}

TEST_CASE("a client newer than the server gets server_too_old and keeps its outbox intact",
          "[client][e2e][handshake]") {
    live_server server;
    temp_dir dir;
    auto next = replica_with(server, dir, "next", protocol::schema::default_schema(), protocol::protocol_version + 1);
    const auto a = ok(next->put("members", member(1), {.id = "", .unit_id = "ap-3"})).id;
    const auto b = ok(next->put("members", {{"name", k_nfd_name}, {"cell", "Chi bộ ấp 3"}}, {.id = "", .unit_id = "ap-3"})).id;

    for (int attempt = 0; attempt < 2; ++attempt) {
        const auto r = next->sync();
        REQUIRE_FALSE(r);
        CHECK(r.err().code == errc::server_too_old);
        CHECK(client::classify(errc::server_too_old) == protocol::retry_class::permanent);
        // The message names the server's range.
        CHECK(r.err().message.find("protocols 1 to " + std::to_string(protocol::protocol_version)) != std::string::npos);
        CHECK(ok(next->pending_count()) == 2);
        CHECK(ok(next->get("members", a))->state == sync_state::pending);
        auto none = server.store().get("members", a);
        REQUIRE(none);
        CHECK_FALSE(none->has_value());
    }

    // Once the two agree, the same outbox goes through, each change applied once.
    client::replica_test_access::set_protocol_version(*next, protocol::protocol_version);
    const auto report = ok(next->sync());
    CHECK(report.applied == 2);
    CHECK(head_of(server, b).at("name") == k_nfd_name);
    auto h = server.store().history("members", a);
    REQUIRE(h);
    CHECK(h->size() == 1);
}
