// The replica syncs with each body encoding (SPEC.md, "Compression and encodings"): JSON or
// CBOR, gzipped by the default transport or not, through the fault proxy counting the bytes
// that really cross the link.

#include "e2e/e2e_support.hpp"

#include "proxy/fault_proxy.hpp"

#include <catch2/catch.hpp>

namespace fieldsync::test {
namespace {

std::unique_ptr<client::replica> replica_via(const std::string& url, const std::string& token, temp_dir& dir,
                                             const std::string& name, client::body_format format, bool gzip) {
    client::replica_options o;
    o.path = dir.file(name + ".db");
    o.format = format;
    o.transport_override = client::make_http_transport(client::http_transport_options{.gzip = gzip});
    auto r = client::replica::open(std::move(o));
    REQUIRE(r);
    ok((*r)->configure(url, token));
    return std::move(*r);
}

struct wire_bytes {
    std::uint64_t up = 0, down = 0;
};

// On a server of its own, a writer creates `n` members and pushes them; a reader pulls them
// all; each through its own proxy so the bytes of each direction are counted apart.
std::pair<wire_bytes, wire_bytes> measure(client::body_format format, bool gzip, int n, const std::string& tag) {
    live_server server;
    temp_dir dir;
    tools::fault_options fo;
    fo.target_port = server.port();
    tools::fault_proxy push_link(fo);
    tools::fault_proxy pull_link(fo);
    push_link.start();
    pull_link.start();

    auto writer = replica_via(push_link.url(), server.add_device("writer " + tag), dir, "writer", format, gzip);
    std::vector<client::replica::put_item> items;
    for (int i = 0; i < n; ++i)
        items.push_back({"members", member(static_cast<std::size_t>(i)),
                         {.id = tag + "-" + std::to_string(i), .unit_id = "huyen-giong-trom"}});
    ok(writer->put_many(items));
    ok(writer->sync());
    require_converged(server.store(), *writer, {"members"});

    auto reader = replica_via(pull_link.url(), server.add_device("reader " + tag), dir, "reader", format, gzip);
    ok(reader->sync());
    require_converged(server.store(), *reader, {"members"});
    push_link.stop();
    pull_link.stop();
    const auto p = push_link.stats(), q = pull_link.stats();
    return {{p.bytes_up, p.bytes_down}, {q.bytes_up, q.bytes_down}};
}

TEST_CASE("a replica syncs with JSON and CBOR bodies, gzipped or not, gzip and CBOR shrink the wire",
          "[client][e2e][encoding]") {
    constexpr int n = 300;
    const auto json_plain = measure(client::body_format::json, false, n, "jp");
    const auto json_gzip = measure(client::body_format::json, true, n, "jz");
    const auto cbor_plain = measure(client::body_format::cbor, false, n, "cp");
    const auto cbor_gzip = measure(client::body_format::cbor, true, n, "cz");

    // Pushes (upload) and pulls (download) of the same records: compression must show on both.
    CHECK(json_gzip.first.up * 2 < json_plain.first.up);
    CHECK(json_gzip.second.down * 2 < json_plain.second.down);
    CHECK(cbor_plain.first.up < json_plain.first.up);
    CHECK(cbor_plain.second.down < json_plain.second.down);
    CHECK(cbor_gzip.first.up * 2 < cbor_plain.first.up);
    CHECK(cbor_gzip.second.down * 2 < cbor_plain.second.down);
}

TEST_CASE("a CBOR replica and a JSON replica edit the same record and converge", "[client][e2e][encoding]") {
    live_server server;
    temp_dir dir;
    auto a = replica_via(server.url(), server.add_device("a"), dir, "a", client::body_format::cbor, true);
    auto b = replica_via(server.url(), server.add_device("b"), dir, "b", client::body_format::json, true);
    ok(a->put("members", member(1), {.id = "m-1", .unit_id = "huyen-giong-trom"}));
    ok(a->sync());
    ok(b->sync());
    ok(b->patch("members", "m-1", {{"role", "bí thư chi bộ"}}));
    ok(a->patch("members", "m-1", {{"cell", "Chi bộ ấp 5"}}));
    ok(b->sync());
    ok(a->sync());
    ok(b->sync());
    const auto ra = ok(a->get("members", "m-1"));
    const auto rb = ok(b->get("members", "m-1"));
    REQUIRE(ra);
    REQUIRE(rb);
    CHECK(ra->data == rb->data);
    CHECK(ra->data["role"] == "bí thư chi bộ");
    CHECK(ra->data["cell"] == "Chi bộ ấp 5");
    require_converged(server.store(), *a, {"members"});
    require_converged(server.store(), *b, {"members"});
}

}  // namespace
}  // namespace fieldsync::test
