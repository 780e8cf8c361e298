// A relay hub's store (store_options::relay; ARCHITECTURE.md, "Relay hub"): devices' changes
// kept as forwards until the upstream answers them, and the upstream's records mirrored at
// the upstream's versions, so a version means the same record at the hub and upstream.

#include "store/sql_store.hpp"

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;

// Runs on the writer thread, inside the change-set's savepoint. What the hub can tell alone
// (an unknown collection, a record or unit outside the device's scope, a whole record that
// breaks the schema, a change_id another device of this hub already used) is final and
// recorded like any answer; everything else is the upstream's to decide: the merge rule
// needs the upstream's head, and a collision must open one conflict there, not one here.
proto::change_result sql_store::relay_one(const device& dev, const proto::change& c, const std::string& batch_id,
                                             std::int64_t now_ms) {
    auto rejected = [&](errc code, std::string message, std::int64_t version) {
        return store_util::rejected_answer(c.change_id, error{code, std::move(message)}, version);
    };
    proto::change_result r;
    r.change_id = c.change_id;

    const auto* coll = schema_.find(c.collection);
    if (!coll) return rejected(errc::unknown_collection, "unknown collection '" + c.collection + "'", 0);

    std::int64_t head_version = 0;
    std::optional<std::string> head_path;
    {
        auto s = writer_db_.cached("SELECT version, path FROM heads WHERE collection = ? AND id = ?");
        s.bind(1, c.collection).bind(2, c.id);
        if (s.step()) {
            head_version = s.int64(0);
            head_path = s.text(1);
        }
    }
    const auto sc = scope::of(dev);
    if (!sc.contains(path_of(writer_db_, c.unit_id)) || (head_path && !sc.contains(*head_path)))
        return rejected(errc::out_of_scope, "this record or its unit '" + c.unit_id + "' is outside the device's scope",
                        0);
    if (c.op == proto::op_kind::put) {
        if (auto bad = schema_.validate(*coll, c.data)) return rejected(bad->code, bad->message, head_version);
    }

    // The upstream remembers change_ids per device, and the hub is one device there: two of
    // the hub's devices with the same change_id would get one answer. Ids are UUIDs or ULIDs
    // (SPEC.md, "Ids"), so this refuses a broken client, not a coincidence.
    {
        auto s = writer_db_.cached("SELECT device_id FROM forwards WHERE change_id = ?");
        s.bind(1, c.change_id);
        std::optional<std::string> owner;
        if (s.step()) owner = s.text(0);
        s.reset();
        if (owner && *owner != dev.id)
            return rejected(errc::bad_field, "change_id '" + c.change_id +
                                                 "' was already used by another device of this hub; make change_ids "
                                                 "UUIDs or ULIDs",
                            head_version);
        if (!owner) {
            auto ins = writer_db_.cached(
                "INSERT INTO forwards(change_id, device_id, batch_id, change, created_ms) VALUES (?, ?, ?, ?, ?)");
            ins.bind(1, c.change_id).bind(2, dev.id).bind(3, batch_id).bind(4, proto::encode(c).dump());
            ins.bind(5, now_ms).run();
        }
    }
    r.status = proto::change_status::queued;
    r.version = head_version;
    return r;
}

proto::expected<std::vector<forward_entry>> sql_store::relay_forwards(std::int64_t after_seq, std::int64_t limit) {
    return read([&](sql::db& db) {
        auto s = db.cached(
            "SELECT seq, device_id, change FROM forwards WHERE settled_ms IS NULL AND seq > ? ORDER BY seq LIMIT ?");
        s.bind(1, after_seq).bind(2, limit);
        std::vector<forward_entry> out;
        while (s.step()) {
            forward_entry f;
            f.seq = s.int64(0);
            f.device_id = s.text(1);
            auto decoded = proto::decode_change_set(json{{"batch_id", "relay"}, {"changes", json::array({json::parse(s.text(2))})}});
            if (!decoded || decoded->changes.size() != 1 || decoded->changes[0].rejected) {
                throw std::runtime_error("a stored forward is damaged (seq " + std::to_string(f.seq) + ")");
            }
            f.change = std::move(decoded->changes[0].c);
            out.push_back(std::move(f));
        }
        return out;
    });
}

proto::expected<std::int64_t> sql_store::relay_backlog() {
    return read([&](sql::db& db) {
        auto s = db.cached("SELECT count(*) FROM forwards WHERE settled_ms IS NULL");
        s.step();
        const auto n = s.int64(0);
        return n;
    });
}

proto::expected<void> sql_store::relay_answer(const proto::sync_response& answer) {
    const auto now_ms = wall_();
    const auto stamp = clock_.now().to_string();
    auto done = admin_write([&](sql::db& db) {
        // Final answers settle their forwards: the device's next push of the change (same
        // change_id) is answered from `decided`, with the upstream's version.
        for (const auto& res : answer.results) {
            if (res.status == proto::change_status::queued) continue;  // a hub above this one
            auto s = db.cached("SELECT device_id, batch_id FROM forwards WHERE change_id = ? AND settled_ms IS NULL");
            s.bind(1, res.change_id);
            if (!s.step()) continue;  // settled by an earlier delivery of this answer
            const auto device_id = s.text(0);
            const auto batch_id = s.text(1);
            s.reset();
            // seq: gc forgets an answer once the device presents a cursor above the answer's
            // seq (retention.cpp), which proves the answer arrived only when it was given in
            // the response to the change. A settled answer is given later, to a resend that
            // may carry any cursor, so it is kept while the device can ask (the highest seq).
            db.cached("INSERT INTO decided(device_id, change_id, batch_id, result, decided_ms, seq) "
                      "VALUES (?, ?, ?, ?, ?, 9223372036854775807) ON CONFLICT DO NOTHING")
                .bind(1, device_id)
                .bind(2, res.change_id)
                .bind(3, batch_id)
                .bind(4, proto::encode(res).dump())
                .bind(5, now_ms)
                .run();
            db.cached("UPDATE forwards SET settled_ms = ? WHERE change_id = ?").bind(1, now_ms).bind(2, res.change_id).run();
        }

        // Mirror: the upstream's head at the upstream's version, with a feed seq of the hub.
        auto seq = load_seq(db);
        for (const auto& p : answer.changes) {
            std::optional<std::int64_t> have;
            std::string old_path;
            {
                auto s = db.cached("SELECT version, path FROM heads WHERE collection = ? AND id = ?");
                s.bind(1, p.collection).bind(2, p.id);
                if (s.step()) {
                    have = s.int64(0);
                    old_path = s.text(1);
                }
            }
            if (have && *have >= p.version) continue;
            const auto path = path_of(db, p.unit_id);
            version_row v;
            v.collection = p.collection;
            v.id = p.id;
            v.unit_id = p.unit_id;
            v.path = path;
            v.version = p.version;
            v.deleted = p.deleted;
            if (!p.deleted && !p.data.is_null()) v.data = p.data.dump();
            v.writer = "upstream";
            v.hlc = stamp;
            v.server_ms = now_ms;
            v.how = "mirrored";
            v.seq = ++seq;
            if (have) v.old_path = old_path;
            v.history_may_hold = true;  // a record that left the hub's scope and came back
            write_version(db, v);
        }
        // Records that left the hub's scope upstream leave the feed of the hub's devices.
        for (const auto& d : answer.dropped) {
            auto s = db.cached("SELECT path FROM heads WHERE collection = ? AND id = ?");
            s.bind(1, d.collection).bind(2, d.id);
            if (!s.step()) continue;
            const auto old_path = s.text(0);
            s.reset();
            ++seq;
            db.cached("INSERT INTO drops(seq, collection, id, path) VALUES (?, ?, ?, ?)")
                .bind(1, seq)
                .bind(2, d.collection)
                .bind(3, d.id)
                .bind(4, old_path)
                .run();
            db.cached("DELETE FROM heads WHERE collection = ? AND id = ?").bind(1, d.collection).bind(2, d.id).run();
        }
        store_seq(db, seq);
        return true;
    });
    if (!done) return std::move(done).err();
    return {};
}

}  // namespace fieldsync::server
