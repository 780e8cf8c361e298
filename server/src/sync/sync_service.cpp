#include "sync/sync_service.hpp"

#include <fieldsync/protocol/merge_patch.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <algorithm>

namespace fieldsync::server {

namespace proto = fieldsync::protocol;
using proto::errc;

namespace {

// SPEC.md, "Pulled field diffs": a head the device holds an older version of travels as a
// merge patch against that version, when the patch can say it (no null in the head) and says
// it in fewer bytes than the whole record.
void diff_against(proto::pulled_change& head, const std::optional<held_version>& held) {
    if (!held || held->deleted || head.deleted || held->version >= head.version || !head.data.is_object() ||
        !held->data.is_object() || proto::contains_null(head.data))
        return;
    auto diff = proto::merge_diff(held->data, head.data);
    if (diff.dump().size() >= head.data.dump().size()) return;
    head.diff_base = held->version;
    head.data = std::move(diff);
}

}  // namespace

std::optional<cursor_position> parse_cursor(std::string_view text, std::int64_t epoch) {
    if (text.empty()) return cursor_position{0, false};
    std::int64_t cursor_epoch = 0;
    if (const auto dot = text.find('.'); dot != std::string_view::npos) {
        const auto e = parse_decimal(text.substr(0, dot));
        if (!e || *e == 0) return std::nullopt;  // epoch 0 is written without a prefix
        cursor_epoch = *e;
        text.remove_prefix(dot + 1);
    }
    const auto seq = parse_decimal(text);
    if (!seq) return std::nullopt;
    // SPEC.md, "The feed and the cursor": a cursor of the server's form that names no position
    // of the device's feed as it is now starts the device over. One from before the device
    // moved to another unit indexes a feed of another scope; one of an epoch the device has
    // not reached was issued by this store before it was restored from an older backup (a
    // seq past the feed's end is the same case, found by the store: retention.cpp).
    if (cursor_epoch != epoch) return cursor_position{0, true};
    return cursor_position{*seq, false};
}

std::string format_cursor(std::int64_t epoch, std::int64_t seq) {
    return epoch == 0 ? std::to_string(seq) : std::to_string(epoch) + "." + std::to_string(seq);
}

std::string describe(const proto::server_versions& v) {
    return "this server speaks protocols " + std::to_string(proto::oldest_protocol_version) + " to " +
           std::to_string(v.protocol) + " and serves clients of protocol " + std::to_string(v.min_protocol) +
           " or newer with schema " + std::to_string(v.min_schema) + " or newer (its schema is version " +
           std::to_string(v.schema) + ")";
}

proto::server_versions sync_service::versions() const {
    const auto& sch = store_.schema();
    return proto::server_versions{proto::protocol_version, min_client_protocol_, sch.version(),
                                  sch.min_client_version()};
}

std::variant<sync_plan, sync_refusal> sync_service::plan(const device& dev, const proto::change_set& cs,
                                                          const proto::client_versions& client,
                                                          proto::client_standing standing) const {
    sync_plan p;
    p.dev = dev;
    const auto pos = parse_cursor(cs.cursor, dev.scope_epoch);
    if (!pos)
        return sync_refusal{{errc::bad_cursor, "the cursor was not issued by this server; pull again from \"\""}, {}};
    p.after_seq = pos->after_seq;
    if (!pos->restarted) p.sent_cursor = cs.cursor;
    p.reset = pos->restarted;
    p.limit = cs.limit > 0 ? cs.limit : proto::tuning::default_pull_limit;
    // From the beginning (or after a move) the device holds nothing the feed could diff against.
    p.diffs = cs.diffs && !pos->restarted && pos->after_seq > 0;
    p.held = cs.held;
    // A push is never held back; a pull waits only if its answer would be empty (router.cpp).
    if (cs.changes.empty())
        p.wait = std::chrono::milliseconds(std::min<std::int64_t>(cs.wait_ms, max_wait_.count()));
    // A client that named no protocol predates the notice: only a refusal would reach it.
    if ((standing == proto::client_standing::older && client.named) || standing == proto::client_standing::too_old)
        p.upgrade = proto::upgrade_notice{standing == proto::client_standing::too_old, versions()};
    // A client below the minimum only syncs to push: with nothing to push, it is told.
    if (cs.changes.empty() && p.upgrade && p.upgrade->required)
        return sync_refusal{{errc::client_too_old, "this client (protocol " + std::to_string(client.protocol) +
                                                       ", schema " + std::to_string(client.schema) +
                                                       ") must be upgraded before it pulls; " +
                                                       describe(p.upgrade->server)},
                            p.upgrade->server};
    return p;
}

bool tells_nothing(const proto::sync_response& r) {
    return r.results.empty() && r.changes.empty() && r.dropped.empty() && !r.more && !r.reset &&
           r.resolutions.empty() && !(r.upgrade && r.upgrade->required);
}

proto::expected<proto::sync_response> sync_service::respond(const sync_plan& plan,
                                                            std::vector<proto::change_result> results) const {
    proto::sync_response out;
    out.results = std::move(results);
    out.upgrade = plan.upgrade;
    if (plan.upgrade && plan.upgrade->required) {
        // Below the minimum: the push is answered, the page stays empty and the cursor as sent.
        out.cursor = plan.sent_cursor.value_or(std::string());
        out.server_hlc = store_.now_hlc();
        return out;
    }
    // Outcomes before the page: a resolution read here wrote its version before the page is
    // read, so the version reaches the device in this sync (this page or a later one).
    auto decided = store_.held_outcomes(plan.dev, plan.held);
    if (!decided) return decided.err();
    out.resolutions = std::move(*decided);
    auto page = store_.device_pull(plan.dev, plan.after_seq, plan.limit);
    if (!page) return page.err();
    auto p = plan;
    if (page->restarted) {
        // The cursor lies behind what gc purged or past the feed's end: the page starts over,
        // as after a move (SPEC.md, "Retention and re-snapshot").
        p.after_seq = 0;
        p.sent_cursor.reset();
        p.reset = true;
        p.diffs = false;
    }
    if (p.diffs) {
        auto held = store_.versions_at(page->changes, p.after_seq);
        if (!held) return held.err();
        for (std::size_t i = 0; i < page->changes.size(); ++i) {
            proto::materialize(page->changes[i]);  // a diff is made of trees
            diff_against(page->changes[i], (*held)[i]);
        }
    }
    out.changes = std::move(page->changes);
    // An empty page hands back the cursor as sent (SPEC.md, "The feed and the cursor"), so a
    // client that is up to date keeps exactly what it stored; a page of drops alone still
    // moves the cursor, or the client would be sent the same drops forever.
    const bool empty = out.changes.empty() && page->dropped.empty();
    out.cursor = empty && p.sent_cursor ? *p.sent_cursor
                                        : format_cursor(p.dev.scope_epoch, empty ? p.after_seq : page->last_seq);
    out.more = page->more;
    // Read after the page: at or past the stamp of every record on it.
    out.server_hlc = store_.now_hlc();
    // Records that left the device's scope since its cursor: the device deletes its copy.
    out.dropped = std::move(page->dropped);
    out.reset = p.reset;
    out.incarnation = store_.incarnation();
    return out;
}

}  // namespace fieldsync::server
