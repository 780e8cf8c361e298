// `fieldsync-admin init|gc|backup|restore`: the store file as a whole (create, purge, copy,
// replace).

#include "fieldsync-admin-store.hpp"

#include <fieldsync/server/blob_store.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

namespace fieldsync::admin {

namespace {

namespace fs = fieldsync::server;

constexpr const char* k_init_usage =
    "usage: fieldsync-admin --db PATH init\n"
    "Creates the SQLite store at PATH with the default schema (or migrates an existing one).\n";

constexpr const char* k_gc_usage =
    "usage: fieldsync-admin --db PATH gc [--dry-run] [--window-days N]\n"
    "Purges what only served devices' catch-up and no active device needs: tombstones (deleted\n"
    "records) and drop notices at or below the purge horizon, and remembered answers older than\n"
    "the window that their device can no longer resend. History is kept whole. A device is active\n"
    "if it synced within the window (default 90 days) and is not revoked; a device away longer\n"
    "re-snapshots on its next sync, after pushing its pending edits. Safe while the server runs.\n"
    "Attachments kept beside a SQLite store (STORE.blobs) that no version of any record names, and\n"
    "uploads nobody continued, go once they are older than the window.\n"
    "  --dry-run          count what would be purged; change nothing\n"
    "  --window-days N    the retention window in days, 1 to 36500 (default 90)\n";

constexpr const char* k_backup_usage =
    "usage: fieldsync-admin --db STORE backup PATH\n"
    "Copies the store to PATH (which must not exist) with SQLite's online backup. The server may\n"
    "keep serving: the copy is one consistent snapshot. It is written beside PATH, checked with\n"
    "PRAGMA integrity_check, synced and renamed, so PATH is either a whole, sound store or absent.\n"
    "PATH is readable by its owner only (mode 0600), whatever the umask. The attachments kept\n"
    "beside the store (STORE.blobs) are copied, each checked against its hash, to PATH.blobs.\n";

constexpr const char* k_restore_usage =
    "usage: fieldsync-admin --db STORE restore BACKUP   (or: restore BACKUP --db STORE)\n"
    "Replaces STORE with a checked copy of BACKUP (mode 0600). Refused while a server has STORE\n"
    "open (it holds STORE.server-lock): stop the server first. STORE may be absent. The restored store gets\n"
    "a new incarnation: replicas notice it on their next sync and send again what they sent\n"
    "since the backup (up to 7 days back), so their edits are not lost. The replaced store is\n"
    "kept beside it as STORE.replaced-<ms>. The backup's attachments (BACKUP.blobs) join those\n"
    "in STORE.blobs.\n";

constexpr const char* k_migrate_usage =
    "usage: fieldsync-admin migrate --from sqlite:PATH --to postgres:CONNINFO\n"
    "Copies the SQLite store at PATH into a PostgreSQL database that holds no store yet: records,\n"
    "history, conflicts, devices with their tokens, units, remembered answers, the feed's\n"
    "position and the store's incarnation, so devices go on syncing with what they hold. One\n"
    "transaction, kept only when every table's row count and digest match the file's. Stop the\n"
    "server first (it holds PATH.server-lock); the file is left as it was.\n";

int cmd_init(const std::string& db, const std::vector<std::string>& args) {
    if (!args.empty()) return usage_error("init takes no arguments", k_init_usage);
    // A connection string is no path: nothing to make, and it is not printed (it may hold a
    // password, or name a password file, whose folders are not the store's).
    const bool postgres = db.rfind("postgres:", 0) == 0;
    // The store's folder is made too: `init --db data/fieldsync.db` works on a fresh clone.
    const auto file = db.rfind("sqlite:", 0) == 0 ? db.substr(7) : db;
    if (const auto parent = std::filesystem::path(file).parent_path(); !postgres && !parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec) return failed("cannot create " + parent.string() + ": " + ec.message());
    }
    const int code = with_store(db, [](fs::store&) { return 0; });
    if (code == 0)
        std::cerr << "fieldsync-admin: store ready " << (postgres ? std::string("in the PostgreSQL database") : "at " + file)
                  << "\n";
    return code;
}

// Prints what gc purged (or would purge).
void print_gc(const fs::gc_report& r) {
    const char* verb = r.dry_run ? "would purge" : "purged";
    std::cout << (r.dry_run ? "dry run: nothing changed\n" : "")
              << "feed seq:          " << r.feed_seq << "\n"
              << "purge horizon:     " << r.horizon << " (was " << r.previous_horizon << ")\n"
              << "active devices:    " << r.active_devices << " (inactive: " << r.inactive_devices << ")\n";
    if (!r.held_back_by.empty()) std::cout << "held back by:      device " << r.held_back_by << "\n";
    std::cout << verb << ":\n"
              << "  tombstones:      " << r.tombstones << "\n"
              << "  drop notices:    " << r.drops << "\n"
              << "  decided answers: " << r.decided << "\n";
}

int cmd_gc(const std::string& db, const std::vector<std::string>& args) {
    fs::gc_options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& a = args[i];
        if (a == "--dry-run") {
            o.dry_run = true;
        } else if (a == "--window-days") {
            if (i + 1 >= args.size()) return usage_error("--window-days needs a number of days", k_gc_usage);
            const auto& v = args[++i];
            const bool digits = !v.empty() && v.size() <= 5 && std::all_of(v.begin(), v.end(), [](char c) {
                return c >= '0' && c <= '9';
            });
            const long days = digits ? std::stol(v) : 0;
            if (days < 1 || days > 36500)
                return usage_error("--window-days must be a whole number of days from 1 to 36500, not '" + v + "'",
                                   k_gc_usage);
            o.window_ms = days * 24 * 3600 * 1000;
        } else {
            return usage_error("unknown argument '" + a + "'", k_gc_usage);
        }
    }
    return with_store(db, [&](fs::store& st) {
        auto r = st.gc(o);
        if (!r) return failed("gc failed: " + r.err().message);
        print_gc(*r);
        // Attachments (a PostgreSQL store's folder is the server's --blobs; not known here).
        const auto file = db.rfind("sqlite:", 0) == 0 ? db.substr(7) : db;
        if (db.rfind("postgres:", 0) == 0 || !std::filesystem::exists(fs::default_blob_dir(file))) return 0;
        auto blobs = fs::open_blob_dir(fs::default_blob_dir(file));
        if (!blobs) return failed("gc of attachments failed: " + blobs.err().message);
        const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        auto b = fs::gc_blobs(st, **blobs, now - o.window_ms, o.dry_run);
        if (!b) return failed("gc of attachments failed: " + b.err().message);
        std::cout << "  attachments:     " << b->blobs << " (" << b->bytes << " bytes)\n"
                  << "  unfinished uploads: " << b->uploads << " (" << b->upload_bytes << " bytes)\n";
        return 0;
    });
}

// backup and restore copy a SQLite file; a PostgreSQL store has PostgreSQL's own tools.
bool refuse_on_postgres(const std::string& db, const char* verb) {
    if (db.rfind("postgres:", 0) != 0) return false;
    std::cerr << "fieldsync-admin: " << verb
              << " works on a SQLite store; back up a PostgreSQL store with pg_dump and bring it back with "
                 "pg_restore (README, \"Running on PostgreSQL\")\n";
    return true;
}

int cmd_backup(const std::string& db, const std::vector<std::string>& args) {
    if (args.size() != 1 || args[0].empty()) return usage_error("backup takes one path", k_backup_usage);
    if (refuse_on_postgres(db, "backup") || !store_may_open(db)) return k_exit_failure;
    const auto r = fs::backup_sqlite_store(db, args[0]);
    if (!r) return refused("backup failed", r.err());
    std::cerr << "fieldsync-admin: backup " << args[0] << ": " << r->bytes << " bytes, feed seq " << r->seq
              << ", newest change " << (r->newest_change_ms ? format_ms(r->newest_change_ms) : "none")
              << ", incarnation " << r->incarnation << ", integrity ok; " << r->blobs << " attachments ("
              << r->blob_bytes << " bytes) in " << fs::default_blob_dir(args[0]) << "\n";
    return 0;
}

int cmd_restore(const std::string& db_in, const std::vector<std::string>& args) {
    std::string db = db_in;
    std::vector<std::string> rest;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--db") {
            if (i + 1 >= args.size()) return usage_error("--db needs a path", k_restore_usage);
            db = args[++i];
        } else {
            rest.push_back(args[i]);
        }
    }
    if (db.empty()) return usage_error("--db STORE is required", k_restore_usage);
    if (rest.size() != 1 || rest[0].empty()) return usage_error("restore takes one backup file", k_restore_usage);
    if (refuse_on_postgres(db, "restore")) return k_exit_failure;
    std::string replaced;
    const auto r = fs::restore_sqlite_store(rest[0], db, &replaced);
    if (!r) return refused("restore failed", r.err());
    std::cerr << "fieldsync-admin: restored " << rest[0] << " into " << db << ": feed seq " << r->seq
              << ", newest change " << (r->newest_change_ms ? format_ms(r->newest_change_ms) : "none")
              << ", new incarnation " << r->incarnation << "; " << r->blobs << " attachments (" << r->blob_bytes
              << " bytes) added to " << fs::default_blob_dir(db) << "\n";
    if (!replaced.empty()) std::cerr << "fieldsync-admin: the replaced store is kept as " << replaced << "\n";
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    constexpr std::int64_t k_week_ms = 7LL * 24 * 3600 * 1000;
    if (r->newest_change_ms > 0 && now - r->newest_change_ms > k_week_ms)
        std::cerr << "fieldsync-admin: warning: the backup's newest change is more than 7 days old; replicas send "
                     "again only what the server answered them in the last 7 days\n";
    return 0;
}

int cmd_migrate(const std::string&, const std::vector<std::string>& args) {
    std::string from, to;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--from" && has_value)
            from = args[++i];
        else if (args[i] == "--to" && has_value)
            to = args[++i];
        else
            return usage_error("unknown argument '" + args[i] + "'", k_migrate_usage);
    }
    if (from.rfind("sqlite:", 0) != 0 || from.size() <= 7)
        return usage_error("--from needs sqlite:PATH (the store file to copy)", k_migrate_usage);
    if (to.rfind("postgres:", 0) != 0 || to.size() <= 9)
        return usage_error("--to needs postgres:CONNINFO (the database to copy into)", k_migrate_usage);
    const auto r = fs::migrate_sqlite_to_postgres(from.substr(7), to.substr(9));
    if (!r) return refused("migrate failed, nothing was copied", r.err());
    std::cout << "TABLE        ROWS  DIGEST\n";
    for (const auto& t : r->tables) {
        std::string name = t.name;
        name.resize(std::max<std::size_t>(name.size(), 12), ' ');
        std::string rows = std::to_string(t.rows);
        rows.insert(0, rows.size() < 5 ? 5 - rows.size() : 0, ' ');
        std::cout << name << rows << "  " << t.digest.substr(0, 16) << "\n";
    }
    std::cerr << "fieldsync-admin: copied " << r->tables.size()
              << " tables; every table's row count and digest match the file's\n";
    return 0;
}

}  // namespace

const std::vector<verb>& store_commands() {
    static const std::vector<verb> verbs = {{"init", k_init_usage, cmd_init},
                                            {"gc", k_gc_usage, cmd_gc},
                                            {"backup", k_backup_usage, cmd_backup},
                                            // --db may come after the backup's path
                                            {"restore", k_restore_usage, cmd_restore, false},
                                            {"migrate", k_migrate_usage, cmd_migrate, false}};
    return verbs;
}

}  // namespace fieldsync::admin
