// Every bad input of issue 2 gets its status and stable code, changes nothing, and the server
// goes on serving afterwards.

#include "e2e/support.hpp"

#include <fieldsync/protocol/tuning.hpp>

#include <catch2/catch.hpp>

#include <functional>

#include <atomic>
#include <thread>

namespace fieldsync::e2e {
namespace {

std::atomic<int> g_probe{0};

// The server still answers health and still accepts and serves a write.
void require_still_serving(const server_fixture& f) {
    REQUIRE(http_request(f.port(), "GET", "/v1/health").status == 200);
    const auto id = "probe-" + std::to_string(++g_probe);
    const auto r = f.post_sync(batch("b-" + id, {put_change("c-" + id, "members", id, 0, {{"name", "Kiểm tra"}, {"cell", "Chi bộ ấp 1"}})}));
    REQUIRE(r.status == 200);
    REQUIRE(only_result(r.body_json())["status"] == "applied");
    REQUIRE(f.get("/v1/records/members/" + id).status == 200);
}

void check_error(const http_reply& r, int status, const std::string& code) {
    INFO("body: " << r.body);
    CHECK(r.status == status);
    CHECK(r.error_code() == code);
    CHECK_FALSE(r.error_message().empty());
    CHECK(r.headers.count("content-type"));
    if (r.headers.count("content-type")) CHECK(r.headers.at("content-type") == "application/json");
}

// The per-change answer of a one-change batch (the request itself is fine: 200).
json one_change_result(const server_fixture& f, const json& change) {
    const auto r = f.post_sync(batch("b-one", {change}));
    INFO("body: " << r.body);
    REQUIRE(r.status == 200);
    return only_result(r.body_json());
}

json member() { return {{"name", "Hoàng Minh Khánh"}, {"cell", "Chi bộ ấp 2"}}; }

// Nothing of a refused request reached the store: the feed holds only the probes.
void check_nothing_applied(const server_fixture& f, const std::string& id) {
    CHECK(f.get("/v1/records/members/" + id).status == 404);
}

}  // namespace

TEST_CASE("malformed JSON is 400 bad_json", "[e2e][bad_input]") {
    server_fixture f;
    check_error(f.post_sync_text(R"({"batch_id": "b-1", "changes": [{"change_id": "c-1", )"), 400, "bad_json");
    check_error(f.post_sync_text(""), 400, "bad_json");
    check_error(f.post_sync_text("{\"a\": 1} trailing"), 400, "bad_json");
    check_error(f.post_sync_text("[1, 2]"), 400, "bad_request");  // JSON, but not an object
    require_still_serving(f);
}

TEST_CASE("invalid UTF-8 is 400 bad_utf8", "[e2e][bad_input][text]") {
    server_fixture f;
    const std::string cases[] = {
        "\xC3\x28",          // a lead byte without its continuation
        "\xC0\xAF",          // overlong '/'
        "\xED\xA0\x80",      // a UTF-16 surrogate
        "\xF4\x90\x80\x80",  // past U+10FFFF
        "Nguy\xE1\xBB",      // truncated
    };
    for (const auto& bad : cases) {
        const std::string body = R"({"batch_id": "b-1", "changes": [{"change_id": "c-1", "collection": "members", "id": "m-1",
            "unit_id": "xa-binh-hoa", "op": "put", "base_version": 0, "data": {"name": ")" + bad + R"(", "cell": "c"}}]})";
        check_error(f.post_sync_text(body), 400, "bad_utf8");
    }
    check_nothing_applied(f, "m-1");
    require_still_serving(f);
}

TEST_CASE("JSON nested deeper than the bound is 400 too_deep", "[e2e][bad_input]") {
    server_fixture f;
    std::string deep;
    for (int i = 0; i < 40; ++i) deep += "{\"n\":";
    deep += "1";
    for (int i = 0; i < 40; ++i) deep += "}";
    const std::string body = R"({"batch_id": "b-1", "changes": [{"change_id": "c-1", "collection": "members", "id": "m-1",
        "unit_id": "xa-binh-hoa", "op": "put", "base_version": 0, "data": {"name": "x", "cell": "c", "deep": )" + deep + "}}]}";
    check_error(f.post_sync_text(body), 400, "too_deep");
    // A huge nesting costs nothing either.
    check_error(f.post_sync_text(std::string(100000, '[') + std::string(100000, ']')), 400, "too_deep");
    check_nothing_applied(f, "m-1");
    require_still_serving(f);
}

TEST_CASE("a body over the limit is 413 body_too_large, decided before the body is read", "[e2e][bad_input][limits]") {
    SECTION("refused from Content-Length alone, with no body sent") {
        server_fixture f;  // the real 8 MiB limit
        raw_connection c(f.port());
        REQUIRE(c.send("POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + f.token() +
                       "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(srv::tuning::body_limit + 1) +
                       "\r\n\r\n"));
        const auto r = c.read_reply();
        REQUIRE(r);
        check_error(*r, 413, "body_too_large");
        CHECK(r->headers.count("connection"));
        if (r->headers.count("connection")) CHECK(r->headers.at("connection") == "close");
        CHECK(c.wait_closed(5s));
        require_still_serving(f);
    }
    SECTION("a client that sends the whole oversized body still reads the answer") {
        auto o = server_fixture::quick_options();
        o.body_limit = 256 * 1024;
        server_fixture f(o);
        std::string big = R"({"batch_id": "b-1", "changes": [{"change_id": "c-1", "collection": "members", "id": "m-1",
            "unit_id": "xa-binh-hoa", "op": "put", "base_version": 0, "data": {"name": "x", "cell": "c", "notes": ")";
        big += std::string(300 * 1024, 'a') + "\"}}]}";
        const auto r = f.post_sync_text(big);
        check_error(r, 413, "body_too_large");
        check_nothing_applied(f, "m-1");
        require_still_serving(f);
    }
    SECTION("a chunked body that grows past the limit") {
        auto o = server_fixture::quick_options();
        o.body_limit = 64 * 1024;
        server_fixture f(o);
        raw_connection c(f.port());
        std::string req = "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + f.token() +
                          "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        const std::string chunk(16 * 1024, ' ');
        for (int i = 0; i < 6; ++i) req += "4000\r\n" + chunk + "\r\n";
        req += "0\r\n\r\n";
        REQUIRE(c.send(req));
        const auto r = c.read_reply();
        REQUIRE(r);
        check_error(*r, 413, "body_too_large");
        require_still_serving(f);
    }
}

TEST_CASE("a header block over the limit is 431 header_too_large", "[e2e][bad_input][limits]") {
    server_fixture f;
    const auto r = http_request(f.port(), "GET", "/v1/health", "", {{"X-Padding", std::string(20 * 1024, 'x')}});
    check_error(r, 431, "header_too_large");
    const auto many = [] {
        std::vector<std::pair<std::string, std::string>> h;
        for (int i = 0; i < 2000; ++i) h.emplace_back("X-H" + std::to_string(i), "v");
        return h;
    }();
    check_error(http_request(f.port(), "GET", "/v1/health", "", many), 431, "header_too_large");
    require_still_serving(f);
}

TEST_CASE("versions that are negative, fractional or beyond int64 are rejected, naming the field", "[e2e][bad_input]") {
    server_fixture f;
    const std::string prefix = R"({"batch_id": "b-v", "changes": [{"change_id": "c-v", "collection": "members", "id": "m-1",
        "unit_id": "xa-binh-hoa", "op": "put", "data": {"name": "x", "cell": "c"}, "base_version": )";
    for (const std::string v : {"-1", "1.5", "1.0", "1e3", "9223372036854775808", "18446744073709551616", "\"1\"", "null"}) {
        INFO("base_version " << v);
        const auto r = f.post_sync_text(prefix + v + "}]}");
        REQUIRE(r.status == 200);
        const auto res = only_result(r.body_json());
        CHECK(res["status"] == "rejected");
        CHECK(res["error"]["code"] == "bad_version");
        CHECK(res["error"]["message"].get<std::string>().find("base_version") != std::string::npos);
    }
    // The largest int64 is a well-formed version; it is simply ahead of any head.
    const auto max = only_result(f.post_sync_text(prefix + "9223372036854775807}]}").body_json());
    CHECK(max["error"]["code"] == "base_ahead");
    check_nothing_applied(f, "m-1");
    require_still_serving(f);
}

TEST_CASE("an unknown collection is rejected per change", "[e2e][bad_input]") {
    server_fixture f;
    const auto res = one_change_result(f, put_change("c-1", "khong_co", "x-1", 0, member()));
    CHECK(res["status"] == "rejected");
    CHECK(res["error"]["code"] == "unknown_collection");
    CHECK(res["error"]["message"].get<std::string>().find("khong_co") != std::string::npos);
    require_still_serving(f);
}

TEST_CASE("missing or mistyped fields are rejected, naming the field", "[e2e][bad_input]") {
    server_fixture f;
    struct bad_case {
        std::string field;
        std::function<void(json&)> spoil;
        std::string code;
    };
    const std::vector<bad_case> cases = {
        {"collection", [](json& c) { c.erase("collection"); }, "bad_field"},
        {"collection", [](json& c) { c["collection"] = 7; }, "bad_field"},
        {"id", [](json& c) { c.erase("id"); }, "bad_field"},
        {"id", [](json& c) { c["id"] = "has/slash"; }, "bad_field"},
        {"unit_id", [](json& c) { c.erase("unit_id"); }, "bad_field"},
        {"unit_id", [](json& c) { c["unit_id"] = json::array(); }, "bad_field"},
        {"op", [](json& c) { c["op"] = "upsert"; }, "bad_field"},
        {"op", [](json& c) { c["op"] = 1; }, "bad_field"},
        {"data", [](json& c) { c["data"] = "một chuỗi"; }, "bad_field"},
        {"data", [](json& c) { c.erase("data"); }, "bad_field"},
        {"hlc", [](json& c) { c["hlc"] = "yesterday"; }, "bad_field"},
        {"base_version", [](json& c) { c.erase("base_version"); }, "bad_version"},
        {"name", [](json& c) { c["data"].erase("name"); }, "schema_violation"},
        {"name", [](json& c) { c["data"]["name"] = 42; }, "schema_violation"},
        {"joined", [](json& c) { c["data"]["joined"] = "19/05/2010"; }, "schema_violation"},
    };
    int n = 0;
    for (const auto& bc : cases) {
        ++n;
        auto change = put_change("c-" + std::to_string(n), "members", "m-" + std::to_string(n), 0, member());
        bc.spoil(change);
        INFO("case " << n << ": " << change.dump());
        const auto res = one_change_result(f, change);
        CHECK(res["status"] == "rejected");
        CHECK(res["change_id"] == change["change_id"]);
        CHECK(res["error"]["code"] == bc.code);
        CHECK(res["error"]["message"].get<std::string>().find(bc.field) != std::string::npos);
        check_nothing_applied(f, "m-" + std::to_string(n));
    }
    // Without a usable change_id a change cannot be answered: the whole request is refused.
    auto no_id = put_change("c-x", "members", "m-x", 0, member());
    no_id.erase("change_id");
    const auto r = f.post_sync(batch("b-x", {no_id}));
    check_error(r, 400, "bad_request");
    CHECK(r.error_message().find("change_id") != std::string::npos);
    check_error(f.post_sync(json{{"changes", json::array({put_change("c-y", "members", "m-y", 0, member())})}}), 400,
                "bad_request");  // changes without a batch_id
    check_error(f.post_sync(json{{"batch_id", "b"}, {"changes", "nope"}}), 400, "bad_request");
    check_error(f.post_sync(json{{"cursor", ""}, {"limit", 0}}), 400, "bad_request");
    require_still_serving(f);
}

TEST_CASE("the same change_id twice in one batch is 400 duplicate_change_id and applies nothing", "[e2e][bad_input]") {
    server_fixture f;
    const auto r = f.post_sync(batch("b-1", {put_change("c-1", "members", "m-1", 0, member()),
                                             put_change("c-1", "members", "m-2", 0, member())}));
    check_error(r, 400, "duplicate_change_id");
    check_nothing_applied(f, "m-1");
    check_nothing_applied(f, "m-2");
    require_still_serving(f);
}

TEST_CASE("more changes than the batch limit is 400 too_many_changes", "[e2e][bad_input][limits]") {
    server_fixture f;
    std::vector<json> changes;
    for (std::size_t i = 0; i <= proto::tuning::max_changes_per_batch; ++i)
        changes.push_back(put_change("c-" + std::to_string(i), "members", "m-" + std::to_string(i), 0, member()));
    check_error(f.post_sync(batch("b-1", changes)), 400, "too_many_changes");
    check_nothing_applied(f, "m-0");
    // Exactly at the limit is fine.
    changes.pop_back();
    const auto ok = f.post_sync(batch("b-2", changes));
    REQUIRE(ok.status == 200);
    CHECK(ok.body_json()["results"].size() == proto::tuning::max_changes_per_batch);
    require_still_serving(f);
}

TEST_CASE("a cursor not of the server's form is 400 bad_cursor, one of its form at no position starts over",
          "[e2e][bad_input]") {
    // SPEC.md, "The feed and the cursor": the one rule for every cursor.
    server_fixture f;
    for (const json& cursor : {json("abc"), json("-1"), json("1.x"), json(" 1"), json("0.5"), json("99999999999999999999"),
                               json(5)}) {
        INFO("cursor " << cursor.dump());
        check_error(f.post_sync(json{{"cursor", cursor}}), 400, "bad_cursor");
    }
    // Of the server's form, but of an epoch or a feed position this store has not reached (a
    // store restored from an older backup issued it): answered from the beginning.
    for (const std::string cursor : {"1.5", "987654321"}) {
        INFO("cursor " << cursor);
        const auto r = f.post_sync(json{{"cursor", cursor}});
        REQUIRE(r.status == 200);
        CHECK(r.body_json()["reset"] == true);
    }
    require_still_serving(f);
}

TEST_CASE("an unknown path is 404, a wrong method 405 with Allow", "[e2e][bad_input][routing]") {
    server_fixture f;
    const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer " + f.token()}};
    check_error(http_request(f.port(), "GET", "/v2/sync", "", auth), 404, "not_found");
    check_error(http_request(f.port(), "GET", "/", "", auth), 404, "not_found");
    check_error(http_request(f.port(), "GET", "/v1/records/members", "", auth), 404, "not_found");
    check_error(http_request(f.port(), "GET", "/v1/records/members/m-1/history/extra", "", auth), 404, "not_found");
    check_error(http_request(f.port(), "GET", "/v1/health/", "", auth), 404, "not_found");
    check_error(http_request(f.port(), "GET", "/v1/records/members/m-%zz", "", auth), 400, "bad_request");
    check_error(f.get("/v1/records/members/does-not-exist"), 404, "not_found");
    check_error(f.get("/v1/records/members/does-not-exist/history"), 404, "not_found");
    check_error(f.get("/v1/conflicts/no-such-conflict"), 404, "not_found");

    auto r = http_request(f.port(), "GET", "/v1/sync", "", auth);
    check_error(r, 405, "method_not_allowed");
    CHECK(r.headers["allow"] == "POST");
    r = http_request(f.port(), "DELETE", "/v1/records/members/m-1", "", auth);
    check_error(r, 405, "method_not_allowed");
    CHECK(r.headers["allow"] == "GET");
    r = http_request(f.port(), "POST", "/v1/health", "{}", {{"Content-Type", "application/json"}});
    check_error(r, 405, "method_not_allowed");
    CHECK(r.headers["allow"] == "GET");

    // Percent-encoded path segments are decoded.
    f.sync(batch("b-1", {put_change("c-1", "members", "m-1", 0, member())}));
    CHECK(f.get("/v1/records/%6Dembers/m%2D1").status == 200);
    CHECK(f.get("/v1/records/members/m%2D1/history").status == 200);
    check_error(f.get("/v1/conflicts?status=closed"), 400, "bad_request");
    check_error(f.get("/v1/conflicts?limit=-3"), 400, "bad_request");
    check_error(f.get("/v1/conflicts?offset=x"), 400, "bad_request");
    CHECK(f.get("/v1/conflicts?status=any&limit=5&offset=0").status == 200);
    CHECK(f.get("/v1/conflicts?status=open&limit=&offset=").status == 200);
    require_still_serving(f);
}

TEST_CASE("a missing or unknown token is 401, another media type 415", "[e2e][bad_input][auth]") {
    server_fixture f;
    const auto body = batch("b-1", {put_change("c-1", "members", "m-1", 0, member())}).dump();
    auto r = http_request(f.port(), "POST", "/v1/sync", body, {{"Content-Type", "application/json"}});
    check_error(r, 401, "unauthorized");
    CHECK(r.headers["www-authenticate"] == "Bearer");
    check_error(f.post_sync_text(body, "fs1_not-a-real-token"), 401, "unauthorized");
    check_error(http_request(f.port(), "POST", "/v1/sync", body,
                             {{"Authorization", "Basic " + f.token()}, {"Content-Type", "application/json"}}),
                401, "unauthorized");
    check_error(http_request(f.port(), "POST", "/v1/sync", body, {{"Authorization", "Bearer "}, {"Content-Type", "application/json"}}),
                401, "unauthorized");
    check_error(http_request(f.port(), "GET", "/v1/records/members/m-1"), 401, "unauthorized");
    check_error(http_request(f.port(), "GET", "/v1/conflicts"), 401, "unauthorized");
    check_nothing_applied(f, "m-1");

    check_error(http_request(f.port(), "POST", "/v1/sync", body, {{"Authorization", "Bearer " + f.token()}, {"Content-Type", "text/plain"}}),
                415, "unsupported_media_type");
    check_error(http_request(f.port(), "POST", "/v1/sync", body, {{"Authorization", "Bearer " + f.token()}}), 415,
                "unsupported_media_type");
    check_nothing_applied(f, "m-1");
    const auto ok = http_request(f.port(), "POST", "/v1/sync", body,
                                 {{"Authorization", "bearer " + f.token()}, {"Content-Type", "Application/JSON; charset=utf-8"}});
    CHECK(ok.status == 200);
    CHECK(http_request(f.port(), "GET", "/v1/health").status == 200);  // health needs no token
    require_still_serving(f);
}

TEST_CASE("a malformed request line is 400 and closes the connection", "[e2e][bad_input]") {
    server_fixture f;
    for (const std::string junk : {"BLAH\r\n\r\n", "GET /v1/health HTTP/9.9\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
                                   "GET /v1/health HTTP/1.1\r\nNo colon here\r\n\r\n"}) {
        INFO(junk);
        raw_connection c(f.port());
        REQUIRE(c.send(junk));
        const auto r = c.read_reply(5s);
        REQUIRE(r);
        check_error(*r, 400, "bad_request");
        CHECK(c.wait_closed(5s));
    }
    // Bytes that never form a request line (a TLS hello on the plain port) time out.
    raw_connection tls(f.port());
    REQUIRE(tls.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
    CHECK(tls.wait_closed(5s));
    require_still_serving(f);
}

TEST_CASE("a client that sends slowly or not at all is timed out while others are served", "[e2e][bad_input][timeouts]") {
    server_fixture f;  // read_timeout 1 s, body_idle_timeout 1 s
    raw_connection silent(f.port());
    raw_connection half_header(f.port());
    REQUIRE(half_header.send("POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + f.token() + "\r\n"));
    raw_connection half_body(f.port());
    REQUIRE(half_body.send("POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + f.token() +
                           "\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"batch_id\":"));
    raw_connection trickle(f.port());

    // While those hang, other clients are served.
    require_still_serving(f);
    // One byte of header every 200 ms never completes the header within the deadline.
    const std::string header = "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(100, 'z') + "\r\n\r\n";
    bool trickle_cut = false;
    for (std::size_t i = 0; i < header.size() && !trickle_cut; ++i) {
        if (!trickle.send(std::string_view(&header[i], 1))) trickle_cut = true;
        std::this_thread::sleep_for(50ms);
        if (i % 10 == 0) REQUIRE(http_request(f.port(), "GET", "/v1/health").status == 200);
    }
    CHECK((trickle_cut || trickle.wait_closed(5s)));

    CHECK(silent.wait_closed(5s));
    CHECK(half_header.wait_closed(5s));
    CHECK(half_body.wait_closed(5s));
    require_still_serving(f);
}

TEST_CASE("connections over the cap are answered 503 unavailable", "[e2e][bad_input][limits]") {
    auto o = server_fixture::quick_options();
    o.max_connections = 2;
    o.read_timeout = 10s;  // the two held connections must not time out during the test
    o.body_idle_timeout = 10s;
    server_fixture f(o);
    auto a = std::make_unique<raw_connection>(f.port());
    raw_connection b(f.port());
    // Make sure both are accepted and counted before the third arrives, and busy: each is in
    // the middle of a request body (an idle one would be closed to make room, abuse_test.cpp).
    // The 100 Continue shows the server has read the header.
    const auto half_request = "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + f.token() +
                              "\r\nContent-Type: application/json\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n";
    for (auto* c : {a.get(), &b}) {
        REQUIRE(c->send(half_request));
        const auto go_on = c->read_reply();
        REQUIRE(go_on);
        REQUIRE(go_on->status == 100);
    }

    const auto refused = http_request(f.port(), "GET", "/v1/health");
    check_error(refused, 503, "unavailable");

    a.reset();  // one leaves; a new client gets in
    CHECK(eventually([&] { return http_request(f.port(), "GET", "/v1/health").status == 200; }));
}

}  // namespace fieldsync::e2e

namespace fieldsync::e2e {

TEST_CASE("a malformed change to an existing record is rejected with the head's version", "[e2e][bad_input]") {
    server_fixture f;
    REQUIRE(one_change_result(f, put_change("c-1", "members", "m-thu", 0, member()))["status"] == "applied");
    auto edited = member();
    edited["name"] = "Hoàng Minh Khánh (Bí thư)";
    REQUIRE(one_change_result(f, put_change("c-2", "members", "m-thu", 1, edited))["version"] == 2);

    const std::string prefix = R"({"batch_id": "b-v", "changes": [{"change_id": "c-v", "collection": "members", "id": "m-thu",
        "unit_id": "xa-binh-hoa", )";
    struct bad_case {
        std::string body, code;
    };
    for (const auto& c : {bad_case{R"("op": "put", "data": {"name": "x", "cell": "c"}, "base_version": -1)", "bad_version"},
                          bad_case{R"("op": "patch", "data": {"name": "x"}, "base_version": 0)", "bad_version"},
                          bad_case{R"("op": "put", "data": [1], "base_version": 2)", "bad_field"},
                          bad_case{R"("op": "delete", "data": {"name": "x"}, "base_version": 2)", "bad_field"},
                          bad_case{R"("op": "put", "data": {}, "base_version": 2, "hlc": 5)", "bad_field"}}) {
        INFO(c.body);
        const auto r = f.post_sync_text(prefix + c.body + "}]}");
        REQUIRE(r.status == 200);
        const auto res = only_result(r.body_json());
        CHECK(res["status"] == "rejected");
        CHECK(res["error"]["code"] == c.code);
        CHECK(res["version"] == 2);  // as for schema_violation and base_ahead
    }
    // A record that does not exist: 0.
    const auto none = f.post_sync_text(R"({"batch_id": "b-n", "changes": [{"change_id": "c-n", "collection": "members",
        "id": "m-none", "unit_id": "xa-binh-hoa", "op": "put", "data": {}, "base_version": -1}]})");
    CHECK(only_result(none.body_json())["version"] == 0);
    // Nothing was applied: the head is still version 2.
    CHECK(f.get("/v1/records/members/m-thu").body_json()["version"] == 2);
}

TEST_CASE("a malformed change to a record outside the device's scope is answered version 0", "[e2e][bad_input][scope]") {
    server_fixture f;
    REQUIRE(f.store().put_unit({"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""}).has_value());
    REQUIRE(f.store().put_unit({"ap-7", "giong-trom", "Chi bộ ấp Thạnh Phú", "cell", ""}).has_value());
    REQUIRE(f.store().put_unit({"ap-8", "giong-trom", "Chi bộ ấp Phước Hòa", "cell", ""}).has_value());
    const auto a = f.add_device("Máy ấp Thạnh Phú", "ap-7");
    const auto b = f.add_device("Máy ấp Phước Hòa", "ap-8");
    REQUIRE(only_result(f.sync(batch("b-1", {put_change("c-1", "members", "m-7", 0, member(), "ap-7")}), a))["status"] ==
            "applied");
    const auto r = f.post_sync_text(R"({"batch_id": "b-x", "changes": [{"change_id": "c-x", "collection": "members",
        "id": "m-7", "unit_id": "ap-8", "op": "put", "data": {}, "base_version": -1}]})",
                                    b);
    const auto res = only_result(r.body_json());
    CHECK(res["error"]["code"] == "bad_version");
    CHECK(res["version"] == 0);  // the record's existence is not revealed
}

}  // namespace fieldsync::e2e
