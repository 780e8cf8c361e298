// SPEC.md, "Compression and encodings": gzip request bodies and answers, CBOR bodies both
// ways, and the refusals (a decompression bomb, a malformed gzip body, hostile CBOR) that
// change nothing and leave the server serving.

#include "e2e/support.hpp"

#include <fieldsync/protocol/encoding.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <catch2/catch.hpp>

namespace fieldsync::e2e {
namespace {

using headers = std::vector<std::pair<std::string, std::string>>;

headers auth(const server_fixture& f, std::string content_type = "application/json") {
    return {{"Authorization", "Bearer " + f.token()}, {"Content-Type", std::move(content_type)}};
}

json members_batch(const std::string& tag, int n) {
    std::vector<json> changes;
    for (int i = 0; i < n; ++i)
        changes.push_back(put_change("c-" + tag + std::to_string(i), "members", tag + std::to_string(i), 0,
                                     {{"name", "Nguyễn Thị Hoa " + std::to_string(i)}, {"cell", "Chi bộ ấp 3"}}));
    return batch("b-" + tag, std::move(changes));
}

std::string inflate(const std::string& body) {
    std::string out;
    REQUIRE(proto::gunzip(body, 64u << 20, out) == proto::gunzip_status::ok);
    return out;
}

void require_still_serving(const server_fixture& f) {
    REQUIRE(http_request(f.port(), "GET", "/v1/health").status == 200);
    const auto r = f.post_sync(members_batch("probe", 1));
    REQUIRE(r.status == 200);
}

TEST_CASE("a gzip request body is inflated and applied, answers are gzipped when accepted",
          "[e2e][encoding][gzip]") {
    server_fixture f;
    auto h = auth(f);
    h.emplace_back("Content-Encoding", "gzip");
    h.emplace_back("Accept-Encoding", "br;q=1.0, gzip;q=0.8");
    const auto r = http_request(f.port(), "POST", "/v1/sync", proto::gzip(members_batch("gz", 50).dump()), h);
    INFO(r.body.substr(0, 200));
    REQUIRE(r.status == 200);
    REQUIRE(r.headers.count("content-encoding"));
    CHECK(r.headers.at("content-encoding") == "gzip");
    const auto answer = json::parse(inflate(r.body));
    REQUIRE(answer["results"].size() == 50);
    for (const auto& res : answer["results"]) CHECK(res["status"] == "applied");
    CHECK(answer["changes"].size() == 50);

    // Without Accept-Encoding (or with gzip;q=0) the same kind of answer comes plain.
    const auto plain = http_request(f.port(), "POST", "/v1/sync", json{{"cursor", ""}}.dump(), auth(f));
    REQUIRE(plain.status == 200);
    CHECK_FALSE(plain.headers.count("content-encoding"));
    CHECK(plain.body_json()["changes"].size() == 50);
    auto refused = auth(f);
    refused.emplace_back("Accept-Encoding", "gzip;q=0");
    const auto q0 = http_request(f.port(), "POST", "/v1/sync", json{{"cursor", ""}}.dump(), refused);
    REQUIRE(q0.status == 200);
    CHECK_FALSE(q0.headers.count("content-encoding"));
}

TEST_CASE("a gzip bomb is refused with 413 before it is inflated past the body limit, nothing applied",
          "[e2e][encoding][gzip][bomb]") {
    server_fixture f;
    // 100 MB of zeros wrapped as a JSON string: about 100 KB gzipped, far over the 8 MiB limit
    // once inflated.
    const std::string big = "{\"cursor\":\"\",\"batch_id\":\"b-bomb\",\"changes\":[{\"change_id\":\"c-bomb\","
                            "\"collection\":\"members\",\"id\":\"bomb\",\"unit_id\":\"xa-binh-hoa\",\"op\":\"put\","
                            "\"base_version\":0,\"data\":{\"name\":\"" +
                            std::string(100u * 1000 * 1000, '0') + "\"}}]}";
    const auto bomb = proto::gzip(big);
    CHECK(bomb.size() < 200 * 1000);
    auto h = auth(f);
    h.emplace_back("Content-Encoding", "gzip");
    const auto r = http_request(f.port(), "POST", "/v1/sync", bomb, h);
    INFO(r.body);
    CHECK(r.status == 413);
    CHECK(r.error_code() == "body_too_large");
    CHECK(f.get("/v1/records/members/bomb").status == 404);
    require_still_serving(f);
}

TEST_CASE("a malformed gzip body gets 400, an unknown content coding 415", "[e2e][encoding][gzip]") {
    server_fixture f;
    auto h = auth(f);
    h.emplace_back("Content-Encoding", "gzip");
    auto good = proto::gzip(members_batch("bad", 3).dump());

    SECTION("not gzip at all") {
        const auto r = http_request(f.port(), "POST", "/v1/sync", members_batch("bad", 3).dump(), h);
        CHECK(r.status == 400);
        CHECK(r.error_code() == "bad_request");
    }
    SECTION("truncated") {
        const auto r = http_request(f.port(), "POST", "/v1/sync", good.substr(0, good.size() / 2), h);
        CHECK(r.status == 400);
        CHECK(r.error_code() == "bad_request");
    }
    SECTION("a flipped byte breaks the checksum") {
        good[good.size() - 6] = static_cast<char>(good[good.size() - 6] ^ 0x5A);
        const auto r = http_request(f.port(), "POST", "/v1/sync", good, h);
        CHECK(r.status == 400);
    }
    SECTION("trailing garbage after the gzip member") {
        const auto r = http_request(f.port(), "POST", "/v1/sync", good + "xyz", h);
        CHECK(r.status == 400);
    }
    SECTION("br") {
        auto hb = auth(f);
        hb.emplace_back("Content-Encoding", "br");
        const auto r = http_request(f.port(), "POST", "/v1/sync", good, hb);
        CHECK(r.status == 415);
        CHECK(r.error_code() == "unsupported_media_type");
    }
    CHECK(f.get("/v1/records/members/bad0").status == 404);
    require_still_serving(f);
}

TEST_CASE("CBOR bodies both ways, negotiated by Content-Type and Accept", "[e2e][encoding][cbor]") {
    server_fixture f;
    auto h = auth(f, "application/cbor");
    h.emplace_back("Accept", "application/cbor");
    const auto r = http_request(f.port(), "POST", "/v1/sync", proto::to_cbor(members_batch("cb", 20)), h);
    INFO(r.body.substr(0, 200));
    REQUIRE(r.status == 200);
    CHECK(r.headers.at("content-type") == "application/cbor");
    const auto answer = proto::parse_cbor(r.body, proto::tuning::max_json_depth);
    REQUIRE(answer);
    REQUIRE((*answer)["results"].size() == 20);
    CHECK((*answer)["results"][0]["status"] == "applied");
    // What went in as CBOR reads back the same as JSON, Vietnamese text intact.
    const auto rec = f.get("/v1/records/members/cb7");
    REQUIRE(rec.status == 200);
    CHECK(rec.body_json()["data"]["name"] == "Nguyễn Thị Hoa 7");

    // A CBOR request may ask for a JSON answer, and the reverse.
    const auto json_answer = http_request(f.port(), "POST", "/v1/sync", proto::to_cbor(json{{"cursor", ""}}),
                                          auth(f, "application/cbor"));
    REQUIRE(json_answer.status == 200);
    CHECK(json_answer.headers.at("content-type") == "application/json");
    auto hj = auth(f);
    hj.emplace_back("Accept", "application/cbor");
    const auto cbor_answer = http_request(f.port(), "POST", "/v1/sync", json{{"cursor", ""}}.dump(), hj);
    REQUIRE(cbor_answer.status == 200);
    REQUIRE(proto::parse_cbor(cbor_answer.body, proto::tuning::max_json_depth));

    // CBOR and gzip together.
    auto hz = auth(f, "application/cbor");
    hz.emplace_back("Accept", "application/cbor");
    hz.emplace_back("Content-Encoding", "gzip");
    hz.emplace_back("Accept-Encoding", "gzip");
    const auto z = http_request(f.port(), "POST", "/v1/sync", proto::gzip(proto::to_cbor(members_batch("cz", 20))), hz);
    REQUIRE(z.status == 200);
    CHECK(z.headers.at("content-encoding") == "gzip");
    const auto za = proto::parse_cbor(inflate(z.body), proto::tuning::max_json_depth);
    REQUIRE(za);
    CHECK((*za)["results"].size() == 20);
}

TEST_CASE("hostile CBOR gets the same refusals as hostile JSON and changes nothing", "[e2e][encoding][cbor]") {
    server_fixture f;
    const auto h = auth(f, "application/cbor");
    auto post = [&](const std::string& body) { return http_request(f.port(), "POST", "/v1/sync", body, h); };

    // 100 000 nested one-element arrays: refused by the prescan, never reaching a recursive
    // decoder.
    std::string deep(100000, '\x81');
    deep += '\xF6';
    auto r = post(deep);
    CHECK(r.status == 400);
    CHECK(r.error_code() == "too_deep");

    // A text string with an overlong encoding of '/'.
    json j = members_batch("u", 1);
    std::string cbor = proto::to_cbor(j);
    const auto at = cbor.find("Chi b");
    REQUIRE(at != std::string::npos);
    cbor[at] = '\xC0';
    cbor[at + 1] = '\xAF';
    r = post(cbor);
    CHECK(r.status == 400);
    CHECK(r.error_code() == "bad_utf8");

    // An array claiming 2^32 items in a few bytes, a byte string, a tag, trailing bytes.
    for (const auto& bad : {std::string("\x9A\xFF\xFF\xFF\xFF\x01", 6), std::string("\x42\x01\x02", 3),
                                  std::string("\xC1\x01", 2), proto::to_cbor(j) + std::string("\x00", 1),
                                  std::string("\xA1\x01\x02", 3), std::string("\xF9\x7C\x00", 3)}) {
        r = post(bad);
        CHECK(r.status == 400);
        CHECK(r.error_code() == "bad_json");
    }
    CHECK(f.get("/v1/records/members/u0").status == 404);
    require_still_serving(f);
}

}  // namespace
}  // namespace fieldsync::e2e
