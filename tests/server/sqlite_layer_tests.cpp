// The SQLite layer of the server, the client and the tools (sqlite/include/fieldsync/sqlite/sqlite.hpp): a cached statement is reset when
// its query goes out of scope, a read transaction always ends, and held_open names what a
// connection still holds, so the read pool can refuse a connection that would serve a frozen
// snapshot.

#include <fieldsync/sqlite/sqlite.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <random>
#include <stdexcept>

namespace fs = std::filesystem;
namespace sqlite = fieldsync::sqlite;

namespace {

struct temp_db {
    fs::path dir;
    temp_db() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("fieldsync-sqlite-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir);
        sqlite::db w(file(), sqlite::db::mode::read_write_create);
        w.exec("PRAGMA journal_mode=WAL; CREATE TABLE t(name TEXT); "
               "INSERT INTO t VALUES ('Chi bộ ấp 1'), ('Chi bộ ấp 2'), ('Chi bộ ấp 3')");
    }
    ~temp_db() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string file() const { return (dir / "t.db").string(); }
};

std::int64_t count_rows(sqlite::db& db) {
    auto q = db.cached("SELECT count(*) FROM t");
    return q.step() ? q.int64(0) : -1;
}

}  // namespace

TEST_CASE("a cached statement left mid-step is reset when its query goes out of scope", "[sqlite]") {
    temp_db t;
    sqlite::db reader(t.file(), sqlite::db::mode::read_write_create);
    sqlite::db writer(t.file(), sqlite::db::mode::read_write_create);
    {
        auto q = reader.cached("SELECT name FROM t ORDER BY name");
        REQUIRE(q.step());  // one row of three: the statement is mid-step
        CHECK(q.text(0) == "Chi bộ ấp 1");
        CHECK(reader.held_open().find("a statement mid-step: SELECT name FROM t") != std::string::npos);
    }
    CHECK(reader.held_open().empty());
    // So the reader's next read is a new snapshot: it sees a row written since.
    writer.exec("INSERT INTO t VALUES ('Chi bộ ấp 4')");
    CHECK(count_rows(reader) == 4);
}

TEST_CASE("held_open names a statement mid-step and an open transaction", "[sqlite]") {
    temp_db t;
    sqlite::db reader(t.file(), sqlite::db::mode::read_write_create);
    sqlite::db writer(t.file(), sqlite::db::mode::read_write_create);
    {
        // A statement outside the cache, stepped once and kept: what the pool must refuse.
        sqlite::stmt raw(reader.handle(), "SELECT name FROM t");
        REQUIRE(raw.step());
        CHECK(reader.held_open() == "a statement mid-step: SELECT name FROM t");
        // Its snapshot is frozen: a row written since is not seen on this connection.
        writer.exec("INSERT INTO t VALUES ('Chi bộ ấp 5')");
        CHECK(count_rows(reader) == 3);
    }
    CHECK(reader.held_open().empty());
    CHECK(count_rows(reader) == 4);
    reader.exec("BEGIN");
    CHECK(reader.held_open() == "a transaction");
    reader.exec("COMMIT");
    CHECK(reader.held_open().empty());
}

TEST_CASE("a read transaction reads one snapshot and ends however its scope is left", "[sqlite]") {
    temp_db t;
    sqlite::db reader(t.file(), sqlite::db::mode::read_write_create);
    sqlite::db writer(t.file(), sqlite::db::mode::read_write_create);
    {
        sqlite::read_transaction tx(reader);
        CHECK(count_rows(reader) == 3);
        writer.exec("INSERT INTO t VALUES ('Chi bộ ấp 6')");
        CHECK(count_rows(reader) == 3);  // the same snapshot throughout
        CHECK(reader.held_open() == "a transaction");
    }
    CHECK(reader.held_open().empty());
    CHECK(count_rows(reader) == 4);

    // Left by an exception, with a statement mid-step: both end.
    try {
        sqlite::read_transaction tx(reader);
        auto q = reader.cached("SELECT name FROM t");
        REQUIRE(q.step());
        throw std::runtime_error("refused");
    } catch (const std::runtime_error&) {
    }
    CHECK(reader.held_open().empty());
    writer.exec("INSERT INTO t VALUES ('Chi bộ ấp 7')");
    CHECK(count_rows(reader) == 5);
}
