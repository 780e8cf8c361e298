// Backups and restores of a SQLite store (ARCHITECTURE.md, "Backup and restore"). They work on
// store files, not on an open store: a backup runs beside the serving process, a restore
// while no server has the store open.

#include "store/serve_lock.hpp"
#include "store/sql_store.hpp"

#include <fieldsync/server/blob_store.hpp>
#include <fieldsync/server/tuning.hpp>
#include <fieldsync/sqlite/sqlite.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;
namespace fs = std::filesystem;

namespace {

// Flushes a file or a directory to disk, so a rename is not lost with the power.
void sync_path(const fs::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + p.string());
    const int rc = ::fsync(fd);
    const int saved = errno;
    ::close(fd);
    if (rc != 0) throw std::system_error(saved, std::generic_category(), "fsync " + p.string());
}

std::string integrity(sqlite::db& db) {
    std::string out;
    auto s = db.cached("PRAGMA integrity_check");
    while (s.step()) out += (out.empty() ? "" : "; ") + s.text(0);
    return out;
}

// Copies every page of `from` into `to` in one step: one read transaction on the source, so
// the copy is one consistent snapshot. Under WAL that read transaction blocks no writer (the
// server keeps committing meanwhile; only checkpoints wait for it), and a single step is never
// restarted by those commits, as a backup in several steps would be.
void copy_pages(sqlite::db& from, sqlite::db& to) {
    sqlite3_backup* b = sqlite3_backup_init(to.handle(), "main", from.handle(), "main");
    if (!b) throw sqlite::error(sqlite3_errcode(to.handle()), std::string("backup init: ") + sqlite3_errmsg(to.handle()));
    int rc;
    do {
        rc = sqlite3_backup_step(b, -1);
        // The source is being written at the very moment the read transaction starts: the
        // busy timeout does not cover backup steps, so wait here.
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(tuning::backup_busy_wait_ms);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    const int finish = sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) throw sqlite::error(rc, std::string("backup step: ") + sqlite3_errstr(rc));
    sqlite::check(to.handle(), finish, "backup finish");
}

backup_report describe(sqlite::db& db, std::int64_t bytes) {
    backup_report r;
    r.bytes = bytes;
    auto m = db.cached("SELECT key, value FROM meta WHERE key IN ('seq', 'incarnation')");
    while (m.step()) {
        if (m.text(0) == "seq") r.seq = std::stoll(m.text(1));
        if (m.text(0) == "incarnation") r.incarnation = m.text(1);
    }
    m.reset();
    auto h = db.cached("SELECT coalesce(max(server_ms), 0) FROM history");
    if (h.step()) r.newest_change_ms = h.int64(0);
    return r;
}

std::string temp_beside(const fs::path& target) {
    return target.string() + ".tmp-" + std::to_string(::getpid());
}

void remove_with_sidecars(const std::string& path) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path + suffix, ec);
}

// Makes the empty file SQLite then opens as a new database, readable by its owner only
// whatever the umask: a store holds every record and every device's token hash. SQLite gives
// its journal and WAL the mode of the database file.
void create_private(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "create " + path);
    const int rc = ::fchmod(fd, 0600);
    const int saved = errno;
    ::close(fd);
    if (rc != 0) throw std::system_error(saved, std::generic_category(), "chmod " + path);
}

}  // namespace

serve_lock& serve_lock::operator=(serve_lock&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.fd_;
        o.fd_ = -1;
    }
    return *this;
}

serve_lock::~serve_lock() {
    if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

std::string serve_lock_path(const std::string& store_path) { return store_path + ".server-lock"; }

proto::expected<serve_lock> lock_store(const std::string& store_path) {
    const std::string path = serve_lock_path(store_path);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return error{errc::storage_error, "cannot open the lock file '" + path + "': " + std::strerror(errno)};
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int saved = errno;
        std::string holder;
        char buf[32] = {};
        if (::pread(fd, buf, sizeof buf - 1, 0) > 0) holder = std::string(buf).substr(0, std::string(buf).find('\n'));
        ::close(fd);
        if (saved == EWOULDBLOCK)
            return error{errc::unavailable, "the store '" + store_path + "' is in use by " +
                                                (holder.empty() ? "another process" : "process " + holder)};
        return error{errc::storage_error, "cannot lock '" + path + "': " + std::strerror(saved)};
    }
    // The holder's pid, for the message of whoever is refused.
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
        // Only the message would lack the pid; the lock itself holds.
    }
    return serve_lock(fd);
}

proto::expected<backup_report> backup_sqlite_store(const std::string& store_path, const std::string& dest) {
    if (!fs::exists(store_path)) return error{errc::not_found, "no store at '" + store_path + "'"};
    if (fs::exists(dest)) return error{errc::bad_request, "'" + dest + "' exists; a backup never overwrites a file"};
    const std::string tmp = temp_beside(dest);
    try {
        remove_with_sidecars(tmp);
        create_private(tmp);
        {
            sqlite::db from(store_path, sqlite::db::mode::read_write_create);  // exists: checked above
            sqlite3_busy_timeout(from.handle(), tuning::busy_timeout_ms);
            sqlite::db to(tmp, sqlite::db::mode::read_write_create);
            copy_pages(from, to);
            // The copy is a store of its own: checked before it takes the backup's name.
            if (const auto ok = integrity(to); ok != "ok")
                throw std::runtime_error("the copy fails PRAGMA integrity_check: " + ok);
            // A backup is one self-contained file: no WAL beside it.
            to.exec("PRAGMA journal_mode=DELETE");
        }
        sync_path(tmp);
        fs::rename(tmp, dest);
        sync_path(fs::absolute(dest).parent_path());
        backup_report report;
        {
            sqlite::db check(dest, sqlite::db::mode::read_only);
            report = describe(check, static_cast<std::int64_t>(fs::file_size(dest)));
        }
        // The attachments after the records: every blob the copy records was kept before the
        // snapshot, so it is there to copy (content-addressed files never change; a blob
        // kept since is copied too, and is harmless).
        auto copied = copy_blobs(default_blob_dir(store_path), default_blob_dir(dest));
        if (!copied) return error{copied.err().code, "the records were copied to '" + dest +
                                                         "', but not the attachments: " + copied.err().message};
        report.blobs = copied->blobs;
        report.blob_bytes = copied->bytes;
        return report;
    } catch (const std::exception& e) {
        remove_with_sidecars(tmp);
        return storage_failure(e);
    }
}

proto::expected<backup_report> restore_sqlite_store(const std::string& backup, const std::string& store_path,
                                                    std::string* replaced) {
    if (!fs::exists(backup)) return error{errc::not_found, "no backup at '" + backup + "'"};
    // Held until the restored store is in place: no server serves the store meanwhile, and
    // none serves it now (it would keep writing to the replaced file, its WAL and shared
    // memory, and the restore would be lost or the store torn).
    auto lock = lock_store(store_path);
    if (!lock) {
        auto e = lock.err();
        if (e.code == errc::unavailable) e.message = "stop the server first: " + e.message;
        return e;
    }
    const std::string tmp = temp_beside(store_path);
    try {
        remove_with_sidecars(tmp);
        create_private(tmp);
        {
            sqlite::db from(backup, sqlite::db::mode::read_only);
            {
                auto s = from.cached("SELECT count(*) FROM sqlite_master WHERE name IN ('meta', 'history', 'decided')");
                s.step();
                const bool store = s.int64(0) == 3;
                s.reset();
                if (!store) return error{errc::bad_request, "'" + backup + "' is not a fieldsync store"};
            }
            if (const auto ok = integrity(from); ok != "ok")
                return error{errc::bad_request, "'" + backup + "' fails PRAGMA integrity_check: " + ok};
            sqlite::db to(tmp, sqlite::db::mode::read_write_create);
            copy_pages(from, to);
            // A new incarnation: replicas that synced with the store as it was before the
            // restore notice the difference and send again what it lost (SPEC.md, "After a
            // restore").
            to.exec("BEGIN IMMEDIATE");
            to.cached("INSERT OR REPLACE INTO meta(key, value) VALUES ('incarnation', ?)").bind(1, random_hex(16)).run();
            to.exec("COMMIT");
            to.exec("PRAGMA journal_mode=WAL");
        }
        sync_path(tmp);
        // The store being replaced is kept beside it, with its WAL, never deleted: a restore
        // of the wrong file must be undoable.
        if (fs::exists(store_path)) {
            const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            const std::string aside = store_path + ".replaced-" + std::to_string(now);
            for (const char* suffix : {"-wal", "-shm", ""}) {
                const std::string from = store_path + suffix;
                if (fs::exists(from)) fs::rename(from, aside + suffix);
            }
            if (replaced) *replaced = aside;
        }
        fs::rename(tmp, store_path);
        remove_with_sidecars(tmp);
        sync_path(fs::absolute(store_path).parent_path());
        backup_report report;
        {
            sqlite::db check(store_path, sqlite::db::mode::read_write_create);
            report = describe(check, static_cast<std::int64_t>(fs::file_size(store_path)));
        }
        // The backup's attachments join those beside the store (named by their hashes, so
        // nothing there is replaced; blobs the backup lacks stay for gc to judge).
        auto copied = copy_blobs(default_blob_dir(backup), default_blob_dir(store_path));
        if (!copied) return error{copied.err().code, "the records were restored, but not the attachments: " +
                                                         copied.err().message + " (run the restore again)"};
        report.blobs = copied->blobs;
        report.blob_bytes = copied->bytes;
        return report;
    } catch (const std::exception& e) {
        remove_with_sidecars(tmp);
        return storage_failure(e);
    }
}

}  // namespace fieldsync::server
