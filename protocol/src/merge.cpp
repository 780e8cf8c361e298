#include <fieldsync/protocol/merge.hpp>

namespace fieldsync::protocol {
namespace {

// RFC 6901 escaping of one reference token.
std::string pointer_token(const std::string& key) {
    std::string out;
    for (const char c : key) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out += c;
    }
    return out;
}

void merge3_into(const json* base, const json& head, const json& incoming, prefer on_collision,
                 const std::string& path, json& out, std::vector<std::string>& collisions) {
    // Keys of both sides, head's order first; a key missing from a side is "absent", a value
    // of its own that differs from every JSON value.
    out = json::object();
    auto field = [&](const std::string& key) {
        const json* b = nullptr;
        if (base && base->is_object()) {
            const auto it = base->find(key);
            if (it != base->end()) b = &*it;
        }
        const auto hi = head.find(key);
        const auto ii = incoming.find(key);
        const json* h = hi == head.end() ? nullptr : &*hi;
        const json* i = ii == incoming.end() ? nullptr : &*ii;
        auto same = [](const json* x, const json* y) { return (!x && !y) || (x && y && *x == *y); };

        const json* take = nullptr;
        if (same(h, i))
            take = h;
        else if (same(h, b))
            take = i;  // only incoming changed it
        else if (same(i, b))
            take = h;  // only head changed it
        else if (h && i && h->is_object() && i->is_object() && (!b || b->is_object())) {
            // Both changed a nested object: merge it by field too.
            json nested;
            merge3_into(b, *h, *i, on_collision, path + "/" + pointer_token(key), nested, collisions);
            out[key] = std::move(nested);
            return;
        } else {
            collisions.push_back(path + "/" + pointer_token(key));
            take = on_collision == prefer::head ? h : i;
        }
        if (take) out[key] = *take;
    };
    for (const auto& [key, _] : head.items()) field(key);
    for (const auto& [key, _] : incoming.items())
        if (!head.contains(key)) field(key);
    // Keys only the base had were removed by both sides: nothing to do.
}

merge_outcome reject(errc code, std::string message) {
    merge_outcome o;
    o.kind = merge_kind::rejected;
    o.err = error{code, std::move(message)};
    return o;
}

bool writer_wins(const incoming_change& in, const head_state& head) {
    if (in.stamp != head.stamp) return in.stamp > head.stamp;
    return in.writer > head.writer;  // equal clocks: a fixed, arbitrary but shared order
}

}  // namespace

change_status to_status(merge_kind k) noexcept {
    switch (k) {
        case merge_kind::fast_forward: return change_status::applied;
        case merge_kind::merged:
        case merge_kind::unchanged: return change_status::merged;
        case merge_kind::conflict: return change_status::conflict;
        case merge_kind::rejected: return change_status::rejected;
    }
    return change_status::rejected;
}

json merge3(const json& base, const json& head, const json& incoming, prefer on_collision,
            std::vector<std::string>& collisions) {
    json out;
    merge3_into(&base, head, incoming, on_collision, "", out, collisions);
    return out;
}

merge_outcome decide(const std::optional<head_state>& head, const std::optional<version_state>& base_in,
                     const incoming_change& in, merge_policy policy) {
    const std::int64_t head_version = head ? head->version : 0;
    if (in.base_version > head_version)
        return reject(errc::base_ahead, "base_version " + std::to_string(in.base_version) +
                                            " is newer than the server's version " + std::to_string(head_version));

    // The version the change was edited from.
    version_state base;
    if (in.base_version == 0) {
        base = {false, json::object()};
    } else if (in.base_version == head_version) {
        base = head->state;
    } else if (base_in) {
        base = *base_in;
    } else {
        return reject(errc::unknown_base, "version " + std::to_string(in.base_version) + " is not in history");
    }

    // The incoming record made whole.
    merge_outcome o;
    switch (in.op) {
        case op_kind::put: o.incoming = {false, in.data ? *in.data : json::object()}; break;
        case op_kind::del: o.incoming = {true, nullptr}; break;
        case op_kind::patch:
            if (base.deleted) return reject(errc::unknown_base, "a patch cannot apply to a deleted version");
            o.incoming = {false, base.data};
            if (in.data) o.incoming.data.merge_patch(*in.data);
            break;
    }

    // Rule 1: a new record, or an edit of the head itself.
    if (!head || in.base_version == head_version) {
        if (head && head->state.deleted && o.incoming.deleted) {
            o.kind = merge_kind::unchanged;  // deleting what is already deleted
            o.result = head->state;
            return o;
        }
        o.kind = merge_kind::fast_forward;
        o.result = o.incoming;
        return o;
    }

    // Concurrent: head moved on since base (or two devices created the same id).
    const auto& h = head->state;
    const auto& i = o.incoming;
    auto collide_whole = [&]() {
        // Rule 4: delete against a changed head, or an edit against a deleted head.
        o.collisions.push_back("");
        if (policy == merge_policy::lww) {
            const bool incoming_wins = writer_wins(in, *head);
            o.result = incoming_wins ? i : h;
            o.lost = json::object();
            o.lost[""] = incoming_wins ? (h.deleted ? json("(deleted)") : h.data)
                                       : (i.deleted ? json("(deleted)") : i.data);
            // A new version even when the head wins, so the losing side stays in history.
            o.kind = merge_kind::merged;
        } else {
            o.kind = merge_kind::conflict;
            o.result = h;
        }
        return o;
    };

    if (i.deleted) {
        if (h.deleted) {
            o.kind = merge_kind::unchanged;
            o.result = h;
            return o;
        }
        if (!base.deleted && in.base_version != 0 && h.data == base.data) {
            o.kind = merge_kind::merged;  // the head's content never changed since base
            o.result = i;
            return o;
        }
        return collide_whole();
    }
    if (h.deleted) {
        if (base.deleted) {  // edited a tombstone that is still the same tombstone
            o.kind = merge_kind::merged;
            o.result = i;
            return o;
        }
        return collide_whole();
    }

    const json empty = json::object();
    const json& base_data = base.deleted ? empty : base.data;
    const bool incoming_wins = policy == merge_policy::lww && writer_wins(in, *head);
    o.result.deleted = false;
    o.result.data = merge3(base_data, h.data, i.data, incoming_wins ? prefer::incoming : prefer::head, o.collisions);

    if (!o.collisions.empty()) {
        if (policy == merge_policy::review) {
            o.kind = merge_kind::conflict;
            o.result = h;
            return o;
        }
        // lww: record what the losing side had in each colliding field.
        const json& loser = incoming_wins ? h.data : i.data;
        for (const auto& p : o.collisions) {
            const json::json_pointer ptr(p);
            o.lost[p] = loser.contains(ptr) ? loser.at(ptr) : json("(absent)");
        }
    }
    // lww: a collision always writes a version, so that history keeps the values that lost.
    o.kind = o.result.data == h.data && o.lost.empty() ? merge_kind::unchanged : merge_kind::merged;
    return o;
}

}  // namespace fieldsync::protocol
