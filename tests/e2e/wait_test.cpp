// Waiting for changes (SPEC.md, "Waiting for changes"): a pull-only POST /v1/sync with
// `wait_ms` whose answer would tell the device nothing new is held until a commit brings
// something into its scope, its deadline, the client leaving or the server stopping; every
// other sync is answered at once. The tests order events (the wait is seen parked through
// server::waiting_syncs() before the other device pushes) rather than time them; the only
// bounds on time are generous (an answer woken by a commit comes well before its deadline,
// a deadline answer not before it).

#include "e2e/support.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <optional>

namespace fieldsync::e2e {
namespace {

using steady = std::chrono::steady_clock;

json member(const std::string& name) { return {{"name", name}, {"cell", "Chi bộ ấp 3"}}; }

srv::server_options waits_of(std::size_t max_waiting) {
    auto o = server_fixture::quick_options();
    o.max_waiting_syncs = max_waiting;
    return o;
}

// A sync on a connection of its own, answered on another thread.
struct sent_sync {
    steady::time_point at;
    std::future<std::optional<http_reply>> reply;

    // The answer, and how long after the request was sent it arrived.
    std::pair<http_reply, std::chrono::milliseconds> get() {
        auto r = reply.get();
        REQUIRE(r.has_value());
        return {std::move(*r), std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - at)};
    }
};

sent_sync send_sync(std::uint16_t port, const std::string& token, const json& body) {
    sent_sync s;
    s.at = steady::now();
    s.reply = std::async(std::launch::async, [port, token, text = body.dump()]() -> std::optional<http_reply> {
        raw_connection c(port);
        if (!c.send(format_request("POST", "/v1/sync", text,
                                   {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}})))
            return std::nullopt;
        return c.read_reply(30s);  // past any wait of these tests: a hung wait fails, not hangs
    });
    return s;
}

json pull(const std::string& cursor, std::int64_t wait_ms) { return {{"cursor", cursor}, {"wait_ms", wait_ms}}; }

// Pulls from "" to the end of the device's feed; the cursor it stops at.
std::string caught_up(const server_fixture& f, const std::string& token) {
    std::string cursor;
    for (;;) {
        const auto r = f.sync({{"cursor", cursor}}, token);
        cursor = r.at("cursor").get<std::string>();
        if (!r.at("more").get<bool>()) return cursor;
    }
}

json push_member(const server_fixture& f, const std::string& token, const std::string& id, const std::string& unit) {
    return f.sync(batch("b-" + id, {put_change("c-" + id, "members", id, 0, member("Trần Văn Bảy"), unit)}), token);
}

}  // namespace

TEST_CASE("a waiting sync is answered with another device's change as soon as it is committed",
          "[e2e][wait]") {
    server_fixture f;
    const auto b = f.add_device("Máy tính bảng thứ hai ấp 3", "xa-binh-hoa");
    push_member(f, b, "m-1", "xa-binh-hoa");
    const auto cursor = caught_up(f, f.token());

    auto waiting = send_sync(f.port(), f.token(), pull(cursor, 10'000));
    REQUIRE(eventually([&] { return f.server().waiting_syncs() == 1; }));
    CHECK(only_result(push_member(f, b, "m-2", "xa-binh-hoa"))["status"] == "applied");

    const auto [reply, took] = waiting.get();
    REQUIRE(reply.status == 200);
    const auto body = reply.body_json();
    REQUIRE(body["changes"].size() == 1);
    CHECK(body["changes"][0]["id"] == "m-2");
    CHECK(body["changes"][0]["data"]["name"] == "Trần Văn Bảy");
    CHECK(body["cursor"] != cursor);
    CHECK(body["results"].empty());
    // Woken by the commit, not by the deadline (10 s): a generous margin, not a measurement.
    CHECK(took < 8s);
    CHECK(f.server().waiting_syncs() == 0);
}

TEST_CASE("a change outside the waiting device's scope does not answer its wait", "[e2e][wait][scope]") {
    server_fixture f;
    const auto elsewhere = f.add_device("Máy tính bảng xã Châu Bình", "xa-chau-binh");
    const auto cursor = caught_up(f, f.token());

    auto waiting = send_sync(f.port(), f.token(), pull(cursor, 1'500));
    REQUIRE(eventually([&] { return f.server().waiting_syncs() == 1; }));
    CHECK(only_result(push_member(f, elsewhere, "m-cb", "xa-chau-binh"))["status"] == "applied");
    // The commit woke the wait; its page was still empty, so it waits on.
    CHECK(f.server().waiting_syncs() == 1);

    const auto [reply, took] = waiting.get();
    REQUIRE(reply.status == 200);
    const auto body = reply.body_json();
    CHECK(body["changes"].empty());
    CHECK(body["cursor"] == cursor);
    CHECK(body["more"] == false);
    CHECK_FALSE(body.contains("dropped"));
    // Answered at its deadline: never before it.
    CHECK(took >= 1'500ms);
    // The other commune's device sees its own record.
    CHECK(f.sync({{"cursor", ""}}, elsewhere)["changes"].size() == 1);
}

TEST_CASE("a sync that pushes, or whose page is not empty, is answered at once whatever its wait_ms",
          "[e2e][wait]") {
    server_fixture f;
    SECTION("a push") {
        auto body = batch("b-1", {put_change("c-1", "members", "m-1", 0, member("Lê Thị Hoa"))});
        body["wait_ms"] = 20'000;
        auto s = send_sync(f.port(), f.token(), body);
        const auto [reply, took] = s.get();
        REQUIRE(reply.status == 200);
        CHECK(reply.body_json()["results"][0]["status"] == "applied");
        CHECK(took < 15s);
    }
    SECTION("a page with records") {
        push_member(f, f.add_device("Máy thứ hai", "xa-binh-hoa"), "m-1", "xa-binh-hoa");
        auto s = send_sync(f.port(), f.token(), pull("", 20'000));
        const auto [reply, took] = s.get();
        REQUIRE(reply.status == 200);
        CHECK(reply.body_json()["changes"].size() == 1);
        CHECK(took < 15s);
    }
    SECTION("a cursor that starts over, on an empty scope") {
        auto s = send_sync(f.port(), f.token(), pull("7.1", 20'000));
        const auto [reply, took] = s.get();
        REQUIRE(reply.status == 200);
        CHECK(reply.body_json()["reset"] == true);
        CHECK(took < 15s);
    }
    CHECK(f.server().waiting_syncs() == 0);
}

TEST_CASE("a bad wait_ms refuses the whole sync and changes nothing", "[e2e][wait][bad-input]") {
    server_fixture f;
    for (const auto& bad : {json(-1), json("1000"), json(2.5), json(true), json::array({1000})}) {
        INFO(bad.dump());
        auto body = batch("b-bad", {put_change("c-bad", "members", "m-bad", 0, member("Phạm Thị Lan"))});
        body["wait_ms"] = bad;
        const auto r = f.post_sync(body);
        CHECK(r.status == 400);
        CHECK(r.error_code() == "bad_request");
        CHECK(r.error_message().find("wait_ms") != std::string::npos);
        auto pull_body = pull("", 0);
        pull_body["wait_ms"] = bad;
        const auto pull_only = f.post_sync(pull_body);
        CHECK(pull_only.status == 400);
        CHECK(pull_only.error_code() == "bad_request");
    }
    // Nothing of the refused pushes was applied: the same change_id is new to the server.
    CHECK_FALSE(f.store().get("members", "m-bad")->has_value());
    const auto applied =
        f.sync(batch("b-bad", {put_change("c-bad", "members", "m-bad", 0, member("Phạm Thị Lan"))}));
    CHECK(only_result(applied)["status"] == "applied");
    CHECK(only_result(applied)["version"] == 1);
    const auto page = f.sync({{"cursor", ""}, {"wait_ms", 0}});
    REQUIRE(page["changes"].size() == 1);
    CHECK(page["changes"][0]["id"] == "m-bad");
}

TEST_CASE("past the most waiting syncs a sync is answered at once, and the gauge counts the waits",
          "[e2e][wait][limits]") {
    server_fixture f{waits_of(1)};
    const auto admin = f.add_device("Văn phòng Huyện ủy", "huyen-giong-trom", srv::device_role::admin);
    const auto second = f.add_device("Máy thứ hai ấp 3", "xa-binh-hoa");
    const auto cursor = caught_up(f, f.token());

    auto first = send_sync(f.port(), f.token(), pull(cursor, 3'000));
    REQUIRE(eventually([&] { return f.server().waiting_syncs() == 1; }));
    const auto metrics = f.get("/metrics", admin);
    REQUIRE(metrics.status == 200);
    CHECK(metrics.body.find("\nfieldsync_waiting_syncs 1\n") != std::string::npos);

    // No room: answered at once (not refused), with the ordinary empty answer.
    auto over = send_sync(f.port(), second, pull(caught_up(f, second), 20'000));
    const auto [reply, took] = over.get();
    REQUIRE(reply.status == 200);
    CHECK(reply.body_json()["changes"].empty());
    CHECK(took < 15s);
    CHECK(f.server().waiting_syncs() == 1);

    const auto [first_reply, first_took] = first.get();
    CHECK(first_reply.status == 200);
    CHECK(first_reply.body_json()["changes"].empty());
    CHECK(f.server().waiting_syncs() == 0);
    CHECK(f.get("/metrics", admin).body.find("\nfieldsync_waiting_syncs 0\n") != std::string::npos);
}

TEST_CASE("a client that closes its connection while its sync waits frees its place", "[e2e][wait][limits]") {
    server_fixture f{waits_of(1)};
    const auto cursor = caught_up(f, f.token());
    {
        raw_connection c(f.port());
        REQUIRE(c.send(format_request("POST", "/v1/sync", pull(cursor, 20'000).dump(),
                                      {{"Authorization", "Bearer " + f.token()}, {"Content-Type", "application/json"}})));
        REQUIRE(eventually([&] { return f.server().waiting_syncs() == 1; }));
    }  // closed
    CHECK(eventually([&] { return f.server().waiting_syncs() == 0; }, 8s));
    // The place is free: the next sync waits again (and is woken by a change).
    auto again = send_sync(f.port(), f.token(), pull(cursor, 10'000));
    REQUIRE(eventually([&] { return f.server().waiting_syncs() == 1; }));
    push_member(f, f.add_device("Máy thứ hai ấp 3", "xa-binh-hoa"), "m-1", "xa-binh-hoa");
    const auto [reply, took] = again.get();
    REQUIRE(reply.status == 200);
    CHECK(reply.body_json()["changes"].size() == 1);
}

TEST_CASE("stopping the server ends the syncs that wait", "[e2e][wait][stop]") {
    server_fixture f;
    const auto cursor = caught_up(f, f.token());
    std::vector<sent_sync> waits;
    for (int i = 0; i < 3; ++i) waits.push_back(send_sync(f.port(), f.token(), pull(cursor, 20'000)));
    REQUIRE(eventually([&] { return f.server().waiting_syncs() == 3; }));

    const auto began = steady::now();
    f.server().stop();
    // Promptly: long before the waits' deadline of 20 s.
    CHECK(steady::now() - began < 10s);
    for (auto& w : waits) {
        auto r = w.reply.get();
        // Answered as at a deadline, on a connection that then closes.
        REQUIRE(r.has_value());
        CHECK(r->status == 200);
        CHECK(r->body_json()["changes"].empty());
        CHECK(r->headers["connection"] == "close");
    }
    CHECK(f.server().waiting_syncs() == 0);
}

}  // namespace fieldsync::e2e
