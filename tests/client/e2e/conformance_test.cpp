// The conformance scenarios (tests/conformance/*.json; README.md there) run by the C++
// replica against a real server. The browser's replica runs the same files
// (tests/web/conformance.test.mjs), so the two cannot drift apart.
//
// As in the browser, a sync makes one attempt (max_attempts 1): the app, not the library,
// decides when to try again. "network" steps drive a fault transport around the default HTTP
// transport; "reopen" closes the replica and opens its file again.

#include "e2e_support.hpp"

#include <filesystem>
#include <fstream>

using namespace fieldsync;
using namespace fieldsync::test;

namespace {

namespace fs = std::filesystem;

const fs::path k_dir = fs::path(FIELDSYNC_SOURCE_DIR) / "tests" / "conformance";

json read_json(const fs::path& p) {
    std::ifstream in(p);
    REQUIRE(in);
    return json::parse(in);
}

// fieldsync.h's fs_errc names, by value (the browser's worker reports the same names).
std::string errc_name(const std::error_code& ec) {
    static const char* const names[] = {"ok", "invalid_argument", "invalid_json", "invalid_utf8", "schema_violation",
                                        "not_found", "not_configured", "storage", "network", "timeout",
                                        "server_unavailable", "unauthorized", "forbidden", "bad_request",
                                        "bad_response", "cancelled", "busy", "unsupported", "internal",
                                        "server_too_old", "client_too_old", "tls"};
    const int v = ec.value();
    return v >= 0 && v < static_cast<int>(std::size(names)) ? names[v] : "internal";
}

// Every key of `expected` has the same value in `actual`.
void check_subset(const json& actual, const json& expected, const std::string& what) {
    for (const auto& [k, v] : expected.items()) {
        INFO(what << ": " << k << " is " << (actual.contains(k) ? actual[k].dump() : "missing"));
        CHECK((actual.contains(k) && actual[k] == v));
    }
}

struct device {
    std::string id;
    std::string token;
    std::string mode = "on";   // the "network" step: on | off | lose_next_answer
    std::shared_ptr<fault_transport> transport;
    std::unique_ptr<client::replica> replica;
};

class runner {
public:
    explicit runner(const json& tree) {
        for (const auto& u : tree["units"])
            REQUIRE(server_.store().put_unit(
                srv::unit{u["id"], u.value("parent", ""), u["name"], u["kind"], ""}));
        reviewer_ = server_.add_device(tree["reviewer"]["name"], tree["reviewer"]["unit"], srv::device_role::reviewer);
    }

    void add(const std::string& name, const std::string& unit) {
        auto& d = devices_[name];
        auto added = server_.store().add_device("Máy " + name, unit, srv::device_role::field);
        REQUIRE(added);
        d.id = added->first.id;
        d.token = added->second;
        d.transport = std::make_shared<fault_transport>([&d](const client::http_request&, int) {
            if (d.mode == "off") return cut{cut::drop_request};
            if (d.mode == "lose_next_answer") {
                d.mode = "on";
                return cut{cut::drop_response};
            }
            return cut{};
        });
        open(name);
        ok(d.replica->configure(server_.url(), d.token));
    }

    void step(const json& s) {
        const std::string on = s.value("on", "");
        if (s.contains("move")) {
            // The district binds the device to another unit; its next pull starts over there.
            REQUIRE(server_.store().move_device(devices_.at(s["move"]).id, s["to"]));
        } else if (s.contains("network")) {
            devices_.at(on).mode = s["network"];
        } else if (s.contains("put")) {
            ok(replica(on).put(s["put"], s["data"], {.id = s["id"], .unit_id = s.value("unit", "")}));
        } else if (s.contains("patch")) {
            ok(replica(on).patch(s["patch"], s["id"], s["with"]));
        } else if (s.contains("remove")) {
            ok(replica(on).remove(s["remove"], s["id"]));
        } else if (s.contains("discard")) {
            ok(replica(on).discard(s["discard"], s["id"]));
        } else if (s.contains("reopen")) {
            devices_.at(on).replica.reset();
            open(on);
        } else if (s.contains("pending")) {
            CHECK(ok(replica(on).pending_count()) == s["pending"].get<std::int64_t>());
        } else if (s.contains("held") && !s.contains("expect")) {  // an "expect" may name held text
            expect_held(on, s["held"]);
        } else if (s.contains("sync")) {
            sync(on, s["sync"]);
        } else if (s.contains("expect")) {
            expect_local(on, s);
        } else if (s.contains("server")) {
            expect_server(s);
        } else if (s.contains("resolve")) {
            resolve_held(s);
        } else {
            FAIL("unknown step " << s.dump());
        }
    }

private:
    client::replica& replica(const std::string& name) { return *devices_.at(name).replica; }

    void open(const std::string& name) {
        client::sync_tuning tuning;
        tuning.max_attempts = 1;
        devices_.at(name).replica = open_replica(dir_.file(name + ".db"), devices_.at(name).transport,
                                                 {.sleep = [](std::chrono::milliseconds) {}}, tuning);
    }

    void sync(const std::string& on, json expected) {
        auto r = replica(on).sync();
        if (expected.contains("error")) {
            REQUIRE_FALSE(r);
            CHECK(errc_name(r.err().code) == expected["error"].get<std::string>());
            return;
        }
        INFO((r ? std::string() : r.err().message));
        REQUIRE(r);
        const json report = {{"pushed", r->pushed},     {"applied", r->applied}, {"merged", r->merged},
                             {"conflicts", r->conflicts}, {"rejected", r->rejected}, {"pulled", r->pulled},
                             {"decided", r->decided}};
        check_subset(report, expected, "sync report");
    }

    void expect_local(const std::string& on, const json& s) {
        auto rec = ok(replica(on).get(s["expect"], s["id"]));
        if (s.value("absent", false)) {
            CHECK((!rec || rec->deleted));
            return;
        }
        REQUIRE(rec);
        CHECK(rec->deleted == s.value("deleted", false));
        if (s.contains("state")) CHECK(client::sync_state_name(rec->state) == s["state"].get<std::string>());
        if (s.contains("data")) check_subset(rec->data, s["data"], "data");
        if (s.contains("held")) check_subset(rec->held.is_object() ? rec->held : json::object(), s["held"], "held");
        if (s.contains("resolution")) {
            REQUIRE(rec->resolution);
            const json got = {{"status", rec->resolution->status}, {"choice", rec->resolution->choice},
                              {"note", rec->resolution->note}};
            check_subset(got, s["resolution"], "resolution");
        }
    }

    // The records whose change the server held or refused (fs_replica_list_held's set).
    void expect_held(const std::string& on, const json& expected) {
        std::vector<std::string> ids;
        for (const auto state : {client::sync_state::conflict, client::sync_state::rejected})
            for (const auto& r : ok(replica(on).list({.include_deleted = true, .state = state}))) ids.push_back(r.id);
        std::sort(ids.begin(), ids.end());
        auto want = expected.get<std::vector<std::string>>();
        std::sort(want.begin(), want.end());
        CHECK(ids == want);
    }

    void expect_server(const json& s) {
        auto head = server_.store().get(s["server"], s["id"]);
        REQUIRE(head);
        if (s.value("absent", false)) {
            CHECK((!head->has_value() || (*head)->deleted));
            return;
        }
        REQUIRE(head->has_value());
        if (s.contains("data")) check_subset((*head)->data, s["data"], "server data");
        if (s.contains("versions"))
            CHECK(history_size(server_.store(), s["server"], s["id"]) == s["versions"].get<std::size_t>());
    }

    // The reviewer decides the conflict that holds `held_on`'s change of the record.
    void resolve_held(const json& s) {
        auto rec = ok(replica(s["held_on"]).get(s["resolve"], s["id"]));
        REQUIRE(rec);
        REQUIRE(rec->conflict_id);
        auto c = server_.store().conflict(*rec->conflict_id);
        REQUIRE(c);
        REQUIRE(c->has_value());
        const json body = {{"choice", s["choice"]}, {"head_version", (*c)->current_version}, {"note", s["note"]}};
        const auto res = resolve(server_, reviewer_, *rec->conflict_id, body);
        INFO(res.body);
        CHECK(res.status == 200);
    }

    live_server server_;
    temp_dir dir_;
    std::string reviewer_;
    std::map<std::string, device> devices_;
};

}  // namespace

TEST_CASE("the conformance scenarios pass for the C++ replica", "[client][e2e][conformance]") {
    const json tree = read_json(k_dir / "tree.json");
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(k_dir))
        if (e.path().extension() == ".json" && e.path().filename() != "tree.json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 5);
    for (const auto& file : files) {
        DYNAMIC_SECTION(file.filename().string()) {
            const json scenario = read_json(file);
            runner r(tree);
            for (const auto& [name, unit] : scenario["devices"].items()) r.add(name, unit);
            int n = 0;
            for (const auto& s : scenario["steps"]) {
                INFO(file.filename().string() << " step " << ++n << ": " << s.dump());
                r.step(s);
            }
        }
    }
}
