// `fieldsync-admin gc`, run as a program against a store file: bad flags get a clear error and
// exit 2 with nothing changed, --dry-run changes nothing, a real run purges and says what.

#include "server/admin_run.hpp"

#include <catch2/catch.hpp>

#include <fieldsync/server/store.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <random>

namespace fs = std::filesystem;
namespace proto = fieldsync::protocol;
namespace srv = fieldsync::server;

namespace {

using fieldsync::test::admin_run;
namespace test = fieldsync::test;

admin_run admin(const std::string& db, const std::vector<std::string>& args) { return test::run_admin(db, args); }

struct gc_fixture {
    fs::path dir;
    std::string db;
    gc_fixture() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("fieldsync-admin-gc-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
        db = (dir / "central.db").string();
        // Three records, two of them deleted, written by a device that never pulled (so no
        // device is active and every tombstone may go).
        srv::store_options o;
        o.path = db;
        auto s = srv::open_sqlite_store(o);
        REQUIRE(s);
        auto d = (*s)->add_device("máy ấp 3", "ap-3-binh-hoa", srv::device_role::field);
        REQUIRE(d);
        proto::change_set cs;
        cs.batch_id = "b-1";
        for (int i = 0; i < 3; ++i) {
            proto::change_entry e;
            e.c.change_id = "c-" + std::to_string(i);
            e.c.collection = "members";
            e.c.id = "m-" + std::to_string(i);
            e.c.unit_id = "ap-3-binh-hoa";
            e.c.data = {{"name", "Trương Định"}, {"cell", "Chi bộ ấp 3"}};
            cs.changes.push_back(e);
        }
        REQUIRE((*s)->push(d->first, cs));
        cs.batch_id = "b-2";
        cs.changes.resize(2);
        for (auto& e : cs.changes) {
            e.c.change_id += "-del";
            e.c.op = proto::op_kind::del;
            e.c.base_version = 1;
            e.c.data = nullptr;
        }
        REQUIRE((*s)->push(d->first, cs));
    }
    ~gc_fixture() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::size_t heads() {
        srv::store_options o;
        o.path = db;
        auto s = srv::open_sqlite_store(o);
        REQUIRE(s);
        auto page = (*s)->pull(0, 100);
        REQUIRE(page);
        return page->changes.size();
    }
};

}  // namespace

TEST_CASE("fieldsync-admin gc refuses bad flags with exit 2 and changes nothing", "[admin][retention]") {
    gc_fixture f;
    const std::vector<std::vector<std::string>> bad = {
        {"gc", "--window-days"}, {"gc", "--window-days", "0"},     {"gc", "--window-days", "-3"},
        {"gc", "--window-days", "ba"}, {"gc", "--window-days", "99999"}, {"gc", "--dry"},
        {"gc", "now"}};
    for (const auto& args : bad) {
        const auto r = admin(f.db, args);
        INFO(args.back() << ": " << r.out);
        CHECK(r.exit == 2);
        CHECK(r.out.find("fieldsync-admin: ") != std::string::npos);
        CHECK(r.out.find("usage: fieldsync-admin --db PATH gc") != std::string::npos);
    }
    CHECK(f.heads() == 3);
    const auto help = admin(f.db, {"gc", "--help"});
    CHECK(help.exit == 0);
    CHECK(help.out.find("--dry-run") != std::string::npos);
}

TEST_CASE("fieldsync-admin gc --dry-run changes nothing and gc purges and reports", "[admin][retention]") {
    gc_fixture f;
    const auto dry = admin(f.db, {"gc", "--dry-run", "--window-days", "30"});
    INFO(dry.out);
    CHECK(dry.exit == 0);
    CHECK(dry.out.find("dry run: nothing changed") != std::string::npos);
    CHECK(dry.out.find("tombstones:      2") != std::string::npos);
    CHECK(f.heads() == 3);

    const auto real = admin(f.db, {"gc"});
    INFO(real.out);
    CHECK(real.exit == 0);
    CHECK(real.out.find("purged:") != std::string::npos);
    CHECK(real.out.find("tombstones:      2") != std::string::npos);
    CHECK(f.heads() == 1);
    const auto again = admin(f.db, {"gc"});
    CHECK(again.out.find("tombstones:      0") != std::string::npos);
}

TEST_CASE("fieldsync-admin device list shows each device's last recorded pull", "[admin][retention]") {
    gc_fixture f;
    auto before = admin(f.db, {"device", "list"});
    CHECK(before.exit == 0);
    CHECK(before.out.find("LAST SYNC") != std::string::npos);
    CHECK(before.out.rfind(" -\n") != std::string::npos);  // never pulled
    {
        srv::store_options o;
        o.path = f.db;
        auto s = srv::open_sqlite_store(o);
        REQUIRE(s);
        auto devs = (*s)->devices();
        REQUIRE(devs);
        REQUIRE(devs->size() == 1);
        REQUIRE((*s)->device_pull(devs->front(), 0, 10));
        (*s)->close();  // writes the acknowledgement
        auto after = (*s)->devices();
        REQUIRE(after);
        CHECK(after->front().ack.has_value());
    }
    const auto after = admin(f.db, {"device", "list"});
    INFO(after.out);
    CHECK(after.out.rfind(" -\n") == std::string::npos);
}
