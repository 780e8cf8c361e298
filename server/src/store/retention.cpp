// Retention (ARCHITECTURE.md, "Retention and gc"): what devices acknowledge, the re-snapshot
// of a device whose cursor lies behind what gc purged, and gc itself.
//
// The soundness argument, in short. A device's `safe_seq` is a feed position up to which gc
// may purge tombstones and drop notices without the device missing one: every entry of its
// scope at or below it was delivered, or had not existed when a complete page was read (seqs
// only grow, so none can appear there later). gc's horizon is the lowest safe_seq of the
// active devices, so an active device is never harmed; any other device presenting a cursor
// below the horizon starts over (`restarted`), unless its last acknowledgement vouches that the
// cursor it presents is the one it was given with a safe_seq at or past the horizon (a device
// whose scope is quiet keeps an old cursor while the feed moves on elsewhere).

#include "store/sql_store.hpp"

#include <fieldsync/server/tuning.hpp>

#include <algorithm>
#include <map>
#include <tuple>
#include <vector>

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;

namespace {

std::int64_t meta_int(sql::db& db, const char* key) {
    auto s = db.cached("SELECT value FROM meta WHERE key = ?");
    s.bind(1, std::string_view(key));
    const std::int64_t v = s.step() ? s.int64(0) : 0;
    return v;
}

void set_meta_int(sql::db& db, const char* key, std::int64_t value) {
    db.cached("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .bind(1, std::string_view(key))
        .bind(2, std::to_string(value))
        .run();
}

}  // namespace

std::map<std::string, acknowledgement> sql_store::take_acks() {
    std::map<std::string, acknowledgement> out;
    std::lock_guard lock(queue_mutex_);
    out.swap(acks_);
    return out;
}

void sql_store::write_acks(sql::db& db, const std::map<std::string, acknowledgement>& acks) {
    for (const auto& [id, a] : acks)
        db.cached(
              "UPDATE devices SET ack_epoch = ?, ack_seq = ?, next_seq = ?, safe_seq = ?, ack_ms = ? WHERE id = ?")
            .bind(1, a.epoch)
            .bind(2, a.cursor_seq)
            .bind(3, a.issued_seq)
            .bind(4, a.safe_seq)
            .bind(5, a.at_ms)
            .bind(6, id)
            .run();
}

std::optional<proto::head_state> sql_store::purged_head(sql::db& db, const std::string& collection,
                                                           const std::string& id, std::string& unit_id) {
    auto s = db.cached(
        "SELECT version, deleted, data, hlc, device_id, unit_id FROM history WHERE collection = ? AND id = ? "
        "ORDER BY version DESC LIMIT 1");
    s.bind(1, collection).bind(2, id);
    if (!s.step()) return std::nullopt;
    proto::head_state h;
    h.version = s.int64(0);
    h.state.deleted = s.int64(1) != 0;
    h.state.data = parse_stored(s.text(2));
    h.stamp = proto::hlc::parse(s.text(3)).value_or(proto::hlc{});
    h.writer = s.text(4);
    unit_id = s.text(5);
    return h;
}

proto::expected<pull_page> sql_store::device_pull(const device& dev, std::int64_t after_seq, std::int64_t limit) {
    acknowledgement ack;
    auto page = read([&](sql::db& db) {
        // One snapshot (read() runs this in a read transaction): gc writes its horizon before
        // it purges, so these reads see either the old horizon and nothing purged under the new
        // one, or the new horizon.
        std::int64_t horizon = 0, feed_seq = 0;
        std::string lost;
        {
            auto m = db.cached("SELECT key, value FROM meta WHERE key IN ('purge_horizon', 'seq', 'lost_seqs')");
            while (m.step()) {
                const auto key = m.text(0);
                if (key == "purge_horizon")
                    horizon = m.int64(1);
                else if (key == "seq")
                    feed_seq = m.int64(1);
                else
                    lost = m.text(1);
            }
        }
        // A cursor past the feed's end was issued by another incarnation of the store (it was
        // restored from an older backup), one in seqs written off at a promotion by a primary
        // that was lost (load_seq): it acknowledges nothing here, so start over.
        bool restart = after_seq > feed_seq || (!lost.empty() && in_lost_seqs(lost, after_seq));
        if (!restart && after_seq > 0 && after_seq < horizon) {
            std::optional<acknowledgement> last;
            {
                std::lock_guard lock(queue_mutex_);
                if (const auto it = latest_acks_.find(dev.id); it != latest_acks_.end()) last = it->second;
            }
            if (!last) {
                static const std::string sql = std::string("SELECT ") + k_device_columns +
                                               " FROM devices d LEFT JOIN units u ON u.id = d.unit_id WHERE d.id = ?";
                auto s = db.cached(sql.c_str());
                s.bind(1, dev.id);
                if (s.step()) last = read_device(s).ack;
            }
            restart = !(last && last->epoch == dev.scope_epoch && last->issued_seq == after_seq &&
                        last->safe_seq >= horizon);
        }
        const auto from = restart ? 0 : after_seq;
        // The stored text as it is: the sync answer splices it in (proto::encode_json).
        auto p = pull_on(db, scope::of(dev), from, limit, true);
        p.restarted = restart;

        const bool empty = p.changes.empty() && p.dropped.empty();
        ack.epoch = dev.scope_epoch;
        ack.cursor_seq = after_seq;
        ack.issued_seq = empty ? from : p.last_seq;
        // A complete page leaves nothing of the scope unsent up to the feed's seq as it was
        // before the reads; a partial one, up to its own cursor. Below the horizon nothing
        // purgeable is left to miss.
        ack.safe_seq = std::max({ack.issued_seq, p.more ? 0 : feed_seq, horizon});
        return p;
    });
    if (!page) return page;
    ack.at_ms = wall_();
    std::lock_guard lock(queue_mutex_);
    const bool first = acks_.empty();
    acks_[dev.id] = ack;
    latest_acks_[dev.id] = ack;
    if (first) queue_cv_.notify_one();
    return page;
}

namespace {

struct gc_device {
    std::string id;
    bool revoked = false;
    std::optional<acknowledgement> ack;
};

// One gc run on a connection of its own, in short transactions (a dry run only reads and never
// takes the write lock), phase by phase: the horizon, then tombstones, drop notices and
// remembered answers, each in batches of o.batch_rows.
struct gc_run {
    sql::db& db;
    const gc_options& o;
    gc_report& rep;
    const std::int64_t now;
    const std::int64_t cutoff = now - o.window_ms;

    // Runs fn in one short transaction; a dry run's only reads, without the write lock.
    template <class Fn>
    auto in_tx(Fn&& fn) {
        if (o.dry_run)
            db.begin_read();
        else
            db.begin_write();
        try {
            auto r = fn();
            db.commit();
            return r;
        } catch (...) {
            db.rollback();
            throw;
        }
    }

    // 1. The horizon, from the active devices' safe positions; `pending` holds this process's
    //    unwritten acknowledgements (`write_pending` writes them, in the same transaction).
    std::vector<gc_device> set_horizon(const std::map<std::string, acknowledgement>& pending,
                                       const std::function<void()>& write_pending) {
        std::vector<gc_device> devs;
        in_tx([&] {
            if (!o.dry_run) write_pending();
            rep.feed_seq = meta_int(db, "seq");
            rep.previous_horizon = meta_int(db, "purge_horizon");
            static const std::string sql = std::string("SELECT ") + k_device_columns +
                                           " FROM devices d LEFT JOIN units u ON u.id = d.unit_id ORDER BY d.id";
            auto s = db.cached(sql.c_str());
            while (s.step()) {
                auto d = read_device(s);
                if (const auto it = pending.find(d.id); it != pending.end()) d.ack = it->second;
                devs.push_back({d.id, d.revoked_ms.has_value(), d.ack});
            }
            std::optional<std::int64_t> lowest;
            for (const auto& d : devs) {
                const bool active = !d.revoked && d.ack && d.ack->at_ms >= cutoff;
                if (!active) {
                    ++rep.inactive_devices;
                    continue;
                }
                ++rep.active_devices;
                if (!lowest || d.ack->safe_seq < *lowest) {
                    lowest = d.ack->safe_seq;
                    rep.held_back_by = d.id;
                }
            }
            // Never lower: what was purged stays purged, and devices were judged against it.
            rep.horizon = std::max(rep.previous_horizon, std::min(lowest.value_or(rep.feed_seq), rep.feed_seq));
            if (rep.held_back_by.size() && lowest && *lowest >= rep.feed_seq) rep.held_back_by.clear();
            if (!o.dry_run) {
                set_meta_int(db, "purge_horizon", rep.horizon);
                set_meta_int(db, "purge_ms", now);
            }
            return 0;
        });
        return devs;
    }

    // 2. Tombstones at or below the horizon, unless a conflict still open on the record
    //    will be resolved against them. Walked in seq order from where the last batch ended.
    void purge_tombstones() {
        for (std::int64_t after = 0;;) {
            const auto n = in_tx([&] {
                std::vector<std::tuple<std::string, std::string, std::int64_t>> rows;
                auto s = db.cached(
                    db.kind() == sql::engine::sqlite
                        ? "SELECT h.collection, h.id, h.seq FROM heads h INDEXED BY heads_tombstones "
                          "WHERE h.deleted = 1 AND h.seq > ?1 AND h.seq <= ?2 AND NOT EXISTS (SELECT 1 FROM conflicts c "
                          "WHERE c.collection = h.collection AND c.record_id = h.id AND c.status = 'open') "
                          "ORDER BY h.seq LIMIT ?3"
                        : "SELECT h.collection, h.id, h.seq FROM heads h "
                          "WHERE h.deleted = 1 AND h.seq > ?1 AND h.seq <= ?2 AND NOT EXISTS (SELECT 1 FROM conflicts c "
                          "WHERE c.collection = h.collection AND c.record_id = h.id AND c.status = 'open') "
                          "ORDER BY h.seq LIMIT ?3");
                s.bind(1, after).bind(2, rep.horizon).bind(3, o.batch_rows);
                while (s.step()) rows.emplace_back(s.text(0), s.text(1), s.int64(2));
                for (const auto& [collection, id, seq] : rows) {
                    after = seq;
                    if (o.dry_run) {
                        ++rep.tombstones;
                        continue;
                    }
                    db.cached("DELETE FROM heads WHERE collection = ? AND id = ? AND seq = ? AND deleted = 1")
                        .bind(1, collection)
                        .bind(2, id)
                        .bind(3, seq)
                        .run();
                    rep.tombstones += db.changes();
                }
                return static_cast<std::int64_t>(rows.size());
            });
            if (n < o.batch_rows) break;
        }
    }

    // 3. Drop notices at or below the horizon.
    void purge_drops() {
        for (std::int64_t after = 0;;) {
            const auto n = in_tx([&] {
                std::vector<std::int64_t> seqs;
                auto s = db.cached("SELECT seq FROM drops WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?");
                s.bind(1, after).bind(2, rep.horizon).bind(3, o.batch_rows);
                while (s.step()) seqs.push_back(s.int64(0));
                for (const auto seq : seqs) {
                    after = seq;
                    if (o.dry_run) {
                        ++rep.drops;
                        continue;
                    }
                    db.cached("DELETE FROM drops WHERE seq = ?").bind(1, seq).run();
                    rep.drops += db.changes();
                }
                return static_cast<std::int64_t>(seqs.size());
            });
            if (n < o.batch_rows) break;
        }
    }

    // 4. Remembered answers a device can no longer ask for again, older than the window:
    //    those of revoked devices (refused with 401), and those below a cursor the device
    //    presented. A replica resends its oldest unanswered change-set in every request
    //    until it is answered and stores the answer with the cursor of the same response,
    //    so a cursor above the answer's seq proves that answer arrived. Anything else is
    //    kept, however old: a retry must never apply a change twice.
    void purge_decided(const std::vector<gc_device>& devs) {
        for (const auto& d : devs) {
            if (!d.revoked && !d.ack) continue;
            const std::int64_t below = d.ack ? d.ack->cursor_seq : 0;
            for (std::string after;;) {
                const auto n = in_tx([&] {
                    std::vector<std::string> ids;
                    std::int64_t seen = 0;
                    auto s = db.cached(
                        "SELECT change_id, decided_ms, seq FROM decided WHERE device_id = ? AND change_id > ? "
                        "ORDER BY change_id LIMIT ?");
                    s.bind(1, d.id).bind(2, after).bind(3, o.batch_rows);
                    while (s.step()) {
                        ++seen;
                        after = s.text(0);
                        if (s.int64(1) < cutoff && (d.revoked || s.int64(2) < below)) ids.push_back(after);
                    }
                    for (const auto& id : ids) {
                        if (o.dry_run) {
                            ++rep.decided;
                            continue;
                        }
                        db.cached("DELETE FROM decided WHERE device_id = ? AND change_id = ?")
                            .bind(1, d.id)
                            .bind(2, id)
                            .run();
                        rep.decided += db.changes();
                    }
                    return seen;
                });
                if (n < o.batch_rows) break;
            }
        }
    }
};

}  // namespace

proto::expected<gc_report> sql_store::gc(const gc_options& o) {
    if (o.window_ms < 0) return error{errc::bad_request, "the retention window cannot be negative"};
    if (o.batch_rows < 1) return error{errc::bad_request, "gc needs at least one row per transaction"};
    gc_report rep;
    rep.dry_run = o.dry_run;
    try {
        const auto conn = connect_();
        auto& db = *conn;
        if (!o.dry_run && db.kind() == sql::engine::postgres) {
            // One gc at a time on a store that several servers and admin tools share: a lock
            // held by this connection's session, so a gc that dies (its process killed, its
            // machine lost) lets go of it with its connection. (Two at once would be correct,
            // every batch takes the write lock, but each would count what the other purged.)
            // Advisory locks are the database's, and a database may hold several stores (one
            // a schema): the key is this store's, from its incarnation.
            auto l = db.cached("SELECT pg_try_advisory_lock(hashtextextended(?, 4242002))");
            l.bind(1, incarnation_);
            if (!l.step() || l.int64(0) == 0)
                return error{errc::unavailable,
                             "another gc is running on this store (from this machine or another); run it again when that "
                             "one has finished"};
        }
        gc_run run{db, o, rep, wall_()};
        // This process's unwritten acknowledgements count: a dry run reads them, a real run
        // writes them first.
        std::map<std::string, acknowledgement> pending;
        if (o.dry_run) {
            std::lock_guard lock(queue_mutex_);
            pending = acks_;
        } else {
            pending = take_acks();
        }
        const auto devs = run.set_horizon(pending, [&] { write_acks(db, pending); });
        run.purge_tombstones();
        run.purge_drops();
        run.purge_decided(devs);
    } catch (const std::exception& e) {
        return storage_failure(e);
    }
    return rep;
}

}  // namespace fieldsync::server
