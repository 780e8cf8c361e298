// Conflict review: a reviewer's resolution becomes a new version of the record (how =
// "resolved") and closes the conflict (store.hpp, `resolve`; SPEC.md, "Resolving a conflict");
// a preview computes the same and writes nothing (SPEC.md, "Previewing a resolution").

#include "store/sql_store.hpp"

#include <algorithm>
#include <set>

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;

namespace {

constexpr std::pair<resolution::choice, std::string_view> k_choices[] = {
    {resolution::choice::keep_head, "keep_head"}, {resolution::choice::take_incoming, "take_incoming"},
    {resolution::choice::pick, "pick"},           {resolution::choice::edit, "edit"},
    {resolution::choice::dismiss, "dismiss"},
};

[[noreturn]] void refuse(errc code, std::string message) {
    throw error{code, std::move(message)};
}

// Sets (or, when the value is absent on `from`, removes) the field at `pointer` of `into`.
void copy_field(const json& from, const std::string& pointer, json& into) {
    const json::json_pointer ptr(pointer);
    if (from.contains(ptr)) {
        into[ptr] = from.at(ptr);
        return;
    }
    if (!into.contains(ptr)) return;
    into.at(ptr.parent_pointer()).erase(ptr.back());
}

// The JSON Pointer of a top-level field (RFC 6901: '~' is written "~0", '/' "~1").
std::string pointer_to(const std::string& key) {
    std::string out = "/";
    for (const char ch : key) {
        if (ch == '~') out += "~0";
        else if (ch == '/') out += "~1";
        else out += ch;
    }
    return out;
}

}  // namespace

std::optional<resolution::choice> parse_choice(std::string_view s) noexcept {
    for (const auto& [c, name] : k_choices)
        if (name == s) return c;
    return std::nullopt;
}

std::string_view choice_name(resolution::choice c) noexcept {
    for (const auto& [k, name] : k_choices)
        if (k == c) return name;
    return "keep_head";
}

// What a decision makes of a conflict: everything resolve checks and computes before it
// writes. preview runs the same on a read snapshot and writes nothing, so what a reviewer
// is shown is what resolving would write.
struct sql_store::resolution_plan {
    conflict_view c;
    proto::head_state head;
    std::string unit_id, path;          // the head's unit and path: resolving moves nothing
    json decision;                      // {"choice", "note"?, "picks"?}
    proto::version_state result;        // dismiss: the head as it is
    json lost = json::object();
};

sql_store::resolution_plan sql_store::plan_resolution(sql::db& db, const device& reviewer,
                                                            const std::string& conflict_id, const resolution& r) const {
    if (reviewer.role == device_role::field) refuse(errc::forbidden, "only reviewer and admin devices resolve conflicts");
    const auto sc = scope::of(reviewer);
    resolution_plan plan;
    auto& c = plan.c;
    auto s = db.cached(
        "SELECT id, collection, record_id, unit_id, status, base_version, head_version, base, head, "
        "head_deleted, incoming, incoming_deleted, fields, device_id, change_id, hlc, created_ms, path, "
        "closed_by, closed_ms, resolution, seq FROM conflicts WHERE id = ?");
    s.bind(1, conflict_id);
    if (!s.step() || !sc.contains(s.text(17))) refuse(errc::not_found, "no conflict '" + conflict_id + "'");
    c = read_conflict(s);
    const auto conflict_seq = s.int64(21);
    s.reset();
    if (c.status != "open") refuse(errc::conflict_closed, "the conflict is already " + c.status);

    // Conflicts of one record are decided in the order they arose: a later one was
    // raised against a head an earlier resolution may still change.
    auto older = db.cached(
        "SELECT id FROM conflicts WHERE collection = ? AND record_id = ? AND status = 'open' AND seq < ? "
        "ORDER BY seq LIMIT 1");
    older.bind(1, c.collection).bind(2, c.record_id).bind(3, conflict_seq);
    if (older.step()) refuse(errc::bad_request, "resolve conflict '" + older.text(0) + "' of this record first");
    older.reset();

    auto& head = plan.head;
    {
        auto h = db.cached("SELECT version, deleted, data, unit_id, path FROM heads WHERE collection = ? AND id = ?");
        h.bind(1, c.collection).bind(2, c.record_id);
        if (!h.step()) refuse(errc::storage_error, "the conflict's record has no head");
        head.version = h.int64(0);
        head.state = {h.int64(1) != 0, parse_stored(h.text(2))};
        plan.unit_id = h.text(3);
        plan.path = h.text(4);
    }
    if (head.version != r.head_version)
        refuse(errc::stale, "the record is at version " + std::to_string(head.version) + ", not " +
                                std::to_string(r.head_version) + ": show the conflict again and decide on it");

    plan.decision = {{"choice", choice_name(r.how)}};
    if (!r.note.empty()) plan.decision["note"] = r.note;
    if (r.how == resolution::choice::dismiss) {
        plan.result = head.state;
        return plan;
    }

    // The resolved record.
    const proto::version_state incoming{c.incoming_deleted, c.incoming};
    auto& result = plan.result;
    auto& lost = plan.lost;
    if (r.how == resolution::choice::edit) {
        result = {r.edited_deleted, r.edited_deleted ? json(nullptr) : r.edited};
        if (!result.deleted && !result.data.is_object()) refuse(errc::bad_request, "an edited record must be a JSON object");
    } else if (head.state.deleted || incoming.deleted) {
        // A delete against an edit collides as a whole: one side or the other.
        if (r.how == resolution::choice::pick)
            refuse(errc::bad_request, "a delete collides with the whole record: choose keep_head, take_incoming or edit");
        const bool take = r.how == resolution::choice::take_incoming;
        result = take ? incoming : head.state;
        const auto& loser = take ? head.state : incoming;
        lost[""] = loser.deleted ? json("(deleted)") : loser.data;
    } else {
        const json base = c.base.is_object() ? c.base : json::object();
        std::vector<std::string> collisions;
        const auto side = r.how == resolution::choice::take_incoming ? proto::prefer::incoming : proto::prefer::head;
        result = {false, proto::merge3(base, head.state.data, incoming.data, side, collisions)};
        if (r.how == resolution::choice::pick) {
            const std::set<std::string> colliding(collisions.begin(), collisions.end());
            for (const auto& [pointer, pick] : r.picks) {
                if (!colliding.count(pointer))
                    refuse(errc::bad_request, "'" + pointer + "' is not a colliding field of this conflict");
                if (pick != "head" && pick != "incoming")
                    refuse(errc::bad_request, "a pick is \"head\" or \"incoming\", not '" + pick + "'");
            }
            for (const auto& pointer : collisions) {
                const auto it = r.picks.find(pointer);
                if (it == r.picks.end()) refuse(errc::bad_request, "no pick for colliding field '" + pointer + "'");
                if (it->second == "incoming") copy_field(incoming.data, pointer, result.data);
            }
            plan.decision["picks"] = r.picks;
        }
        for (const auto& pointer : collisions) {
            const json::json_pointer ptr(pointer);
            const bool head_won = result.data.contains(ptr)
                                      ? (head.state.data.contains(ptr) && head.state.data.at(ptr) == result.data.at(ptr))
                                      : !head.state.data.contains(ptr);
            const json& loser = head_won ? incoming.data : head.state.data;
            lost[pointer] = loser.contains(ptr) ? loser.at(ptr) : json("(absent)");
        }
    }
    if (!result.deleted) {
        const auto* coll = schema_.find(c.collection);
        if (!coll) refuse(errc::unknown_collection, "the collection '" + c.collection + "' left the schema");
        if (auto bad = schema_.validate(*coll, result.data)) refuse(errc::schema_violation, bad->message);
    }
    return plan;
}

proto::expected<conflict_view> sql_store::resolve(const device& reviewer, const std::string& conflict_id,
                                                     const resolution& r) {
    try {
        return admin_write([&](sql::db& db) -> conflict_view {
            auto plan = plan_resolution(db, reviewer, conflict_id, r);
            auto& c = plan.c;
            const auto now = wall_();
            // Closing is the same for both ends: who, when, and what was decided.
            auto close = [&](const char* status) {
                db.cached("UPDATE conflicts SET status = ?, closed_by = ?, closed_ms = ?, resolution = ? WHERE id = ?")
                    .bind(1, status)
                    .bind(2, reviewer.id)
                    .bind(3, now)
                    .bind(4, plan.decision.dump())
                    .bind(5, c.id)
                    .run();
                c.status = status;
                c.closed_by = reviewer.id;
                c.closed_ms = now;
                c.resolution = plan.decision;
            };
            if (r.how == resolution::choice::dismiss) {
                close("dismissed");
                return c;
            }

            const auto& result = plan.result;
            const auto version = plan.head.version + 1;
            const auto seq = load_seq(db) + 1;
            const auto stamp = clock_.now().to_string();
            version_row v;
            v.collection = c.collection;
            v.id = c.record_id;
            v.unit_id = plan.unit_id;
            v.path = plan.path;  // resolving moves nothing
            v.old_path = plan.path;
            v.version = version;
            v.deleted = result.deleted;
            if (!result.deleted) v.data = result.data.dump();
            v.writer = reviewer.id;
            const auto change_id = "resolve:" + c.id;
            v.change_id = change_id;
            v.hlc = stamp;
            v.server_ms = now;
            v.how = "resolved";
            v.lost = plan.lost.dump();
            v.seq = seq;
            write_version(db, v);
            store_seq(db, seq);
            plan.decision["version"] = version;
            close("resolved");
            c.current_version = version;
            c.current_deleted = result.deleted;
            c.current = result.deleted ? json(nullptr) : result.data;
            return c;
        });
    } catch (const error& e) {
        return e;
    }
}

proto::expected<resolution_preview> sql_store::preview(const device& reviewer, const std::string& conflict_id,
                                                          const resolution& r) {
    // One read snapshot, no write lock: the plan resolve would write, computed and dropped.
    auto out = read([&](sql::db& db) -> proto::expected<resolution_preview> {
        try {
            const auto plan = plan_resolution(db, reviewer, conflict_id, r);
            resolution_preview p;
            p.deleted = plan.result.deleted;
            p.record = p.deleted ? json(nullptr) : plan.result.data;
            p.head_version = plan.head.version;
            // Top-level fields whose value the decision changes (present on one side only counts).
            const json none = json::object();
            const json& before = plan.head.state.deleted || !plan.head.state.data.is_object() ? none : plan.head.state.data;
            const json& after = p.deleted || !p.record.is_object() ? none : p.record;
            std::set<std::string> keys;
            for (const auto& [k, v] : before.items())
                if (!after.contains(k) || after.at(k) != v) keys.insert(k);
            for (const auto& [k, v] : after.items())
                if (!before.contains(k)) keys.insert(k);
            for (const auto& k : keys) p.changed.push_back(pointer_to(k));
            std::sort(p.changed.begin(), p.changed.end());
            return p;
        } catch (const error& e) {
            return e;
        }
    });
    if (!out) return out.err();
    return std::move(*out);
}

}  // namespace fieldsync::server
