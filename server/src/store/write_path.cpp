// The writer thread and the sync engine's write path: group commit, idempotency, the merge
// rule applied to the store (ARCHITECTURE.md, "A sync, end to end").

#include "store/sql_store.hpp"

#include <fieldsync/protocol/tuning.hpp>
#include <fieldsync/server/tuning.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <utility>

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;

void sql_store::submit(const device& dev, proto::change_set cs, push_done done) {
    {
        std::lock_guard lock(queue_mutex_);
        if (!closing_) {
            queue_.push_back(job{dev, std::move(cs), std::move(done)});
            queue_cv_.notify_one();
            return;
        }
    }
    done(error{errc::unavailable, "the server is shutting down"});
}

void sql_store::close() {
    {
        std::lock_guard lock(queue_mutex_);
        if (closing_) return;
        closing_ = true;
        queue_cv_.notify_one();
    }
    if (writer_.joinable()) writer_.join();
    stop_hearing_ = true;
    if (hearer_.joinable()) hearer_.join();
}

void sql_store::announce_commit(sql::db& db) const {
    if (db.kind() == sql::engine::postgres)
        db.cached("SELECT pg_notify(?, ?)").bind(1, channel_).bind(2, voice_).step();
}

// Other servers' commits wake the waiting syncs (this one's are told by the writer). While the
// listening connection is down the waits end at their deadlines; once it is back they are told
// once, for what committed meanwhile.
void sql_store::hear_commits() {
    std::unique_ptr<sql::commit_notifications> ears;
    bool lost = false;
    while (!stop_hearing_) {
        try {
            if (!ears) {
                ears = listen_(channel_);
                if (lost) tell_commit();
            }
            if (ears->wait(250, voice_)) tell_commit();
        } catch (const std::exception&) {
            ears.reset();
            lost = true;
            for (int i = 0; i < 10 && !stop_hearing_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
}

void sql_store::writer_loop() {
    for (;;) {
        std::vector<job> group;
        {
            std::unique_lock lock(queue_mutex_);
            queue_cv_.wait(lock, [&] { return closing_ || !queue_.empty() || !acks_.empty(); });
            // Acknowledgements alone wait a while for a push to carry them (one fsync for both).
            if (queue_.empty() && !closing_)
                queue_cv_.wait_for(lock, tuning::ack_flush_interval, [&] { return closing_ || !queue_.empty(); });
            if (queue_.empty() && acks_.empty()) {
                if (closing_) return;  // everything queued is done
                continue;              // gc wrote the acknowledgements meanwhile
            }
            std::size_t changes = 0;
            while (!queue_.empty() && group.size() < tuning::max_group_jobs &&
                   (group.empty() || changes + queue_.front().cs.changes.size() <= tuning::max_group_changes)) {
                changes += queue_.front().cs.changes.size();
                group.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        commit_group(group);
    }
}

// One transaction for the whole group; a savepoint per change-set, so a change-set that
// fails is undone alone. Answers go out only after COMMIT has returned.
void sql_store::commit_group(std::vector<job>& group) {
    const auto acks = take_acks();
    std::vector<proto::expected<std::vector<proto::change_result>>> answers;
    answers.reserve(group.size());
    auto& db = writer_db_;
    const auto started = std::chrono::steady_clock::now();
    std::int64_t seq_begun = 0;
    try {
        db.begin_write();
        // Read inside the write lock: the admin tool may have moved units (and taken seqs)
        // from another process since the last group.
        seq_ = load_seq(db);
        seq_begun = seq_;
        if (db.kind() == sql::engine::postgres && !relay_) prefetch(group);
    } catch (const std::exception& e) {
        cache_.reset();
        db.rollback();
        metrics_.failed_commits.fetch_add(1, std::memory_order_relaxed);
        for (auto& j : group) j.done(storage_failure(e));
        return;
    }
    for (auto& j : group) {
        const auto seq_before = seq_;
        try {
            db.exec("SAVEPOINT change_set");
            auto results = apply(j.dev, j.cs);
            db.exec("RELEASE change_set");
            answers.emplace_back(std::move(results));
        } catch (const std::exception& e) {
            try {
                db.exec("ROLLBACK TO change_set; RELEASE change_set");
            } catch (...) {
            }
            cache_.reset();  // it may tell what the rollback undid
            seq_ = seq_before;  // the seqs of an undone change-set are handed out again: no gaps
            answers.emplace_back(storage_failure(e));
        }
    }
    try {
        cache_.reset();
        // Acknowledgements are advisory: lost with a failed commit, they only make gc keep
        // more and may make a device re-snapshot once.
        write_acks(db, acks);
        store_seq(db, seq_);
        if (seq_ != seq_begun) announce_commit(db);
        db.commit();
    } catch (const std::exception& e) {
        // A COMMIT whose outcome is unknown (PostgreSQL's connection lost) is answered as
        // retryable like any failure here (sql::error::transient), never as success: the
        // retry is decided by its change ids.
        db.rollback();
        metrics_.failed_commits.fetch_add(1, std::memory_order_relaxed);
        for (auto& j : group) j.done(storage_failure(e));
        return;
    }
    metrics_.commit_seconds.observe(std::chrono::steady_clock::now() - started);
#ifdef FIELDSYNC_STRICT_SQLITE
    // The writer's connection, like a pooled reader's, holds nothing open between groups.
    if (const auto open = db.held_open(); !open.empty()) {
        std::fprintf(stderr, "fieldsync: the writer's connection holds %s after COMMIT\n", open.c_str());
        std::abort();
    }
#endif
    // Waiting syncs read again (watch_commits); a group that only repeated answers or wrote
    // acknowledgements changed no page.
    if (seq_ != seq_begun) tell_commit();
    for (std::size_t i = 0; i < group.size(); ++i) group[i].done(std::move(answers[i]));
}

// What the group will look up, read in one round trip per table (ARCHITECTURE.md, "The store
// on PostgreSQL"): on PostgreSQL every lookup is a round trip, and a group of fifty change-sets
// of fifty new records would otherwise make thousands. Read under the write lock, so nothing
// but this group changes it; each entry answers one lookup and goes, so a second look at the
// same key (a record twice in a group) reads the database, with what the group wrote since.
struct sql_store::write_cache {
    using key = std::pair<std::string, std::string>;
    std::map<key, std::string> decided;  // (device, change id) → the stored answer
    std::set<key> undecided;             // asked, and not in decided
    std::map<key, located_head> heads;   // (collection, id)
    std::set<key> headless;              // asked: neither a head nor history
    std::map<std::string, std::string> paths;  // unit id → path

    // True when the cache knows: `stored` is the answer, or "" when there is none.
    bool take_decided(const std::string& device_id, const std::string& change_id, std::string& stored) {
        auto k = std::make_pair(device_id, change_id);
        if (auto it = decided.find(k); it != decided.end()) {
            stored = std::move(it->second);
            decided.erase(it);
            return true;
        }
        stored.clear();
        return undecided.erase(k) > 0;
    }
};

namespace {

// A key the cache can ask for exactly: valid UTF-8 (nlohmann's strict dump checks it) and no
// NUL, which PostgreSQL's jsonb refuses. Others are looked up one by one.
bool askable(const std::string& s) { return s.find('\0') == std::string::npos; }

}  // namespace

void sql_store::prefetch(const std::vector<job>& group) {
    auto c = std::make_shared<write_cache>();
    json answers = json::array(), records = json::array();
    for (const auto& j : group) {
        for (const auto& e : j.cs.changes) {
            if (askable(j.dev.id) && askable(e.c.change_id)) {
                answers.push_back({{"d", j.dev.id}, {"c", e.c.change_id}});
                c->undecided.emplace(j.dev.id, e.c.change_id);
            }
            if (!e.rejected && askable(e.c.collection) && askable(e.c.id)) {
                records.push_back({{"c", e.c.collection}, {"i", e.c.id}});
                c->headless.emplace(e.c.collection, e.c.id);
            }
        }
    }
    std::string answers_text, records_text;
    try {
        answers_text = answers.dump();
        records_text = records.dump();
    } catch (const json::exception&) {
        return;  // a key that is not UTF-8: this group looks everything up one by one
    }
    auto& db = writer_db_;
    {
        auto s = db.cached(
            "SELECT d.device_id, d.change_id, d.result FROM decided d JOIN jsonb_to_recordset(?::jsonb) AS k(d text, c text) "
            "ON d.device_id = k.d COLLATE \"C\" AND d.change_id = k.c COLLATE \"C\"");
        s.bind(1, answers_text);
        while (s.step()) {
            auto k = std::make_pair(s.text(0), s.text(1));
            c->undecided.erase(k);
            c->decided[std::move(k)] = s.text(2);
        }
    }
    {
        auto s = db.cached(
            "SELECT h.collection, h.id, h.version, h.deleted, h.data, h.hlc, h.writer, h.path FROM heads h "
            "JOIN jsonb_to_recordset(?::jsonb) AS k(c text, i text) ON h.collection = k.c COLLATE \"C\" AND h.id = k.i COLLATE \"C\"");
        s.bind(1, records_text);
        while (s.step()) {
            auto k = std::make_pair(s.text(0), s.text(1));
            if (c->heads.count(k)) continue;  // asked twice
            located_head at;
            proto::head_state h;
            h.version = s.int64(2);
            h.state.deleted = s.int64(3) != 0;
            h.state.data = parse_stored(s.text(4));
            h.stamp = proto::hlc::parse(s.text(5)).value_or(proto::hlc{});
            h.writer = s.text(6);
            at.path = s.text(7);
            at.head = std::move(h);
            c->headless.erase(k);
            c->heads.emplace(std::move(k), std::move(at));
        }
    }
    if (!c->headless.empty()) {
        // No head but history: gc purged a tombstone; locate_head rebuilds it from history.
        json left = json::array();
        for (const auto& [coll, id] : c->headless) left.push_back({{"c", coll}, {"i", id}});
        auto s = db.cached(
            "SELECT DISTINCT h.collection, h.id FROM history h JOIN jsonb_to_recordset(?::jsonb) AS k(c text, i text) "
            "ON h.collection = k.c COLLATE \"C\" AND h.id = k.i COLLATE \"C\"");
        s.bind(1, left.dump());
        while (s.step()) c->headless.erase(std::make_pair(s.text(0), s.text(1)));
    }
    cache_ = std::move(c);
}

std::string sql_store::unit_path(const std::string& unit_id) {
    if (!cache_) return path_of(writer_db_, unit_id);
    auto it = cache_->paths.find(unit_id);
    if (it == cache_->paths.end()) it = cache_->paths.emplace(unit_id, path_of(writer_db_, unit_id)).first;
    return it->second;
}

std::vector<proto::change_result> sql_store::apply(const device& dev, const proto::change_set& cs) {
    std::vector<proto::change_result> out;
    out.reserve(cs.changes.size());
    const auto now_ms = wall_();
    for (const auto& entry : cs.changes) {
        if (auto earlier = decided(dev.id, entry.c.change_id)) {
            out.push_back(std::move(*earlier));
            continue;
        }
        if (entry.rejected) {
            // Refused by the decoder: deterministic, so not recorded; a retry is refused alike.
            // The answer carries the head version, as every rejected result does.
            out.push_back(store_util::rejected_answer(entry.c.change_id, *entry.rejected,
                                                      visible_head_version(dev, entry.c)));
            continue;
        }
        auto r = relay_ ? relay_one(dev, entry.c, cs.batch_id, now_ms) : decide_one(dev, entry.c, now_ms);
        // Queued is not an answer: the upstream's answer is recorded when it comes (relay.cpp).
        if (r.status == proto::change_status::queued) {
            out.push_back(std::move(r));
            continue;
        }
        // seq: the feed's position after this change. A cursor above it was issued after the
        // answer existed, which is what lets gc forget the answer (retention.cpp).
        auto s = writer_db_.cached(
            "INSERT INTO decided(device_id, change_id, batch_id, result, decided_ms, seq) VALUES (?, ?, ?, ?, ?, ?)");
        s.bind(1, dev.id).bind(2, r.change_id).bind(3, cs.batch_id).bind(4, proto::encode_json(r)).bind(5, now_ms);
        s.bind(6, seq_);
        s.run_deferred();
        out.push_back(std::move(r));
    }
    return out;
}

sql_store::located_head sql_store::locate_head(const std::string& collection, const std::string& id) {
    if (cache_) {
        auto key = std::make_pair(collection, id);
        if (auto it = cache_->heads.find(key); it != cache_->heads.end()) {
            located_head at = std::move(it->second);
            cache_->heads.erase(it);
            return at;
        }
        if (cache_->headless.erase(key)) return located_head{};
    }
    located_head at;
    {
        auto s = writer_db_.cached(
            "SELECT version, deleted, data, hlc, writer, path FROM heads WHERE collection = ? AND id = ?");
        s.bind(1, collection).bind(2, id);
        if (s.step()) {
            proto::head_state h;
            h.version = s.int64(0);
            h.state.deleted = s.int64(1) != 0;
            h.state.data = parse_stored(s.text(2));
            h.stamp = proto::hlc::parse(s.text(3)).value_or(proto::hlc{});
            h.writer = s.text(4);
            at.path = s.text(5);
            at.head = std::move(h);
            return at;
        }
    }
    // No head, but history: gc purged the record's tombstone. A write is decided against
    // that tombstone exactly as before the purge (SPEC.md, "Retention and re-snapshot").
    at.head = purged_head(writer_db_, collection, id, at.purged_unit);
    at.purged = at.head.has_value();
    if (at.purged) at.path = path_of(writer_db_, at.purged_unit);
    return at;
}

std::int64_t sql_store::visible_head_version(const device& dev, const proto::change& c) {
    if (!proto::valid_id(c.id) || !schema_.find(c.collection)) return 0;
    const auto at = locate_head(c.collection, c.id);
    // Outside the device's scope a record is not revealed, as decide_one's out_of_scope is not.
    return at.head && scope::of(dev).contains(at.path) ? at.head->version : 0;
}

proto::hlc sql_store::stamp_of(const proto::change& c) {
    // A client clock too far ahead would win every lww collision until real time caught
    // up: such a change, like one without a clock, gets the server's.
    if (c.stamp && c.stamp->wall_ms <= clock_.wall_ms() + proto::tuning::max_hlc_ahead_ms) {
        clock_.observe(*c.stamp);
        return *c.stamp;
    }
    return clock_.now();
}

std::string sql_store::write_conflict(const device& dev, const proto::change& c, const located_head& at,
                                         const std::optional<proto::version_state>& base,
                                         const proto::merge_outcome& o, const proto::hlc& stamp,
                                         const std::string& path, std::int64_t now_ms) {
    const auto& head = *at.head;
    std::string id = random_uuid();
    json base_data = nullptr;
    if (c.base_version == head.version)
        base_data = head.state.data;
    else if (base && !base->deleted)
        base_data = base->data;
    auto s = writer_db_.cached(
        "INSERT INTO conflicts(id, collection, record_id, unit_id, status, base_version, head_version, "
        "base, head, head_deleted, incoming, incoming_deleted, fields, device_id, change_id, hlc, "
        "created_ms, path) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, id).bind(2, c.collection).bind(3, c.id).bind(4, c.unit_id).bind(5, c.base_version);
    s.bind(6, head.version).bind(7, dump(base_data));
    s.bind(8, dump(head.state.data)).bind(9, head.state.deleted ? 1 : 0);
    s.bind(10, dump(o.incoming.data)).bind(11, o.incoming.deleted ? 1 : 0);
    s.bind(12, json(o.collisions).dump()).bind(13, dev.id).bind(14, c.change_id);
    s.bind(15, stamp.to_string()).bind(16, now_ms);
    // Routed to the deepest unit that holds both writers' records (the reviewers there see it).
    s.bind(17, common_path(at.path, path));
    s.run_deferred();
    // The held side's photos: the reviewer compares them before any version names them.
    write_blob_refs(writer_db_, c.collection, c.id, o.incoming.data);
    return id;
}

std::optional<proto::change_result> sql_store::decided(const std::string& device_id, const std::string& change_id) {
    std::string stored;
    if (cache_ && cache_->take_decided(device_id, change_id, stored)) {
        if (stored.empty()) return std::nullopt;
    } else {
        auto s = writer_db_.cached("SELECT result FROM decided WHERE device_id = ? AND change_id = ?");
        s.bind(1, device_id).bind(2, change_id);
        if (!s.step()) return std::nullopt;
        stored = s.text(0);
    }
    auto r = proto::decode_change_result(json::parse(stored));
    if (!r) throw std::runtime_error("a stored answer is damaged: " + r.err().message);
    return std::move(r).value();
}

proto::change_result sql_store::decide_one(const device& dev, const proto::change& c, std::int64_t now_ms) {
    auto rejected = [&](errc code, std::string message, std::int64_t version) {
        return store_util::rejected_answer(c.change_id, error{code, std::move(message)}, version);
    };
    proto::change_result r;
    r.change_id = c.change_id;

    const auto* coll = schema_.find(c.collection);
    if (!coll) return rejected(errc::unknown_collection, "unknown collection '" + c.collection + "'", 0);

    // The head, and the base version when the change was edited from an older one.
    const auto at = locate_head(c.collection, c.id);
    const auto& head = at.head;
    const auto& head_path = at.path;

    // Both the record where it is and where it goes must lie in the device's scope. The
    // answer is the same for both, so a device learns nothing of records outside its scope,
    // not even that an id is taken.
    const std::string path = unit_path(c.unit_id);
    const auto sc = scope::of(dev);
    if (!sc.contains(path) || (head && !sc.contains(head_path)))
        return rejected(errc::out_of_scope, "this record or its unit '" + c.unit_id + "' is outside the device's scope",
                        0);
    std::optional<proto::version_state> base;
    if (head && c.base_version > 0 && c.base_version < head->version) {
        auto s = writer_db_.cached(
            "SELECT deleted, data FROM history WHERE collection = ? AND id = ? AND version = ?");
        s.bind(1, c.collection).bind(2, c.id).bind(3, c.base_version);
        if (s.step()) base = proto::version_state{s.int64(0) != 0, parse_stored(s.text(1))};
    }

    const proto::hlc stamp = stamp_of(c);

    proto::incoming_change in;
    in.op = c.op;
    in.base_version = c.base_version;
    in.data = &c.data;
    in.stamp = stamp;
    in.writer = dev.id;
    auto o = proto::decide(head, base, in, coll->policy);
    const std::int64_t head_version = head ? head->version : 0;
    if (at.purged && o.kind != proto::merge_kind::fast_forward && o.kind != proto::merge_kind::merged) {
        // Nothing is written over the purged tombstone, so it comes back as the head, at a new
        // seq: a conflict against it can be resolved, and devices that still hold the record
        // receive the delete again. (A write puts its own version there instead.)
        writer_db_.cached(
            "INSERT INTO heads(collection, id, unit_id, version, deleted, data, seq, hlc, writer, updated_ms, path) "
            "VALUES (?, ?, ?, ?, 1, NULL, ?, ?, ?, ?, ?)")
            .bind(1, c.collection)
            .bind(2, c.id)
            .bind(3, at.purged_unit)
            .bind(4, head->version)
            .bind(5, ++seq_)
            .bind(6, head->stamp.to_string())
            .bind(7, head->writer)
            .bind(8, now_ms)
            .bind(9, head_path)
            .run_deferred();
    }

    if (o.kind == proto::merge_kind::rejected) return rejected(o.err->code, o.err->message, head_version);
    if (!o.incoming.deleted) {
        if (auto bad = schema_.validate(*coll, o.incoming.data))
            return rejected(bad->code, bad->message, head_version);
    }

    switch (o.kind) {
        case proto::merge_kind::fast_forward:
        case proto::merge_kind::merged: {
            const auto version = head_version + 1;
            const bool fast = o.kind == proto::merge_kind::fast_forward;
            version_row v;
            v.collection = c.collection;
            v.id = c.id;
            v.unit_id = c.unit_id;
            v.path = path;
            v.version = version;
            v.deleted = o.result.deleted;
            if (!o.result.deleted) v.data = o.result.data.dump();
            v.writer = dev.id;
            v.change_id = c.change_id;
            const auto hlc = stamp.to_string();
            v.hlc = hlc;
            v.server_ms = now_ms;
            v.how = fast ? "applied" : "merged";
            if (!o.lost.empty()) v.lost = o.lost.dump();
            v.seq = ++seq_;
            if (head) v.old_path = head_path;
            write_version(writer_db_, v);
            r.status = fast ? proto::change_status::applied : proto::change_status::merged;
            r.version = version;
            return r;
        }
        case proto::merge_kind::unchanged:
            r.status = proto::change_status::merged;
            r.version = head_version;
            return r;
        case proto::merge_kind::conflict: {
            const auto id = write_conflict(dev, c, at, base, o, stamp, path, now_ms);
            r.status = proto::change_status::conflict;
            r.version = head_version;
            r.conflict_id = id;
            return r;
        }
        case proto::merge_kind::rejected: break;
    }
    return rejected(errc::internal, "unreachable merge outcome", head_version);
}

}  // namespace fieldsync::server
