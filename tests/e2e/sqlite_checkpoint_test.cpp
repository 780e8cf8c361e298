// The SQLite writer's WAL is copied back into the database file by a thread of its own
// (sql::db::checkpoint_in_background, store/sql_sqlite.cpp; ARCHITECTURE.md, "A sync, end to
// end"): commits never run a checkpoint while the WAL is below the writer's own threshold, so
// the database file grows only if the background thread copies the WAL into it.

#include <catch2/catch.hpp>

#include "store/sql.hpp"
#include "store/sql_sqlite.hpp"

#include <fieldsync/server/tuning.hpp>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

namespace sql = fieldsync::server::sql;
namespace fs = std::filesystem;
namespace tuning = fieldsync::server::tuning;

namespace {

struct temp_dir {
    fs::path dir = fs::temp_directory_path() / ("fieldsync-checkpoint-" + std::to_string(std::random_device{}()));
    temp_dir() { fs::create_directories(dir); }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

// Writes about `pages` pages of the database (4 KiB each) through `db`, in transactions of
// about 100 pages, as the writer's group commits do.
void write_pages(sql::db& db, int pages, int first_row = 0) {
    const std::string note(400, 'x');
    int row = first_row;
    for (int written = 0; written < pages; written += 100) {
        db.begin_write();
        for (int i = 0; i < 900; ++i, ++row)
            db.cached("INSERT INTO sessions(id, note) VALUES (?, ?)")
                .bind(1, "buổi sinh hoạt " + std::to_string(row))
                .bind(2, note)
                .run();
        db.commit();
    }
}

}  // namespace

TEST_CASE("the writer's WAL is checkpointed by a background thread, not by its commits", "[sqlite]") {
    temp_dir t;
    const auto path = (t.dir / "store.db").string();
    auto writer = sql::open_sqlite(path);
    writer->exec("CREATE TABLE sessions(id TEXT PRIMARY KEY, note TEXT NOT NULL)");
    writer->checkpoint_in_background();
    const auto before = fs::file_size(path);

    // Past the background threshold, well below the writer's own.
    static_assert(tuning::wal_background_checkpoint_pages * 3 < tuning::wal_writer_checkpoint_pages);
    write_pages(*writer, tuning::wal_background_checkpoint_pages * 3);

    // The database file takes the pages only through a checkpoint.
    auto grown = [&] { return fs::file_size(path) > before + 1000 * 4096; };
    for (int i = 0; i < 200 && !grown(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(grown());

    // Everything written is there, read through another connection.
    auto reader = sql::open_sqlite(path);
    auto count = reader->cached("SELECT count(*) FROM sessions");
    REQUIRE(count.step());
    CHECK(count.int64(0) == 27000);
}

TEST_CASE("the checkpointer stops with its connection, and a connection without it checkpoints in its commits",
          "[sqlite]") {
    // The writes are whole after the writer (and its thread) are gone; a connection that never
    // asked for the thread (the admin tool's, a reader's) keeps SQLite's own checkpoints.
    temp_dir t;
    const auto path = (t.dir / "store.db").string();
    {
        auto writer = sql::open_sqlite(path);
        writer->exec("CREATE TABLE sessions(id TEXT PRIMARY KEY, note TEXT NOT NULL)");
        writer->checkpoint_in_background();
        writer->checkpoint_in_background();  // once is enough; a second call changes nothing
        write_pages(*writer, 300);
    }
    auto plain = sql::open_sqlite(path);
    const auto before = fs::file_size(path);
    write_pages(*plain, tuning::wal_background_checkpoint_pages * 2, 2700);
    CHECK(fs::file_size(path) > before);
    auto count = plain->cached("SELECT count(*) FROM sessions");
    REQUIRE(count.step());
    CHECK(count.int64(0) == 2700 + 18000);
}
