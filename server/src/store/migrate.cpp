// Moving a district's store from its SQLite file into PostgreSQL (fieldsync-admin migrate;
// ARCHITECTURE.md, "The store on PostgreSQL"). Every table of the PostgreSQL store is copied
// row for row from the file, in one PostgreSQL transaction under the store's write lock, and
// checked before it commits: the same row count and the same digest on both sides. The meta
// table comes along whole, so the feed's seq, the purge horizon and the incarnation are the
// file's, and devices go on syncing with the cursors they hold.

#include <fieldsync/server/store.hpp>

#ifdef FIELDSYNC_WITH_POSTGRES
#include "store/serve_lock.hpp"
#include "store/sql_postgres.hpp"
#include "store/sql_sqlite.hpp"
#include "store/store_util.hpp"

#include <algorithm>
#include <filesystem>
#endif

namespace fieldsync::server {
#ifdef FIELDSYNC_WITH_POSTGRES
namespace {

struct column {
    std::string name;
    enum class type { integer, text, blob } kind;
    bool identity = false;
};

struct table {
    std::string name;
    std::vector<column> columns;
};

// The tables and columns of the PostgreSQL store, as PostgreSQL lists them: the copy follows
// them, so a table the file lacks is an error rather than a table left behind.
std::vector<table> postgres_tables(sql::db& pg) {
    std::vector<table> out;
    {
        auto t = pg.prepare(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name");
        while (t->step()) out.push_back(table{t->text(0), {}});
    }
    for (auto& t : out) {
        auto c = pg.prepare(
            "SELECT column_name, data_type, is_identity FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = CAST(? AS text) ORDER BY ordinal_position");
        c->bind(1, t.name);
        while (c->step()) {
            const auto type = c->text(1);
            column col{c->text(0), column::type::text, c->text(2) == "YES"};
            if (type == "bigint" || type == "integer" || type == "smallint")
                col.kind = column::type::integer;
            else if (type == "bytea")
                col.kind = column::type::blob;
            else if (type != "text")
                throw std::runtime_error("table " + t.name + ", column " + col.name + ": no copy for type " + type);
            t.columns.push_back(std::move(col));
        }
    }
    return out;
}

std::string column_list(const table& t) {
    std::string out;
    for (const auto& c : t.columns) out += (out.empty() ? "" : ", ") + c.name;
    return out;
}

// One row, each value tagged with its kind and length, so rows that differ never serialise
// alike.
std::string row_bytes(const sql::stmt& s, const table& t) {
    std::string out;
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
        const int col = static_cast<int>(i);
        if (s.is_null(col)) {
            out += "N;";
        } else if (t.columns[i].kind == column::type::integer) {
            out += "I" + std::to_string(s.int64(col)) + ";";
        } else {
            const auto v = s.text(col);
            out += "T" + std::to_string(v.size()) + ":" + v;
        }
    }
    return out;
}

// The digest of a table: SHA-256 over its rows' SHA-256s in byte order, so the two engines'
// orderings (collations, NULLs first or last) do not matter.
struct table_sum {
    std::int64_t rows = 0;
    std::string digest;  // hex
};

table_sum sum_table(sql::db& d, const table& t) {
    std::vector<std::string> hashes;
    auto s = d.prepare("SELECT " + column_list(t) + " FROM " + t.name);
    while (s->step()) hashes.push_back(store_util::sha256(row_bytes(*s, t)));
    std::sort(hashes.begin(), hashes.end());
    std::string all;
    all.reserve(hashes.size() * 32);
    for (const auto& h : hashes) all += h;
    const auto digest = store_util::sha256(all);
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string hex;
    for (const unsigned char c : digest) {
        hex += k_hex[c >> 4];
        hex += k_hex[c & 15];
    }
    return {static_cast<std::int64_t>(hashes.size()), hex};
}

std::int64_t count_rows(sql::db& d, const std::string& table) {
    auto s = d.prepare("SELECT count(*) FROM " + table);
    s->step();
    return s->int64(0);
}

}  // namespace

proto::expected<migration_report> migrate_sqlite_to_postgres(const std::string& sqlite_path,
                                                             const std::string& conninfo) {
    using proto::errc;
    using proto::error;
    if (!std::filesystem::exists(sqlite_path))
        return error{errc::not_found, "no store at '" + sqlite_path + "'"};
    // No server may write the file while it is copied: what it wrote after would be lost.
    auto lock = lock_store(sqlite_path);
    if (!lock) return error{errc::unavailable, lock.err().message + " (stop the server first)"};
    try {
        // Both stores at the newest schema: the file migrated as a server would, PostgreSQL's
        // tables made if the database is empty.
        {
            store_options o;
            o.path = sqlite_path;
            auto s = open_sqlite_store(o);
            if (!s) return std::move(s).err();
        }
        {
            store_options o;
            o.path = conninfo;
            auto s = open_postgres_store(o);
            if (!s) return std::move(s).err();
        }
        auto src = sql::open_sqlite(sqlite_path);
        auto dst = sql::open_postgres(conninfo);
        const auto tables = postgres_tables(*dst);

        migration_report report;
        src->begin_read();
        dst->begin_write();
        try {
            // Only into a store nothing was written to: a copy over records would mix two stores.
            for (const char* kept : {"heads", "history", "devices", "decided", "conflicts", "forwards"}) {
                if (const auto n = count_rows(*dst, kept); n > 0) {
                    dst->rollback();
                    src->rollback();
                    return error{errc::bad_request, "the PostgreSQL store is not empty (" + std::to_string(n) +
                                                        " rows in " + kept +
                                                        "): migrate only into a new database"};
                }
            }
            // PostgreSQL keeps its schema's version in meta, SQLite in PRAGMA user_version:
            // the copied meta gets PostgreSQL's back.
            std::string schema_version;
            {
                auto v = dst->prepare("SELECT value FROM meta WHERE key = 'schema_version'");
                if (v->step()) schema_version = v->text(0);
            }
            for (const auto& t : tables) {
                dst->exec("DELETE FROM " + t.name);
                std::string marks;
                for (std::size_t i = 0; i < t.columns.size(); ++i) marks += i ? ", ?" : "?";
                auto in = dst->prepare("INSERT INTO " + t.name + "(" + column_list(t) + ") VALUES (" + marks + ")");
                auto out = src->prepare("SELECT " + column_list(t) + " FROM " + t.name);
                while (out->step()) {
                    for (std::size_t i = 0; i < t.columns.size(); ++i) {
                        const int col = static_cast<int>(i);
                        const int param = col + 1;
                        if (out->is_null(col)) {
                            in->bind_null(param);
                        } else if (t.columns[i].kind == column::type::integer) {
                            in->bind_int64(param, out->int64(col));
                        } else if (t.columns[i].kind == column::type::blob) {
                            const auto v = out->text(col);
                            in->bind_blob(param, v.data(), v.size());
                        } else {
                            in->bind_text(param, out->text(col));
                        }
                    }
                    in->run();
                }
                // Identity columns go on after the copied values.
                for (const auto& c : t.columns) {
                    if (!c.identity) continue;
                    dst->prepare("SELECT setval(pg_get_serial_sequence('" + t.name + "', '" + c.name +
                                 "'), COALESCE((SELECT max(" + c.name + ") FROM " + t.name + "), 0) + 1, false)")
                        ->step();
                }
                const auto from = sum_table(*src, t);
                const auto to = sum_table(*dst, t);
                if (from.rows != to.rows || from.digest != to.digest) {
                    dst->rollback();
                    src->rollback();
                    return error{errc::storage_error,
                                 "table " + t.name + " differs after the copy (" + std::to_string(from.rows) +
                                     " rows, " + std::to_string(to.rows) + " copied): nothing was kept"};
                }
                report.tables.push_back({t.name, to.rows, to.digest});
            }
            dst->prepare("INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
                ->bind(1, schema_version)
                .run();
            dst->commit();
            src->commit();
        } catch (...) {
            dst->rollback();
            src->rollback();
            throw;
        }
        return report;
    } catch (const std::exception& e) {
        return store_util::storage_failure(e);
    }
}
#else
proto::expected<migration_report> migrate_sqlite_to_postgres(const std::string&, const std::string&) {
    return proto::error{proto::errc::unavailable, "this build has no PostgreSQL (libpq-dev was missing)"};
}
#endif

}  // namespace fieldsync::server
