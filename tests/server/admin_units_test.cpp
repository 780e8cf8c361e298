// `fieldsync-admin unit import|move`, run as a program against a store file: a tree from
// CSV or JSON in any order, moves that carry devices' scopes, and refusals that write nothing.

#include "server/admin_run.hpp"

#include <catch2/catch.hpp>

#include <fieldsync/server/store.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

namespace fs = std::filesystem;
namespace srv = fieldsync::server;

namespace {

// Exit code of fieldsync-admin --db DB ARGS..., output discarded.
int admin(const std::string& db, const std::vector<std::string>& args) {
    return fieldsync::test::run_admin(db, args, "/dev/null").exit;
}

struct units_fixture {
    fs::path dir;
    std::string db;
    units_fixture() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("fieldsync-units-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
        db = (dir / "central.db").string();
        REQUIRE(admin(db, {"init"}) == 0);
    }
    ~units_fixture() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string file(const std::string& name, const std::string& text) {
        const auto p = (dir / name).string();
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }
    std::map<std::string, std::string> paths() {
        srv::store_options o;
        o.path = db;
        auto s = srv::open_sqlite_store(o);
        REQUIRE(s.has_value());
        std::map<std::string, std::string> out;
        const auto units = (*s)->units();
        REQUIRE(units.has_value());
        for (const auto& u : *units) out[u.id] = u.path;
        return out;
    }
};

}  // namespace

TEST_CASE("unit import reads CSV with quoted Vietnamese names, children before parents", "[admin][units]") {
    units_fixture t;
    const auto csv = t.file("units.csv",
                            "\xEF\xBB\xBFname,id,kind,parent\r\n"
                            "\"Chi bộ ấp 1, xã Bình Hòa\",ap-1,cell,binh-hoa\r\n"
                            "Đảng bộ xã Bình Hòa,binh-hoa,commune,giong-trom\r\n"
                            "\"Huyện ủy \"\"Giồng Trôm\"\"\",giong-trom,district,\r\n");
    REQUIRE(admin(t.db, {"unit", "import", csv}) == 0);
    auto p = t.paths();
    CHECK(p["ap-1"] == "/giong-trom/binh-hoa/ap-1/");
    CHECK(p["giong-trom"] == "/giong-trom/");
}

TEST_CASE("unit import reads JSON, a bad file writes nothing", "[admin][units]") {
    units_fixture t;
    const auto json_file = t.file("units.json", R"([
        {"id": "chau-binh", "parent": "giong-trom", "name": "Đảng bộ xã Châu Bình", "kind": "commune"},
        {"id": "giong-trom", "parent": "", "name": "Huyện ủy Giồng Trôm", "kind": "district"}])");
    REQUIRE(admin(t.db, {"unit", "import", json_file}) == 0);
    CHECK(t.paths()["chau-binh"] == "/giong-trom/chau-binh/");

    // An unknown parent, a cycle, a duplicate, a missing column: refused as usage errors,
    // and none of the good rows beside them is written.
    const auto orphan = t.file("orphan.csv", "id,parent,name,kind\nap-5,chau-binh,Chi bộ ấp 5,cell\nap-6,nowhere,x,cell\n");
    CHECK(admin(t.db, {"unit", "import", orphan}) == 2);
    const auto cycle = t.file("cycle.json", R"([{"id":"a","parent":"b","name":"A","kind":"cell"},
                                                 {"id":"b","parent":"a","name":"B","kind":"cell"}])");
    CHECK(admin(t.db, {"unit", "import", cycle}) == 2);
    const auto twice = t.file("twice.csv", "id,parent,name,kind\nap-7,,A,cell\nap-7,,B,cell\n");
    CHECK(admin(t.db, {"unit", "import", twice}) == 2);
    const auto columns = t.file("columns.csv", "id,name,kind\nap-8,A,cell\n");
    CHECK(admin(t.db, {"unit", "import", columns}) == 2);
    CHECK(admin(t.db, {"unit", "import", (t.dir / "missing.csv").string()}) == 1);
    const auto p = t.paths();
    CHECK(p.size() == 2);
    CHECK_FALSE(p.count("ap-5"));
}

TEST_CASE("unit move carries the subtree, moving a unit under itself is refused", "[admin][units]") {
    units_fixture t;
    const auto csv = t.file("u.csv",
                            "id,parent,name,kind\n"
                            "giong-trom,,Huyện ủy Giồng Trôm,district\n"
                            "binh-hoa,giong-trom,Đảng bộ xã Bình Hòa,commune\n"
                            "chau-binh,giong-trom,Đảng bộ xã Châu Bình,commune\n"
                            "ap-1,binh-hoa,Chi bộ ấp 1,cell\n");
    REQUIRE(admin(t.db, {"unit", "import", csv}) == 0);
    REQUIRE(admin(t.db, {"unit", "move", "binh-hoa", "--parent", "chau-binh"}) == 0);
    CHECK(t.paths()["ap-1"] == "/giong-trom/chau-binh/binh-hoa/ap-1/");
    CHECK(admin(t.db, {"unit", "move", "chau-binh", "--parent", "ap-1"}) == 2);
    CHECK(admin(t.db, {"unit", "move", "nowhere", "--parent", "giong-trom"}) == 1);
    CHECK(admin(t.db, {"unit", "move", "ap-1"}) == 2);
    CHECK(t.paths()["chau-binh"] == "/giong-trom/chau-binh/");
}
