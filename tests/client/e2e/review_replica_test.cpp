// A conflict resolved by a reviewer reaches the replicas (issue 5, "Done when"): the replica
// whose change was held for review pulls the resolved version and leaves its conflict state;
// the other replica pulls it too.

#include "e2e_support.hpp"

#include <fieldsync/protocol/json_input.hpp>

using namespace fieldsync;
using namespace fieldsync::test;
using client::sync_state;

namespace {

// POST /v1/conflicts/{id}/resolve through the replica library's own HTTP transport.
client::http_response resolve(live_server& server, const std::string& token, const std::string& conflict_id,
                              const json& body) {
    auto t = client::make_http_transport();
    client::http_request req;
    req.method = "POST";
    req.url = server.url() + "/v1/conflicts/" + conflict_id + "/resolve";
    req.headers = {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
    req.body = body.dump();
    auto r = t->send(req, std::chrono::seconds(10));
    REQUIRE(r);
    return *r;
}

}  // namespace

TEST_CASE("a resolution reaches the replica whose change became a conflict and clears its state",
          "[client][e2e][review]") {
    live_server server;
    temp_dir dir;
    auto a = live_replica(server, dir, "a");
    auto b = live_replica(server, dir, "b");
    const std::string reviewer = server.add_device("Kiểm tra huyện");

    const auto id = ok(a->put("members", member(1), {.id = "", .unit_id = "xa-binh-hoa"})).id;
    ok(a->sync());
    ok(b->sync());
    ok(a->patch("members", id, {{"role", "bí thư chi bộ"}}));
    ok(b->patch("members", id, {{"role", "chi ủy viên"}, {"notes", "đã học Nghị quyết"}}));
    ok(a->sync());
    CHECK(ok(b->sync()).conflicts == 1);
    auto held = ok(b->get("members", id));
    REQUIRE(held);
    REQUIRE(held->state == sync_state::conflict);
    REQUIRE(held->conflict_id);

    const auto shown = server.store().conflict(*held->conflict_id);
    REQUIRE(shown);
    REQUIRE(*shown);
    const auto res = resolve(server, reviewer, *held->conflict_id,
                             {{"choice", "take_incoming"}, {"head_version", (*shown)->current_version}});
    INFO(res.body);
    REQUIRE(res.status == 200);

    ok(b->sync());
    const auto after = ok(b->get("members", id));
    REQUIRE(after);
    CHECK(after->state == sync_state::synced);
    CHECK(!after->conflict_id);
    CHECK(after->version == (*shown)->current_version + 1);
    CHECK(after->data["role"] == "chi ủy viên");
    CHECK(after->data["notes"] == "đã học Nghị quyết");
    CHECK(ok(b->status()).conflicts == 0);

    ok(a->sync());
    const auto other = ok(a->get("members", id));
    REQUIRE(other);
    CHECK(other->data["role"] == "chi ủy viên");
    CHECK(other->version == after->version);
    require_converged(server.store(), *a, {"members"});
    require_converged(server.store(), *b, {"members"});
}
