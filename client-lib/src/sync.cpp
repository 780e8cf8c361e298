// The sync engine (design.md, "Replica" and "Change-sets and idempotency").
//
// One loop of round trips. Each request carries the oldest unanswered change-set (or a new one
// made from the unsent outbox) and the pull cursor; each response's results, pulled page and
// new cursor are committed in one local transaction. A change-set is written to the outbox
// (batch_id, change ids and the exact wire form) before it is first sent and resent unchanged
// until answered, so the server's change-id memory makes every retry safe. Answered rows are
// kept (acked) for tuning::acked_retention: when the server's answers name another store
// incarnation than the one this replica synced with (its store was restored from a backup),
// they are sent again with their ids and the pull starts over (SPEC.md, "After a restore").

#include "wire_body.hpp"
#include "replica_impl.hpp"

#include <fieldsync/client/tuning.hpp>
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/merge_patch.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <algorithm>
#include <cmath>

namespace fieldsync::client {

using detail::failure;
using detail::outbox_row;
using detail::parse_stored;
using detail::record_row;

namespace {

// The wire form of an outbox row. Deletes and creates are what they are. An edit of a record
// the server has is sent as a merge patch from the content it was edited from: the server
// applies it to the version `base_version`, so when that base is a version the server merged
// (our earlier change plus another device's), the patch carries only what this edit changed
// and the other device's fields survive. A merge patch cannot set a field to null, so content
// holding nulls goes as a whole-record put (the server's three-way merge still protects
// fields this device did not touch since base_version).
protocol::change wire_change(const outbox_row& row) {
    protocol::change c;
    c.change_id = row.change_id;
    c.collection = row.collection;
    c.id = row.id;
    c.unit_id = row.unit_id;
    c.base_version = row.base_version;
    c.stamp = protocol::hlc::parse(row.hlc);
    if (row.deleted) {
        c.op = protocol::op_kind::del;
        c.data = nullptr;
        return c;
    }
    auto content = parse_stored(row.data);
    if (row.base_version == 0 || !row.base_data || protocol::contains_null(content)) {
        c.op = protocol::op_kind::put;
        c.data = std::move(content);
        return c;
    }
    c.op = protocol::op_kind::patch;
    c.data = protocol::merge_diff(parse_stored(row.base_data), content);
    return c;
}

// The server's head after `row` was applied as sent (fast-forward): nullopt when it cannot be
// rebuilt locally; an empty optional inside for a delete.
std::optional<std::optional<std::string>> applied_head(const outbox_row& row, const record_row& rec) {
    if (row.deleted) return std::optional<std::string>();
    if (!row.wire) return std::nullopt;
    const auto wire = json::parse(*row.wire);
    if (wire.value("op", "") == "put") return std::optional<std::string>(row.data);
    if (wire.value("op", "") != "patch" || rec.server_version != row.base_version || rec.server_deleted ||
        !rec.server_data)
        return std::nullopt;
    auto head = json::parse(*rec.server_data);
    head.merge_patch(wire.at("data"));
    return std::optional<std::string>(head.dump());
}

}  // namespace

// Maps a non-200 answer to an error; `transient` says whether retrying can help.
error detail::answer_error(const http_response& r, bool& transient, std::optional<protocol::errc>& code) {
    std::optional<protocol::error> body;
    if (auto parsed = protocol::parse_json(r.body, protocol::tuning::max_json_depth))
        body = protocol::decode_error(*parsed);
    if (body) code = body->code;
    const std::string detail = body ? " (" + std::string(protocol::errc_name(body->code)) + ": " + body->message + ")"
                                    : std::string();
    const std::string what = "HTTP " + std::to_string(r.status) + detail;
    // The handshake's refusals (SPEC.md, "Versions and the handshake"): permanent, and named,
    // so an app can tell its user which side to upgrade.
    if (body && body->code == protocol::errc::unsupported_protocol) {
        transient = false;
        return make_error(errc::server_too_old, what);
    }
    if (body && body->code == protocol::errc::client_too_old) {
        transient = false;
        return make_error(errc::client_too_old, what);
    }
    if (r.status == 401) {
        transient = false;
        return make_error(errc::unauthorized, what);
    }
    if (r.status == 403) {
        transient = false;
        return make_error(errc::forbidden, what);
    }
    if (body) {
        transient = protocol::classify(body->code) == protocol::retry_class::transient;
    } else {
        transient = r.status >= 500 || r.status == 408 || r.status == 429;
    }
    return make_error(transient ? errc::server_unavailable : errc::bad_request, what);
}

namespace {

// A record's review state (conflict or rejection) is over: a change of it was taken, or a
// newer head than the one it was refused against arrived.
void clear_review_state(record_row& rec) {
    rec.reason_code.reset();
    rec.reason_message.reset();
    rec.conflict_id.reset();
    rec.held_data.reset();
}

bool taken(protocol::change_status s) {
    return s == protocol::change_status::applied || s == protocol::change_status::merged;
}

// One sync: round trips until the outbox this sync started with is answered and the pull has
// reached the end of the feed. Each round trip is the same steps, in order:
//   prepare  the change-set to send: the oldest one already sent, or a new one made durable
//            before its first send;
//   exchange one request (push and pull) with retries and backoff;
//   check    the answer against what was sent;
//   apply    results, the pulled page (or a restore's re-snapshot) and the cursor, in one
//            local transaction;
// and the loop ends at done, or at the first error.
class sync_session {
public:
    sync_session(replica::impl& r, const progress_fn& progress, const replica::answer_fn& on_answer)
        : r_(r), progress_(progress), on_answer_(on_answer), started_(std::chrono::steady_clock::now()) {}

    result<sync_report> run();

private:
    enum class step { prepare, exchange, apply, done };

    result<bool> start();
    result<bool> prepare();
    result<http_response> exchange(json& body);
    result<protocol::sync_response> check(const http_response& answer);
    result<bool> apply(const protocol::sync_response& resp);
    void apply_result(const protocol::change_result& res, bool& deferred_batch);
    void apply_restore(const protocol::sync_response& resp);
    void apply_resolution(const protocol::resolution_notice& n);
    void apply_page(const protocol::sync_response& resp);
    result<bool> committed();
    bool tell(sync_phase ph);
    template <class T>
    T adapted(T configured, T floor) const {
        return std::max(std::min(configured, floor), configured >> r_.link_shrink);
    }

    replica::impl& r_;
    const progress_fn& progress_;
    const replica::answer_fn& on_answer_;
    const std::chrono::steady_clock::time_point started_;
    sync_report report_;
    sync_progress prog_;
    std::int64_t commits_ = 0;

    std::string url_, token_, cursor_, endpoint_;
    // The stored cursor is that of an answer with more: false, so this replica holds every
    // record of its scope as the feed had it at that cursor: the base the server diffs against
    // (SPEC.md, "Pulled field diffs"). Mid-way through paging that is not so, and pulls go whole.
    bool caught_up_ = false;
    // Only changes that existed when this sync started: an app that keeps editing cannot keep
    // a sync running forever; its new edits go with the next one.
    std::int64_t max_seq_ = 0;
    std::optional<protocol::errc> server_code_;  // the error code of the last non-200 answer
    bool cursor_reset_ = false;
    // The last page held a diff against a version this replica does not hold: ask for the
    // same page again, whole (SPEC.md, "Pulled field diffs").
    bool whole_page_ = false;
    // Change-sets a relay hub answered `queued`: they stay in the outbox, frozen, and are
    // resent by the next sync, not again by this one.
    std::vector<std::string> deferred_;
    bool restore_handled_ = false;  // at most once per sync: a store that keeps changing is an error
    bool restored_ = false;         // the current answer came from a restored store

    // The round trip in progress.
    std::vector<outbox_row> batch_;
    std::string batch_id_;
};

bool sync_session::tell(sync_phase ph) {
    prog_.phase = ph;
    prog_.bytes_sent = report_.bytes_sent;
    prog_.bytes_received = report_.bytes_received;
    return !progress_ || progress_(prog_);
}

result<bool> sync_session::start() {
    {
        std::lock_guard lock(r_.mutex);
        url_ = r_.store->meta("server_url").value_or("");
        token_ = r_.store->meta("token").value_or("");
        cursor_ = r_.store->meta("cursor").value_or("");
        caught_up_ = r_.store->meta("caught_up").value_or("0") == "1";
        const auto extent = r_.store->outbox_extent();
        max_seq_ = extent.max_seq;
        prog_.to_push = extent.rows;
    }
    if (!r_.net)
        return make_error(errc::unsupported,
                          "this build has no HTTP transport: give the replica one (replica_options::transport_override)");
    if (url_.empty() && !r_.options.transport_override)
        return make_error(errc::not_configured, "no server configured: call configure(server_url, token) first");
    while (!url_.empty() && url_.back() == '/') url_.pop_back();
    endpoint_ = url_ + "/v1/sync";
    return true;
}

// One exchange with retries: transient failures back off exponentially with jitter.
// Adaptation to the link (SPEC.md, "A client's sync loop"): each transient failure halves the
// pull page and the size of new change-sets, each answer doubles them back towards the
// configured sizes, so a link that drops every few seconds still moves pages that fit between
// drops. A change-set already sent keeps its size: it is resent unchanged.
result<http_response> sync_session::exchange(json& body) {
    server_code_.reset();
    http_request req;
    req.method = "POST";
    req.url = endpoint_;
    const std::string media(detail::media_type(r_.options.format));
    req.headers = {{"Content-Type", media}, {"Accept", media}};
    // The handshake: the server compares these with its own versions on every request.
    req.headers.emplace_back(protocol::protocol_header,
                             std::to_string(r_.test_protocol_version > 0 ? r_.test_protocol_version
                                                                         : protocol::protocol_version));
    req.headers.emplace_back(protocol::schema_header, std::to_string(r_.options.schema ? r_.options.schema->version() : 1));
    if (!token_.empty()) req.headers.emplace_back("Authorization", "Bearer " + token_);
    for (int attempt = 1;; ++attempt) {
        body["limit"] = adapted(r_.pull_page_limit, tuning::min_pull_page_limit);
        req.body = detail::encode_body(body, r_.options.format);
        auto answer = r_.net->send(req, r_.request_timeout);
        report_.bytes_sent += static_cast<std::int64_t>(req.body.size());
        error err;
        bool transient = true;
        if (answer) {
            report_.bytes_received += static_cast<std::int64_t>(answer->body.size());
            ++report_.requests;
            if (answer->status == 200) {
                if (r_.link_shrink > 0) --r_.link_shrink;
                return std::move(*answer);
            }
            err = detail::answer_error(*answer, transient, server_code_);
        } else {
            err = answer.err();
            transient = classify(static_cast<errc>(err.code.value())) == protocol::retry_class::transient &&
                        err.code.category() == client_category();
        }
        if (transient) r_.link_shrink = std::min(r_.link_shrink + 1, tuning::max_link_shrink);
        if (!transient || attempt >= r_.max_attempts) {
            if (transient) err.message += " (gave up after " + std::to_string(attempt) + " attempts)";
            return err;
        }
        // Exponential growth from backoff_base, capped; "equal jitter": a fixed part and a
        // random part, so clients that failed together spread out.
        const double grown = static_cast<double>(r_.backoff_base.count()) * std::ldexp(1.0, attempt - 1);
        const double delay = std::min(grown, static_cast<double>(r_.backoff_cap.count()));
        const double unit = static_cast<double>(r_.options.seams.random() >> 11) * 0x1.0p-53;  // [0, 1)
        const auto wait =
            std::chrono::milliseconds(static_cast<std::int64_t>(delay * (1.0 - r_.jitter) + delay * r_.jitter * unit));
        ++report_.retries;
        prog_.retry_in = wait;
        prog_.last_error = err;
        if (!tell(sync_phase::retry_wait)) return make_error(errc::cancelled, "sync cancelled while waiting to retry");
        prog_.last_error.reset();
        r_.options.seams.sleep(wait);
    }
}

// After each local transaction: the test seam may end the sync there, as a crash would.
result<bool> sync_session::committed() {
    ++commits_;
    if (r_.test_after_commit && !r_.test_after_commit(commits_))
        return make_error(errc::cancelled,
                          "sync stopped by the test seam after local transaction " + std::to_string(commits_));
    return true;
}

// The change-set to send: the oldest one already handed to the server, or a new one made
// durable here, before its first send.
result<bool> sync_session::prepare() {
    batch_.clear();
    batch_id_.clear();
    bool made = false;
    {
        std::lock_guard lock(r_.mutex);
        batch_ = r_.store->oldest_in_flight_batch(deferred_);
        if (batch_.empty()) {
            auto rows = r_.store->unsent(adapted(r_.push_batch_size, tuning::min_push_batch_size));
            std::erase_if(rows, [&](const outbox_row& row) { return row.seq > max_seq_; });
            if (!rows.empty()) {
                sqlite::write_transaction tx(r_.store->db());
                const auto batch_id = make_uuid_v7();
                std::size_t bytes = 0;
                std::size_t count = 0;
                for (auto& row : rows) {
                    // A forwarded change (replica::forward) comes with its wire form.
                    auto wire = row.wire ? *row.wire : protocol::encode(wire_change(row)).dump();
                    if (count > 0 && bytes + wire.size() > adapted(r_.push_batch_bytes, tuning::min_push_batch_bytes))
                        break;
                    bytes += wire.size();
                    ++count;
                    row.batch_id = batch_id;
                    row.wire = std::move(wire);
                    r_.store->update_outbox(row);
                }
                rows.resize(count);
                tx.commit();
                made = true;
                batch_ = std::move(rows);
            }
        }
        if (!batch_.empty()) batch_id_ = *batch_.front().batch_id;
    }
    if (made) {
        if (auto ok = committed(); !ok) return std::move(ok).err();
    }
    // The server answered our pushes but serves this version no pulls: with nothing more to
    // push, stop here rather than ask for the 426 it would answer.
    if (batch_.empty() && report_.upgrade && report_.upgrade->required)
        return make_error(errc::client_too_old,
                          "the server (protocol " + std::to_string(report_.upgrade->server.protocol) + ", schema " +
                              std::to_string(report_.upgrade->server.schema) +
                              ") no longer serves this client's version: every pending edit was pushed; "
                              "upgrade the app to pull");
    return true;
}

// The answer must fit what was sent: one result per change, in order, a cursor that moves.
result<protocol::sync_response> sync_session::check(const http_response& answer) {
    auto parsed = detail::decode_answer(answer);
    if (!parsed) return make_error(errc::bad_response, "the server's answer does not parse: " + parsed.err().message);
    auto resp = protocol::decode_sync_response(*parsed);
    if (!resp) return make_error(errc::bad_response, "the server's answer: " + resp.err().message);
    if (resp->results.size() != batch_.size())
        return make_error(errc::bad_response, "the server answered " + std::to_string(resp->results.size()) +
                                                  " results for " + std::to_string(batch_.size()) + " changes");
    for (std::size_t i = 0; i < batch_.size(); ++i)
        if (resp->results[i].change_id != batch_[i].change_id)
            return make_error(errc::bad_response, "the server's results are not in the order of the changes");
    if (resp->more && resp->cursor == cursor_ && resp->changes.empty())
        return make_error(errc::bad_response, "the server reports more changes but its cursor does not advance");
    if (resp->server_hlc) r_.clock.observe(*resp->server_hlc);
    if (resp->upgrade) report_.upgrade = resp->upgrade;
    if (on_answer_) {
        auto seen = on_answer_(*resp);
        if (!seen) return std::move(seen).err();
    }
    restored_ = false;
    if (!resp->incarnation.empty()) {
        std::lock_guard lock(r_.mutex);
        const auto known = r_.store->meta("incarnation");
        restored_ = known && !known->empty() && *known != resp->incarnation;
    }
    if (restored_ && restore_handled_)
        return make_error(errc::bad_response, "the server's store changed its incarnation twice in one sync");
    return std::move(*resp);
}

// One result of the push: the outbox row is answered, and the record's state follows.
void sync_session::apply_result(const protocol::change_result& res, bool& deferred_batch) {
    auto& store = *r_.store;
    auto row = store.outbox_by_change_id(res.change_id);
    if (!row) return;  // answered before (a resent batch whose answer we kept)
    if (res.status == protocol::change_status::queued) {
        // Not an answer yet: the hub forwards it upstream. The change stays as it was sent,
        // and the record pending.
        ++report_.queued;
        deferred_batch = true;
        return;
    }
    auto rec = store.find_record(row->collection, row->id);
    if (!rec) throw failure(errc::internal, "outbox change for a record the replica does not hold");
    store.ack_outbox(*row, r_.clock.wall_ms());
    auto rest = store.outbox_for(row->collection, row->id);
    outbox_row* next = rest.empty() ? nullptr : &rest.front();
    ++report_.pushed;
    switch (res.status) {
        case protocol::change_status::applied:
            ++report_.applied;
            // The head is what we sent made whole. A put or delete is that already; a patch
            // is, applied to the base it was sent against, which we can do when that base is
            // our server copy. Otherwise the pull brings the head.
            if (res.version > rec->server_version) {
                if (auto head = applied_head(*row, *rec)) {
                    rec->server_version = res.version;
                    rec->server_deleted = !head->has_value();
                    rec->server_data = std::move(*head);
                }
            }
            break;
        case protocol::change_status::merged: ++report_.merged; break;
        case protocol::change_status::queued: break;  // handled above
        case protocol::change_status::conflict:
        case protocol::change_status::rejected: {
            const bool conflict = res.status == protocol::change_status::conflict;
            ++(conflict ? report_.conflicts : report_.rejected);
            rec->state_version = res.version;
            rec->conflict_id = res.conflict_id;
            // A held change has no error: it waits for a reviewer (record::conflict_id).
            rec->reason_code.reset();
            rec->reason_message.reset();
            if (res.err) {
                rec->reason_code = std::string(protocol::errc_name(res.err->code));
                rec->reason_message = res.err->message;
            } else if (!conflict) {
                rec->reason_code = std::string(protocol::errc_name(protocol::errc::bad_request));
                rec->reason_message = "refused by the server without a reason";
            }
            rec->held_data = row->deleted ? std::nullopt : row->data;
            break;
        }
    }
    if (next) {
        // The next edit was made on top of this change: once the server took it, its version
        // is the next edit's base.
        if (taken(res.status) && res.version > 0) {
            next->base_version = res.version;
            store.update_outbox(*next);
        }
        rec->state = static_cast<int>(sync_state::pending);
    } else {
        if (taken(res.status)) {
            rec->state = static_cast<int>(sync_state::synced);
            clear_review_state(*rec);
        } else {
            rec->state = static_cast<int>(res.status == protocol::change_status::conflict ? sync_state::conflict
                                                                                          : sync_state::rejected);
        }
        // Nothing pending: the local copy is the server's head as far as we have it (a merged
        // head, or an applied one we could not rebuild, arrives with the pull, in this
        // transaction or later).
        if (!taken(res.status) || rec->server_version >= res.version) {
            rec->local_deleted = rec->server_deleted;
            rec->local_data = rec->server_data;
        }
    }
    store.save_record(*rec);
}

// The outcome of a change the server held for review (SPEC.md, "Decisions reaching the
// device"). A decision is kept with the record (its notice, and `held`: this device's text it
// was about) and the record follows the server's head, which the pull brings (the server reads
// outcomes before the page, so the decided version is on this page or a later one). An id the
// server does not know (a relay hub answering for its upstream, a restored store) ends the
// wait only once a newer head than the one the change collided with is here, as before the
// server told outcomes.
void sync_session::apply_resolution(const protocol::resolution_notice& n) {
    auto& store = *r_.store;
    auto rec = store.find_by_conflict(n.conflict_id);
    if (!rec || rec->state != static_cast<int>(sync_state::conflict)) return;
    const bool pending = store.has_outbox(rec->collection, rec->id);
    if (n.status == "unknown") {
        if (pending || rec->server_version <= rec->state_version) return;
        rec->held_data.reset();
    } else {
        rec->resolution = protocol::encode(n).dump();
        ++report_.decided;
    }
    rec->state = static_cast<int>(pending ? sync_state::pending : sync_state::synced);
    rec->state_version = 0;
    rec->reason_code.reset();
    rec->reason_message.reset();
    rec->conflict_id.reset();
    if (!pending) {
        rec->local_deleted = rec->server_deleted;
        rec->local_data = rec->server_data;
    }
    store.save_record(*rec);
}

// The store was restored from a backup: what it lost may include changes it answered us.
// Everything answered within the retention window goes again with its ids (the restored store
// answers those it still has from `decided` and applies the others), and the replica
// re-snapshots as after a `reset`: this page and cursor belong to the old store, and so do our
// copies' versions. Synced copies go (the restored store may not have them: a record another
// device wrote after the backup and never resends); what is pending, in conflict or refused
// stays, its server versions forgotten.
void sync_session::apply_restore(const protocol::sync_response& resp) {
    auto& store = *r_.store;
    report_.resent += store.requeue_acked();
    report_.dropped += store.delete_synced_records(static_cast<int>(sync_state::synced));
    store.forget_server_versions();
    cursor_.clear();
    store.set_meta("cursor", cursor_);
    caught_up_ = false;
    store.set_meta("caught_up", "0");
    store.set_meta("incarnation", resp.incarnation);
    restore_handled_ = true;
}

// The pulled page, the drops and the new cursor.
void sync_session::apply_page(const protocol::sync_response& resp) {
    auto& store = *r_.store;
    // The device was moved to another unit: what it holds of its old scope goes (the new
    // scope's records follow on this page and the next), except what only exists here: pending
    // edits, and changes awaiting review or refused.
    if (resp.reset) report_.dropped += store.delete_synced_records(static_cast<int>(sync_state::synced));
    for (const auto& p : resp.changes) {
        auto rec = store.find_record(p.collection, p.id);
        if (rec && p.version <= rec->server_version) continue;
        if (!rec) {
            rec.emplace();
            rec->collection = p.collection;
            rec->id = p.id;
        }
        if (p.diff_base) {
            auto whole = json::parse(*rec->server_data);
            whole.merge_patch(p.data);
            rec->server_data = whole.dump();
        } else {
            rec->server_data =
                p.deleted || p.data.is_null() ? std::nullopt : std::optional<std::string>(p.data.dump());
        }
        rec->server_version = p.version;
        rec->server_deleted = p.deleted;
        if (!store.has_outbox(p.collection, p.id)) {
            rec->unit_id = p.unit_id;
            rec->local_deleted = rec->server_deleted;
            rec->local_data = rec->server_data;
            const auto st = static_cast<sync_state>(rec->state);
            // A refusal is over once a newer head arrives; a held change waits for its outcome
            // (apply_resolution), whatever else the district writes meanwhile.
            if (st == sync_state::pending || (st == sync_state::rejected && p.version > rec->state_version)) {
                rec->state = static_cast<int>(sync_state::synced);
                rec->state_version = 0;
                clear_review_state(*rec);
            }
        } else if (rec->unit_id.empty()) {
            rec->unit_id = p.unit_id;
        }
        store.save_record(*rec);
        ++report_.pulled;
    }
    // Records that left this device's scope (moved to a unit it does not see): the local copy
    // goes, unless an edit of it is pending (its push will be answered, likely rejected
    // out_of_scope) or it holds a change the server did not take (conflict, rejected): that
    // content exists nowhere else on this device. Such a record keeps its local copy but
    // forgets the server's, which the device may no longer see, so a discard removes it.
    for (const auto& d : resp.dropped) {
        const auto held = store.find_record(d.collection, d.id);
        if (!held) continue;
        if (store.has_outbox(d.collection, d.id) || held->state == static_cast<int>(sync_state::conflict) ||
            held->state == static_cast<int>(sync_state::rejected)) {
            store.forget_server_copy(d.collection, d.id);
            continue;
        }
        store.delete_record(d.collection, d.id);
        ++report_.dropped;
    }
    if (!resp.cursor.empty()) {
        cursor_ = resp.cursor;
        store.set_meta("cursor", cursor_);
    }
    // An answer to a client below the minimum has an empty page that says nothing.
    if (!resp.upgrade || !resp.upgrade->required) {
        caught_up_ = !resp.more;
        store.set_meta("caught_up", caught_up_ ? "1" : "0");
    }
    if (!resp.incarnation.empty()) store.set_meta("incarnation", resp.incarnation);
}

// Results, pulled page (or a restore's re-snapshot) and cursor in one local transaction.
result<bool> sync_session::apply(const protocol::sync_response& resp) {
    {
        std::lock_guard lock(r_.mutex);
        auto& store = *r_.store;
        sqlite::write_transaction tx(store.db());
        bool deferred_batch = false;
        for (const auto& res : resp.results) apply_result(res, deferred_batch);

        // Diffs apply to the exact version they were made against; if this replica holds
        // another one of any record of the page, the page waits and comes again whole. (After
        // a restore the page is not used at all.)
        const bool diffs_fit = restored_ || std::all_of(resp.changes.begin(), resp.changes.end(), [&](const auto& p) {
            if (!p.diff_base) return true;
            const auto rec = store.find_record(p.collection, p.id);
            return rec && (p.version <= rec->server_version ||
                           (rec->server_version == *p.diff_base && !rec->server_deleted && rec->server_data));
        });
        whole_page_ = !diffs_fit;
        if (whole_page_) ++report_.refetched_pages;

        if (deferred_batch) deferred_.push_back(batch_id_);
        if (restored_)
            apply_restore(resp);
        else if (!whole_page_)
            apply_page(resp);
        // After the page: a decided record then follows the head the page brought, and an
        // `unknown` outcome is weighed against it.
        for (const auto& n : resp.resolutions) apply_resolution(n);
        const auto now_ms = r_.clock.wall_ms();
        store.prune_acked(now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(tuning::acked_retention).count(),
                          tuning::acked_retention_changes);
        store.set_meta("hlc", r_.clock.now().to_string());
        tx.commit();
    }
    if (auto ok = committed(); !ok) return std::move(ok).err();
    prog_.pushed = report_.pushed;
    prog_.pulled = report_.pulled;
    if (!tell(batch_.empty() ? sync_phase::pull : sync_phase::push)) return make_error(errc::cancelled, "sync cancelled");
    return true;
}

result<sync_report> sync_session::run() {
    if (auto ok = start(); !ok) return std::move(ok).err();
    std::optional<http_response> answer;
    for (step at = step::prepare; at != step::done;) {
        switch (at) {
            case step::prepare: {
                if (auto ok = prepare(); !ok) return std::move(ok).err();
                at = step::exchange;
                break;
            }
            case step::exchange: {
                // The request body, from the stored wire forms (identical on every retry).
                json changes = json::array();
                for (const auto& row : batch_) {
                    if (!row.wire) throw failure(errc::internal, "outbox row in a batch without its wire form");
                    changes.push_back(json::parse(*row.wire));
                }
                json body = {{"cursor", cursor_}, {"limit", r_.pull_page_limit}};
                if (r_.options.pull_diffs && caught_up_ && !whole_page_) body["diffs"] = true;
                {
                    std::lock_guard lock(r_.mutex);
                    auto held = r_.store->held_conflicts(static_cast<int>(sync_state::conflict),
                                                         protocol::tuning::max_held_per_sync);
                    if (!held.empty()) body["held"] = std::move(held);
                }
                if (!batch_.empty()) {
                    body["batch_id"] = batch_id_;
                    body["changes"] = std::move(changes);
                }
                prog_.phase = batch_.empty() ? sync_phase::pull : sync_phase::push;
                auto got = exchange(body);
                if (!got && server_code_ == protocol::errc::bad_cursor && !cursor_.empty() && !cursor_reset_) {
                    // The server does not take our cursor: SPEC.md says pull again from the
                    // beginning. Heads we already hold are skipped by version, so starting
                    // over loses nothing and duplicates nothing.
                    cursor_reset_ = true;
                    cursor_.clear();
                    std::lock_guard lock(r_.mutex);
                    sqlite::write_transaction tx(r_.store->db());
                    r_.store->set_meta("cursor", cursor_);
                    tx.commit();
                    at = step::prepare;
                    break;
                }
                if (!got) return std::move(got).err();
                answer = std::move(*got);
                at = step::apply;
                break;
            }
            case step::apply: {
                auto resp = check(*answer);
                if (!resp) return std::move(resp).err();
                if (auto ok = apply(*resp); !ok) return std::move(ok).err();
                const bool finished = !restored_ && batch_.empty() && !resp->more && !whole_page_;
                at = finished ? step::done : step::prepare;
                break;
            }
            case step::done: break;
        }
    }
    report_.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
    return report_;
}

}  // namespace

result<sync_report> replica::impl::run_sync(const progress_fn& progress, const replica::answer_fn& on_answer) {
    return sync_session(*this, progress, on_answer).run();
}

}  // namespace fieldsync::client
