// What only the PostgreSQL store has ([postgres]; ARCHITECTURE.md, "The store on PostgreSQL").
//
// Pipeline mode under the write path (sql::stmt::run_deferred, store/sql_postgres.cpp):
// statements sent without waiting for their answers must behave as if each had been waited
// for, but for when a failure is thrown: before any read sees the table, within the same
// transaction, so the write path's savepoint undoes exactly the change-set that failed.
//
// gc's session lock: one gc at a time on a store several servers share, let go with the
// connection of the process that held it.

#include <catch2/catch.hpp>
#include "store_under_test.hpp"

#include "store/sql.hpp"
#include "store/sql_postgres.hpp"

#include <fieldsync/server/store.hpp>

#include <filesystem>
#include <random>
#include <string>

namespace sql = fieldsync::server::sql;

namespace {

std::unique_ptr<sql::db> connect_for(const std::string& tag) {
    const auto path = (std::filesystem::temp_directory_path() / ("pipeline-" + tag + "-" +
                                                                   std::to_string(std::random_device{}())))
                          .string();
    const auto arg = fieldsync::test::store_argument_under_test(path);
    REQUIRE(arg.rfind("postgres:", 0) == 0);
    return sql::open_postgres(arg.substr(9));
}

std::int64_t count(sql::db& db) {
    auto c = db.cached("SELECT count(*) FROM pipe_rows");
    REQUIRE(c.step());
    return c.int64(0);
}

}  // namespace

TEST_CASE("pipelined writes are read back, and a failure among them is undone by its savepoint alone",
          "[postgres]") {
    auto db = connect_for("savepoint");
    db->exec("CREATE TABLE pipe_rows(k TEXT PRIMARY KEY, v BIGINT NOT NULL)");
    db->begin_write();
    // More than one pipeline's depth: the first answers are read while sending.
    for (int i = 0; i < 1200; ++i)
        db->cached("INSERT INTO pipe_rows(k, v) VALUES (?, ?)").bind(1, "hồ sơ " + std::to_string(i)).bind(2, i).run_deferred();
    CHECK(count(*db) == 1200);

    db->exec("SAVEPOINT change_set");
    db->cached("INSERT INTO pipe_rows(k, v) VALUES (?, ?)").bind(1, "Nguyễn Thị Lan").bind(2, 1).run_deferred();
    db->cached("INSERT INTO pipe_rows(k, v) VALUES (?, ?)").bind(1, "hồ sơ 7").bind(2, 2).run_deferred();  // taken
    db->cached("INSERT INTO pipe_rows(k, v) VALUES (?, ?)").bind(1, "Trần Văn Bình").bind(2, 3).run_deferred();
    // The next call that waits for the server throws the failure, naming the statement.
    try {
        db->exec("RELEASE change_set");
        FAIL("the duplicate key was not reported");
    } catch (const sql::error& e) {
        CHECK(std::string(e.what()).find("INSERT INTO pipe_rows") != std::string::npos);
        CHECK_FALSE(e.transient());
    }
    db->exec("ROLLBACK TO change_set; RELEASE change_set");
    CHECK(count(*db) == 1200);
    db->commit();
    CHECK(db->held_open().empty());

    // A failure sent last is thrown by COMMIT, and nothing of the transaction stays.
    db->begin_write();
    db->cached("INSERT INTO pipe_rows(k, v) VALUES (?, ?)").bind(1, "Lê Thị Hoa").bind(2, 4).run_deferred();
    db->cached("INSERT INTO pipe_rows(k, v) VALUES (?, ?)").bind(1, "hồ sơ 8").bind(2, 5).run_deferred();
    CHECK_THROWS_AS(db->commit(), sql::error);
    db->rollback();
    CHECK(db->held_open().empty());
    CHECK(count(*db) == 1200);

    // The connection goes on as before.
    db->begin_write();
    db->cached("INSERT INTO pipe_rows(k, v) VALUES (?, ?)").bind(1, "Lê Thị Hoa").bind(2, 4).run_deferred();
    db->commit();
    CHECK(count(*db) == 1201);
}

TEST_CASE("gc runs once at a time on a shared PostgreSQL store, and a dead holder's lock goes with its connection",
          "[postgres]") {
    const auto path = (std::filesystem::temp_directory_path() / ("gc-lock-" + std::to_string(std::random_device{}()) + ".db"))
                          .string();
    fieldsync::server::store_options o;
    o.path = path;
    auto opened = fieldsync::test::open_store_under_test(o);
    REQUIRE(opened.has_value());
    auto& st = **opened;
    auto d = st.add_device("Máy Văn phòng Huyện ủy", "huyen-giong-trom", fieldsync::server::device_role::admin);
    REQUIRE(d.has_value());

    // Another gc (another server or admin tool): its session holds the lock.
    const auto arg = fieldsync::test::store_argument_under_test(path);
    auto other = sql::open_postgres(arg.substr(9));
    // The store's key (the lock is per store: a database may hold several).
    {
        auto lock = other->cached("SELECT pg_advisory_lock(hashtextextended(?, 4242002))");
        lock.bind(1, st.incarnation());
        REQUIRE(lock.step());
    }

    fieldsync::server::gc_options g;
    auto refused = st.gc(g);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.err().code == fieldsync::protocol::errc::unavailable);
    CHECK(refused.err().message.find("another gc is running") != std::string::npos);
    // A dry run only reads: it is not held back.
    g.dry_run = true;
    CHECK(st.gc(g).has_value());
    g.dry_run = false;

    // Another store's gc in the same database is no other gc of this one.
    {
        fieldsync::server::store_options o2;
        o2.path = path + ".other";
        auto second = fieldsync::test::open_store_under_test(o2);
        REQUIRE(second.has_value());
        auto other_gc = (*second)->gc(g);
        INFO((other_gc ? std::string() : other_gc.err().message));
        CHECK(other_gc.has_value());
    }

    // The holder dies: its connection closes and the lock goes with it.
    other.reset();
    auto ran = st.gc(g);
    INFO((ran ? std::string() : ran.err().message));
    CHECK(ran.has_value());
    // And this gc let go of it too: another runs.
    CHECK(st.gc(g).has_value());
}

TEST_CASE("a node still in recovery (a failover under way) fails a transaction as transient, other 55000s do not",
          "[postgres]") {
    auto db = connect_for("recovery");
    // A standby, or a node whose promotion has not ended, refuses pg_walfile_name() (read in
    // every write transaction's BEGIN) with these words; the server raises them here itself.
    auto raise = [&](const char* message) {
        try {
            db->exec(std::string("DO $$ BEGIN RAISE EXCEPTION '") + message + "' USING ERRCODE = '55000'; END $$");
            FAIL("nothing was raised");
        } catch (const sql::error& e) {
            CHECK(std::string(e.what()).find("SQLSTATE 55000") != std::string::npos);
            return e.transient();
        }
        return false;
    };
    CHECK(raise("recovery is in progress"));
    CHECK_FALSE(raise("object not in prerequisite state"));
    // The connection goes on.
    db->exec("CREATE TABLE after_recovery(k TEXT)");
}
