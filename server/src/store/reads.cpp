// Reads on the pool's connections: the change feed, heads, history, conflicts.

#include "store/sqlite_store.hpp"

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;

proto::expected<pull_page> sqlite_store::pull(std::int64_t after_seq, std::int64_t limit) {
    return read([&](sqlite::db& db) {
        pull_page page;
        page.last_seq = after_seq;
        auto& s = db.cached(
            "SELECT collection, id, unit_id, version, deleted, data, seq FROM heads "
            "WHERE seq > ? ORDER BY seq LIMIT ?");
        s.bind(1, after_seq).bind(2, limit + 1);
        while (s.step()) {
            if (static_cast<std::int64_t>(page.changes.size()) == limit) {
                page.more = true;
                break;
            }
            proto::pulled_change p;
            p.collection = s.text(0);
            p.id = s.text(1);
            p.unit_id = s.text(2);
            p.version = s.int64(3);
            p.deleted = s.int64(4) != 0;
            p.data = parse_stored(s.text(5));
            page.last_seq = s.int64(6);
            page.changes.push_back(std::move(p));
        }
        s.reset();
        return page;
    });
}

proto::expected<std::optional<record_view>> sqlite_store::get(const std::string& collection, const std::string& id) {
    return read([&](sqlite::db& db) -> std::optional<record_view> {
        auto& s = db.cached(
            "SELECT unit_id, version, deleted, data, seq, hlc, updated_ms FROM heads "
            "WHERE collection = ? AND id = ?");
        s.bind(1, collection).bind(2, id);
        if (!s.step()) return std::nullopt;
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
        s.reset();
        return r;
    });
}

proto::expected<std::vector<history_entry>> sqlite_store::history(const std::string& collection,
                                                    const std::string& id) {
    return read([&](sqlite::db& db) {
        std::vector<history_entry> out;
        auto& s = db.cached(
            "SELECT version, seq, deleted, data, unit_id, device_id, change_id, hlc, server_ms, how, lost "
            "FROM history WHERE collection = ? AND id = ? ORDER BY version");
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
            out.push_back(std::move(h));
        }
        return out;
    });
}

proto::expected<std::vector<conflict_view>> sqlite_store::conflicts(const std::string& status, std::int64_t limit,
                                                      std::int64_t offset) {
    return read([&](sqlite::db& db) {
        std::vector<conflict_view> out;
        auto& s = db.cached(
            "SELECT id, collection, record_id, unit_id, status, base_version, head_version, base, head, "
            "head_deleted, incoming, incoming_deleted, fields, device_id, change_id, hlc, created_ms "
            "FROM conflicts WHERE (?1 = '' OR status = ?1) ORDER BY seq DESC LIMIT ?2 OFFSET ?3");
        s.bind(1, status).bind(2, limit).bind(3, offset);
        while (s.step()) out.push_back(read_conflict(s));
        return out;
    });
}

proto::expected<std::optional<conflict_view>> sqlite_store::conflict(const std::string& id) {
    return read([&](sqlite::db& db) -> std::optional<conflict_view> {
        auto& s = db.cached(
            "SELECT id, collection, record_id, unit_id, status, base_version, head_version, base, head, "
            "head_deleted, incoming, incoming_deleted, fields, device_id, change_id, hlc, created_ms "
            "FROM conflicts WHERE id = ?");
        s.bind(1, id);
        if (!s.step()) return std::nullopt;
        auto c = read_conflict(s);
        s.reset();
        return c;
    });
}

conflict_view sqlite_store::read_conflict(sqlite::stmt& s) {
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
    return c;
}

}  // namespace fieldsync::server
