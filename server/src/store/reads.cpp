// Reads on the pool's connections: the change feed, heads, history, conflicts (with the
// names a reviewer reads: conflict_namer).

#include "store/sql_store.hpp"

#include <fieldsync/server/tuning.hpp>

#include <algorithm>
#include <limits>
#include <map>
#include <queue>

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;

namespace {

// A scope as a range of paths: [lo, hi).
std::pair<std::string, std::string> range_of(const scope& sc) {
    if (sc.all) return {"/", "0"};
    return {sc.path, subtree_end(sc.path)};
}

}  // namespace

// The names a reviewer reads instead of ids (SPEC.md, "Conflicts"): each lookup is a point
// read on the request's snapshot, cached for the request, so a page of 200 conflicts of one
// cell reads each unit, device and referenced record once.
class sql_store::conflict_namer {
public:
    conflict_namer(sql::db& db, const proto::schema& schema, const scope& sc) : db_(db), schema_(schema), sc_(sc) {}

    // Fills c's title, device_name, unit_name, path_names and closed_by_name. `current` is
    // the record's head now (nullptr: read it here), and null when deleted.
    void name(conflict_view& c, const json* current) {
        json read_head;
        if (!current) {
            auto h = db_.cached("SELECT deleted, data FROM heads WHERE collection = ? AND id = ?");
            h.bind(1, c.collection).bind(2, c.record_id);
            if (h.step() && h.int64(0) == 0) read_head = parse_stored(h.text(1));
            current = &read_head;
        }
        // The record as it is now, else as the incoming change wrote it, else as the head or
        // the base had it: the first of them that has a title.
        const json* const sides[] = {current, c.incoming_deleted ? nullptr : &c.incoming,
                                     c.head_deleted ? nullptr : &c.head, &c.base};
        for (const json* side : sides) {
            if (!side || !side->is_object()) continue;
            c.title = title(c.collection, *side, 0);
            if (!c.title.empty()) break;
        }
        c.device_name = device_name(c.device_id);
        c.unit_name = unit_name(c.unit_id);
        c.path_names.clear();
        // "/a/b/c/": the ids from the root down.
        for (std::size_t at = 1; at < c.path.size();) {
            const auto slash = c.path.find('/', at);
            if (slash == std::string::npos) break;
            const auto id = c.path.substr(at, slash - at);
            c.path_names.push_back(unit_name(id).value_or(id));
            at = slash + 1;
        }
        c.closed_by_name = c.closed_by.empty() ? std::string() : device_name(c.closed_by).value_or("");
    }

    std::optional<std::string> device_name(const std::string& id) {
        const auto it = devices_.find(id);
        if (it != devices_.end()) return it->second;
        auto s = db_.cached("SELECT name FROM devices WHERE id = ?");
        s.bind(1, id);
        std::optional<std::string> name;
        if (s.step()) name = s.text(0);
        return devices_.emplace(id, std::move(name)).first->second;
    }

    std::optional<std::string> unit_name(const std::string& id) {
        const auto it = units_.find(id);
        if (it != units_.end()) return it->second;
        auto s = db_.cached("SELECT name FROM units WHERE id = ?");
        s.bind(1, id);
        std::optional<std::string> name;
        if (s.step()) name = s.text(0);
        return units_.emplace(id, std::move(name)).first->second;
    }

private:
    // References are followed this deep (a review names its registration, which names its
    // member); a schema whose titles refer in a circle stops there.
    static constexpr int k_max_depth = 3;

    std::string title(const std::string& collection, const json& data, int depth) {
        const auto* c = schema_.find(collection);
        if (!c) return "";
        return proto::record_title(*c, data, [&](const std::string& ref, const std::string& id) {
            return depth + 1 < k_max_depth ? ref_title(ref, id, depth + 1) : std::string();
        });
    }

    // A referenced record's title: a unit by its name in the tree, else by the record of
    // `units`; any other record by its head, if the scope holds it (a name outside the
    // reviewer's scope is not revealed).
    std::string ref_title(const std::string& collection, const std::string& id, int depth) {
        if (collection == "units")
            if (auto n = unit_name(id)) return *n;
        const auto key = std::pair{collection, id};
        if (const auto it = titles_.find(key); it != titles_.end()) return it->second;
        titles_[key] = "";  // a reference back to this record, met while naming it, names nothing
        json data;
        {
            auto h = db_.cached("SELECT deleted, data, path FROM heads WHERE collection = ? AND id = ?");
            h.bind(1, collection).bind(2, id);
            if (h.step() && h.int64(0) == 0 && sc_.contains(h.text(2))) data = parse_stored(h.text(1));
        }
        auto t = data.is_object() ? title(collection, data, depth) : std::string();
        return titles_[key] = std::move(t);
    }

    sql::db& db_;
    const proto::schema& schema_;
    const scope& sc_;
    std::map<std::string, std::optional<std::string>> devices_, units_;
    std::map<std::pair<std::string, std::string>, std::string> titles_;
};

proto::expected<pull_page> sql_store::pull(const scope& sc, std::int64_t after_seq, std::int64_t limit) {
    return read([&](sql::db& db) { return pull_on(db, sc, after_seq, limit); });
}

pull_page sql_store::pull_on(sql::db& db, const scope& sc, std::int64_t after_seq, std::int64_t limit,
                             bool stored_text) {
    {
        const auto [lo, hi] = range_of(sc);
        std::vector<std::pair<std::int64_t, proto::pulled_change>> heads;
        auto read_head = [stored_text](sql::stmt& s) {
            proto::pulled_change p;
            p.collection = s.text(0);
            p.id = s.text(1);
            p.unit_id = s.text(2);
            p.version = s.int64(3);
            p.deleted = s.int64(4) != 0;
            if (stored_text && !p.deleted)
                p.data_json = s.text(5);
            else
                p.data = parse_stored(s.text(5));
            return std::pair{s.int64(6), std::move(p)};
        };
        // The paths of the subtree: the units under the scope, and the scope's own path
        // (which is not in `units` when the device's unit is not in the tree).
        std::vector<std::string> paths;
        if (!sc.all) {
            auto u = db.cached("SELECT path FROM units WHERE path >= ? AND path < ?");
            u.bind(1, lo).bind(2, hi);
            while (u.step()) paths.push_back(u.text(0));
            if (std::find(paths.begin(), paths.end(), sc.path) == paths.end()) paths.push_back(sc.path);
        }
        if (sc.all || paths.size() > tuning::max_merged_unit_feeds) {
            // The whole district, or a subtree so wide that most of the feed is its own: walk
            // the feed in seq order and keep what lies in the range.
            // SQLite is told to walk the seq index. PostgreSQL has no such hint, and its planner,
            // from statistics that lag a table growing fast, may take the path range for a
            // selective condition and read and sort every head after the cursor to return a
            // few: for the whole district the range says nothing, so it is left out, and the
            // seq index is the only way to read in seq order with a limit.
            const bool whole = sc.all && db.kind() == sql::engine::postgres;
            auto s = db.cached(
                db.kind() == sql::engine::sqlite
                    ? "SELECT collection, id, unit_id, version, deleted, data, seq FROM heads INDEXED BY heads_by_seq "
                      "WHERE seq > ?3 AND path >= ?1 AND path < ?2 ORDER BY seq LIMIT ?4"
                : whole ? "SELECT collection, id, unit_id, version, deleted, data, seq FROM heads "
                          "WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                        : "SELECT collection, id, unit_id, version, deleted, data, seq FROM heads "
                          "WHERE seq > ?3 AND path >= ?1 AND path < ?2 ORDER BY seq LIMIT ?4");
            if (whole)
                s.bind(1, after_seq).bind(2, limit + 1);
            else
                s.bind(1, lo).bind(2, hi).bind(3, after_seq).bind(4, limit + 1);
            while (s.step()) heads.push_back(read_head(s));
        } else {
            // One feed per unit of the subtree, each read in seq order from the (path, seq)
            // index, merged: a page reads about `limit` rows plus one per unit, so a cell's
            // pull costs what its own changes cost, whatever the rest of the district holds.
            std::vector<std::unique_ptr<sql::stmt>> feeds;
            using entry = std::pair<std::int64_t, std::size_t>;  // (seq, feed)
            std::priority_queue<entry, std::vector<entry>, std::greater<>> next;
            // Each feed reads at most a page: PostgreSQL runs a statement to its end at once.
            const char* feed_sql =
                db.kind() == sql::engine::sqlite
                    ? "SELECT collection, id, unit_id, version, deleted, data, seq FROM heads INDEXED BY heads_by_path "
                      "WHERE path = ? AND seq > ? ORDER BY seq LIMIT ?"
                    : "SELECT collection, id, unit_id, version, deleted, data, seq FROM heads "
                      "WHERE path = ? AND seq > ? ORDER BY seq LIMIT ?";
            for (const auto& path : paths) {
                auto f = db.prepare(feed_sql);
                f->bind(1, path).bind(2, after_seq).bind(3, limit + 1);
                if (f->step()) {
                    next.emplace(f->int64(6), feeds.size());
                    feeds.push_back(std::move(f));
                }
            }
            while (!next.empty() && static_cast<std::int64_t>(heads.size()) <= limit) {
                const auto [seq, k] = next.top();
                next.pop();
                heads.push_back(read_head(*feeds[k]));
                if (feeds[k]->step()) next.emplace(feeds[k]->int64(6), k);
            }
        }
        // Records that moved out of the subtree after the cursor, unless they are back in it.
        std::vector<std::pair<std::int64_t, dropped_record>> drops;
        if (!sc.all) {
            auto d = db.cached(
                "SELECT d.seq, d.collection, d.id FROM drops d WHERE d.path >= ?1 AND d.path < ?2 AND d.seq > ?3 "
                "AND NOT EXISTS (SELECT 1 FROM heads h WHERE h.collection = d.collection AND h.id = d.id "
                "AND h.path >= ?1 AND h.path < ?2) ORDER BY d.seq LIMIT ?4");
            d.bind(1, lo).bind(2, hi).bind(3, after_seq).bind(4, limit + 1);
            while (d.step()) drops.emplace_back(d.int64(0), dropped_record{d.text(1), d.text(2)});
        }
        // Both in seq order, at most `limit` in all.
        pull_page page;
        page.last_seq = after_seq;
        std::size_t h = 0, k = 0;
        while (h < heads.size() || k < drops.size()) {
            if (static_cast<std::int64_t>(page.changes.size() + page.dropped.size()) == limit) {
                page.more = true;
                break;
            }
            if (k == drops.size() || (h < heads.size() && heads[h].first < drops[k].first)) {
                page.last_seq = heads[h].first;
                page.changes.push_back(std::move(heads[h++].second));
            } else {
                page.last_seq = drops[k].first;
                page.dropped.push_back(std::move(drops[k++].second));
            }
        }
        return page;
    }
}

proto::expected<std::optional<record_view>> sql_store::get(const scope& sc, const std::string& collection,
                                                              const std::string& id) {
    return read([&](sql::db& db) -> std::optional<record_view> {
        auto s = db.cached(
            "SELECT unit_id, version, deleted, data, seq, hlc, updated_ms, path FROM heads "
            "WHERE collection = ? AND id = ?");
        s.bind(1, collection).bind(2, id);
        if (!s.step() || !sc.contains(s.text(7))) return std::nullopt;
        record_view r;
        r.collection = collection;
        r.id = id;
        r.unit_id = s.text(0);
        r.version = s.int64(1);
        r.deleted = s.int64(2) != 0;
        r.data = parse_stored(s.text(3));
        r.seq = s.int64(4);
        r.hlc = s.text(5);
        r.updated_ms = s.int64(6);
        return r;
    });
}

proto::expected<std::vector<std::optional<held_version>>> sql_store::versions_at(
    const std::vector<proto::pulled_change>& page, std::int64_t after_seq) {
    return read([&](sql::db& db) {
        std::vector<std::optional<held_version>> out;
        out.reserve(page.size());
        // Versions and seqs grow together per record, so the index on (collection, id,
        // version) is walked down from the head to the first version at or before the cursor.
        auto s = db.cached(
            "SELECT version, deleted, data FROM history WHERE collection = ? AND id = ? AND seq <= ? "
            "ORDER BY version DESC LIMIT 1");
        for (const auto& p : page) {
            s.bind(1, p.collection).bind(2, p.id).bind(3, after_seq);
            if (s.step()) {
                held_version h;
                h.version = s.int64(0);
                h.deleted = s.int64(1) != 0;
                if (!h.deleted) h.data = parse_stored(s.text(2));
                out.emplace_back(std::move(h));
            } else {
                out.emplace_back();
            }
            s.reset();
        }
        return out;
    });
}

proto::expected<std::vector<history_entry>> sql_store::history(const scope& sc, const std::string& collection,
                                                                   const std::string& id) {
    return read([&](sql::db& db) {
        std::vector<history_entry> out;
        // A record's history is visible where its head is; once gc purged its tombstone,
        // where its last version left it (history outlives the feed).
        auto where = db.cached("SELECT path FROM heads WHERE collection = ? AND id = ?");
        where.bind(1, collection).bind(2, id);
        std::string path;
        if (where.step()) {
            path = where.text(0);
            where.reset();
        } else if (std::string unit_id; purged_head(db, collection, id, unit_id)) {
            path = path_of(db, unit_id);
        }
        if (path.empty() || !sc.contains(path)) return out;
        auto s = db.cached(
            "SELECT h.version, h.seq, h.deleted, h.data, h.unit_id, h.device_id, h.change_id, h.hlc, h.server_ms, "
            "h.how, h.lost, d.name FROM history h LEFT JOIN devices d ON d.id = h.device_id "
            "WHERE h.collection = ? AND h.id = ? ORDER BY h.version");
        s.bind(1, collection).bind(2, id);
        while (s.step()) {
            history_entry h;
            h.version = s.int64(0);
            h.seq = s.int64(1);
            h.deleted = s.int64(2) != 0;
            h.data = parse_stored(s.text(3));
            h.unit_id = s.text(4);
            h.device_id = s.text(5);
            h.change_id = s.text(6);
            h.hlc = s.text(7);
            h.server_ms = s.int64(8);
            h.how = s.text(9);
            h.lost = s.is_null(10) ? json::object() : parse_stored(s.text(10));
            if (!s.is_null(11)) h.device_name = s.text(11);
            out.push_back(std::move(h));
        }
        return out;
    });
}

proto::expected<std::vector<conflict_view>> sql_store::conflicts(const scope& sc, const std::string& status,
                                                                     std::int64_t limit, std::int64_t offset) {
    conflict_filter f;
    f.status = status;
    f.limit = limit;
    f.offset = offset;
    return conflicts(sc, f);
}

proto::expected<std::vector<conflict_view>> sql_store::conflicts(const scope& sc, const conflict_filter& f) {
    return read([&](sql::db& db) {
        std::vector<conflict_view> out;
        const auto [lo, hi] = range_of(sc);
        // A unit filter is a second path range; both must hold, so it can narrow the
        // reviewer's scope but never reach outside it.
        std::string ulo = "/", uhi = "0";
        if (!f.unit_id.empty()) {
            ulo = path_of(db, f.unit_id);
            uhi = subtree_end(ulo);
        }
        auto s = db.cached(
            "SELECT id, collection, record_id, unit_id, status, base_version, head_version, base, head, "
            "head_deleted, incoming, incoming_deleted, fields, device_id, change_id, hlc, created_ms, path, "
            "closed_by, closed_ms, resolution "
            "FROM conflicts WHERE (?1 = '' OR status = ?1) AND path >= ?4 AND path < ?5 "
            "AND path >= ?6 AND path < ?7 AND (?8 = '' OR collection = ?8) AND (?9 = '' OR device_id = ?9) "
            "AND created_ms < ?10 AND created_ms >= ?11 "
            "ORDER BY seq DESC LIMIT ?2 OFFSET ?3");
        s.bind(1, f.status).bind(2, f.limit).bind(3, f.offset).bind(4, lo).bind(5, hi);
        s.bind(6, ulo).bind(7, uhi).bind(8, f.collection).bind(9, f.device_id);
        s.bind(10, f.created_before_ms.value_or(std::numeric_limits<std::int64_t>::max()));
        s.bind(11, f.created_after_ms.value_or(std::numeric_limits<std::int64_t>::min()));
        while (s.step()) out.push_back(read_conflict(s));
        s.reset();
        conflict_namer namer(db, schema_, sc);
        for (auto& c : out) namer.name(c, nullptr);
        return out;
    });
}

proto::expected<std::optional<conflict_view>> sql_store::conflict(const scope& sc, const std::string& id) {
    static const json null_record;
    return read([&](sql::db& db) -> std::optional<conflict_view> {
        auto s = db.cached(
            "SELECT id, collection, record_id, unit_id, status, base_version, head_version, base, head, "
            "head_deleted, incoming, incoming_deleted, fields, device_id, change_id, hlc, created_ms, path, "
            "closed_by, closed_ms, resolution "
            "FROM conflicts WHERE id = ?");
        s.bind(1, id);
        if (!s.step() || !sc.contains(s.text(17))) return std::nullopt;
        auto c = read_conflict(s);
        s.reset();
        auto h = db.cached("SELECT version, deleted, data FROM heads WHERE collection = ? AND id = ?");
        h.bind(1, c.collection).bind(2, c.record_id);
        if (h.step()) {
            c.current_version = h.int64(0);
            c.current_deleted = h.int64(1) != 0;
            c.current = parse_stored(h.text(2));
        }
        h.reset();
        conflict_namer(db, schema_, sc).name(c, c.current_deleted ? &null_record : &c.current);
        return c;
    });
}

proto::expected<std::vector<proto::resolution_notice>> sql_store::held_outcomes(
    const device& dev, const std::vector<std::string>& conflict_ids) {
    if (conflict_ids.empty()) return std::vector<proto::resolution_notice>{};
    return read([&](sql::db& db) {
        std::vector<proto::resolution_notice> out;
        auto s = db.cached(
            "SELECT c.status, c.device_id, c.closed_ms, c.resolution, d.unit_id, u.name FROM conflicts c "
            "LEFT JOIN devices d ON d.id = c.closed_by LEFT JOIN units u ON u.id = d.unit_id WHERE c.id = ?");
        for (const auto& id : conflict_ids) {
            s.bind(1, id);
            proto::resolution_notice n;
            n.conflict_id = id;
            if (!s.step() || s.text(1) != dev.id) {
                n.status = "unknown";
            } else if (s.text(0) == "open") {
                s.reset();
                continue;
            } else {
                n.status = s.text(0);
                n.closed_ms = s.int64(2);
                const auto decided = parse_stored(s.text(3));
                if (decided.is_object()) {
                    n.choice = decided.value("choice", "");
                    n.note = decided.value("note", "");
                    n.version = decided.value("version", std::int64_t{0});
                }
                n.reviewer_unit_id = s.text(4);
                n.reviewer_unit_name = s.text(5);
            }
            s.reset();
            out.push_back(std::move(n));
        }
        return out;
    });
}

conflict_view sql_store::read_conflict(sql::stmt& s) {
    conflict_view c;
    c.id = s.text(0);
    c.collection = s.text(1);
    c.record_id = s.text(2);
    c.unit_id = s.text(3);
    c.status = s.text(4);
    c.base_version = s.int64(5);
    c.head_version = s.int64(6);
    c.base = parse_stored(s.text(7));
    c.head = parse_stored(s.text(8));
    c.head_deleted = s.int64(9) != 0;
    c.incoming = parse_stored(s.text(10));
    c.incoming_deleted = s.int64(11) != 0;
    c.fields = json::parse(s.text(12)).get<std::vector<std::string>>();
    c.device_id = s.text(13);
    c.change_id = s.text(14);
    c.hlc = s.text(15);
    c.created_ms = s.int64(16);
    c.path = s.text(17);
    c.closed_by = s.text(18);
    c.closed_ms = s.int64(19);
    c.resolution = parse_stored(s.text(20));
    return c;
}

proto::expected<std::int64_t> sql_store::open_conflicts() {
    return read([&](sql::db& db) {
        auto s = db.cached("SELECT count(*) FROM conflicts WHERE status = 'open'");
        s.step();
        const auto n = s.int64(0);
        return n;
    });
}

proto::expected<std::vector<std::pair<std::string, std::int64_t>>> sql_store::last_syncs() {
    // The acknowledgements this process recorded, written or not (retention.cpp), over the
    // ones in the store (another process's, or from before a restart).
    std::map<std::string, std::int64_t> recent;
    {
        std::lock_guard lock(queue_mutex_);
        for (const auto& [id, ack] : latest_acks_) recent[id] = ack.at_ms;
    }
    return read([&](sql::db& db) {
        std::vector<std::pair<std::string, std::int64_t>> out;
        auto s = db.cached("SELECT id, ack_ms, revoked_ms IS NOT NULL FROM devices ORDER BY id");
        while (s.step()) {
            auto id = s.text(0);
            std::int64_t ms = s.is_null(1) ? 0 : s.int64(1);
            if (const auto p = recent.find(id); p != recent.end()) ms = std::max(ms, p->second);
            if (ms > 0 && s.int64(2) == 0) out.emplace_back(std::move(id), ms);
        }
        return out;
    });
}

}  // namespace fieldsync::server
