#pragma once
// An in-memory fieldsync server for the unit tests of the replica in unit/sync_test.cpp. It
// speaks POST /v1/sync as SPEC.md says (idempotent change ids, protocol::decide for the merge
// rule, seq-ordered pull pages with an opaque cursor) and lets a test decide per request, by
// its ordinal in the sync, what goes wrong. It is kept only for the faults the real server
// cannot be made to show:
//   - a request dropped before the server sees it, or a response lost after the server
//     applied the change-set, at an exact request of a sync (backoff and jitter, ids resent
//     and applied once, a cut between two pull pages);
//   - a 5xx, 401 or 403 status scripted per attempt (retries, giving up after max_attempts,
//     permanent errors never retried), with the fake's own count of requests and writes;
//   - a cursor the server never issued, answered bad_cursor;
//   - transient failures in a row that halve the pull page and the change-set;
//   - uploads and downloads of attachments (SPEC.md, "Attachments") cut at an exact request,
//     answered with a chosen refusal, or served from a store that lies about an offset, for
//     the unit tests of the upload queue and the download cache (unit/attachment_test.cpp).
// Every other client sync test runs against the real server (the SQLite store behind the HTTP
// server on a loopback port, e2e/e2e_support.hpp's live_server): convergence and the merge
// rule, the outbox, rejected changes, edits from another thread, records leaving the device's
// scope and syncs cut after a local transaction are in e2e/replica_sync_test.cpp. Not
// thread-safe beyond one sync at a time per connection (a mutex guards the shared state).

#include "blobs/sha256.hpp"

#include <fieldsync/client/transport.hpp>
#include <fieldsync/protocol/attachment.hpp>
#include <fieldsync/protocol/merge.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fieldsync::test {

namespace proto = fieldsync::protocol;
using proto::json;

/// What a fault hook tells the fake to do with one request.
struct fault {
    enum kind { none, drop_request, drop_response, status } what = none;
    int http_status = 503;
};

class fake_server {
public:
    struct stored {
        std::string unit_id;
        std::vector<proto::version_state> history;  // index = version - 1
        std::int64_t seq = 0;
        proto::hlc stamp;
        std::string writer;
    };

    /// A transport for one device. `hook` (may be empty) is asked about every request, with
    /// the request's ordinal on this connection (1, 2, ...).
    std::shared_ptr<client::transport> connect(std::string device,
                                               std::function<fault(const client::http_request&, int)> hook = {}) {
        return std::make_shared<connection>(*this, std::move(device), std::move(hook));
    }

    std::map<std::pair<std::string, std::string>, stored> all() {
        std::lock_guard lock(mutex_);
        return records_;
    }
    /// Changes applied (each accepted write counts once, however often it was resent).
    std::int64_t writes() {
        std::lock_guard lock(mutex_);
        return next_seq_ - 1;
    }
    int handled = 0;     // requests that reached the sync engine
    std::int64_t page_limit_cap = proto::tuning::max_pull_limit;

    // Attachments: blobs held whole, uploads in progress per device, and what the fake was
    // sent, for the tests to look at and to play tricks with.
    std::map<std::string, std::string> blobs;                              // sha256 -> bytes
    std::map<std::pair<std::string, std::string>, std::string> partial;    // (device, sha256) -> bytes so far
    std::int64_t max_blob_bytes = 10 * 1024 * 1024;
    std::int64_t chunk_bytes_received = 0;  // PUT bodies that reached the fake, kept or not
    int blob_requests = 0;
    std::vector<std::string> ranges_asked;  // Range of each GET /v1/blobs

    /// Handles one request to /v1/uploads/{sha} or /v1/blobs/{sha}.
    client::http_response handle_blob(const std::string& device, const client::http_request& req) {
        std::lock_guard lock(mutex_);
        ++blob_requests;
        auto header = [&](const std::string& name) -> std::optional<std::string> {
            for (const auto& [k, v] : req.headers)
                if (k == name) return v;
            return std::nullopt;
        };
        auto error = [](int status, proto::errc code, const std::string& message, json extra = json::object()) {
            json e = {{"code", proto::errc_name(code)}, {"message", message}};
            e.update(extra);
            return client::http_response{status, json{{"error", e}}.dump()};
        };
        const auto uploads = req.url.find("/v1/uploads/");
        const auto downloads = req.url.find("/v1/blobs/");
        if (uploads != std::string::npos) {
            const auto sha = req.url.substr(uploads + 12);
            auto& part = partial[{device, sha}];
            if (req.method == "GET") {
                const bool held = blobs.count(sha) > 0;
                const auto offset = held ? static_cast<std::int64_t>(blobs[sha].size()) : static_cast<std::int64_t>(part.size());
                return {200, json{{"sha256", sha}, {"offset", offset}, {"complete", held}}.dump()};
            }
            chunk_bytes_received += static_cast<std::int64_t>(req.body.size());
            const auto length = std::stoll(header("Upload-Length").value_or("-1"));
            const auto offset = std::stoll(header("Upload-Offset").value_or("-1"));
            const auto type = header("Content-Type").value_or("");
            if (length > max_blob_bytes) return error(413, proto::errc::blob_too_large, "over the limit");
            if (!proto::content_type_allowed(type)) return error(415, proto::errc::blob_type_refused, "not allowed");
            if (blobs.count(sha))
                return {200, json{{"offset", blobs[sha].size()}, {"complete", true}}.dump()};
            if (offset != static_cast<std::int64_t>(part.size()))
                return error(409, proto::errc::upload_offset, "resend from the offset", {{"offset", part.size()}});
            if (offset == 0 && proto::sniff_content_type(req.body.substr(0, 12)) != type) {
                partial.erase({device, sha});
                return error(415, proto::errc::blob_type_refused, "not what it says");
            }
            part += req.body;
            if (static_cast<std::int64_t>(part.size()) < length)
                return {200, json{{"offset", part.size()}, {"complete", false}}.dump()};
            const auto bytes = std::move(part);
            partial.erase({device, sha});
            if (client::detail::sha256::of(bytes) != sha) return error(422, proto::errc::blob_hash_mismatch, "hash");
            blobs[sha] = bytes;
            return {201, json{{"offset", bytes.size()}, {"complete", true}}.dump()};
        }
        if (downloads != std::string::npos) {
            const auto sha = req.url.substr(downloads + 10);
            const auto it = blobs.find(sha);
            if (it == blobs.end()) return error(404, proto::errc::not_found, "no such blob");
            const auto& bytes = it->second;
            const auto range = header("Range");
            ranges_asked.push_back(range.value_or(""));
            if (!range) return {200, bytes};
            // bytes=A-B or bytes=A-
            const auto dash = range->find('-');
            const auto first = std::stoull(range->substr(6, dash - 6));
            auto last = dash + 1 < range->size() ? std::stoull(range->substr(dash + 1)) : bytes.size() - 1;
            if (first >= bytes.size()) return error(416, proto::errc::range_not_satisfiable, "past the end");
            last = std::min<std::uint64_t>(last, bytes.size() - 1);
            return {206, bytes.substr(first, last - first + 1)};
        }
        return error(404, proto::errc::not_found, "unknown path");
    }

    /// Handles one POST /v1/sync body; public so tests can drive it directly.
    client::http_response handle(const std::string& device, const std::string& body) {
        std::lock_guard lock(mutex_);
        ++handled;
        auto parsed = proto::parse_json(body, proto::tuning::max_json_depth);
        if (!parsed) return answer(400, proto::encode(parsed.err()));
        auto cs = proto::decode_change_set(*parsed);
        if (!cs) return answer(400, proto::encode(cs.err()));
        proto::sync_response resp;
        for (auto& e : cs->changes) resp.results.push_back(apply(device, e));

        std::int64_t after = 0;
        if (!cs->cursor.empty()) {  // "s:<seq>", opaque to clients
            if (cs->cursor.rfind("s:", 0) != 0 || cs->cursor.size() < 3 ||
                cs->cursor.find_first_not_of("0123456789", 2) != std::string::npos)
                return answer(400, proto::encode(proto::error{proto::errc::bad_cursor, "unknown cursor"}));
            after = std::stoll(cs->cursor.substr(2));
        }
        const std::int64_t limit =
            std::min(cs->limit ? cs->limit : proto::tuning::default_pull_limit, page_limit_cap);
        std::vector<std::pair<std::int64_t, const std::pair<const std::pair<std::string, std::string>, stored>*>> feed;
        for (const auto& kv : records_)
            if (kv.second.seq > after) feed.push_back({kv.second.seq, &kv});
        std::sort(feed.begin(), feed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        std::int64_t last = after;
        for (std::size_t i = 0; i < feed.size() && static_cast<std::int64_t>(i) < limit; ++i) {
            const auto& [key, rec] = *feed[i].second;
            proto::pulled_change p;
            p.collection = key.first;
            p.id = key.second;
            p.unit_id = rec.unit_id;
            p.version = static_cast<std::int64_t>(rec.history.size());
            p.deleted = rec.history.back().deleted;
            p.data = rec.history.back().data;
            resp.changes.push_back(std::move(p));
            last = feed[i].first;
        }
        resp.more = static_cast<std::int64_t>(feed.size()) > limit;
        resp.cursor = "s:" + std::to_string(last);
        return answer(200, proto::encode(resp));
    }

private:
    class connection final : public client::transport {
    public:
        connection(fake_server& s, std::string device, std::function<fault(const client::http_request&, int)> hook)
            : s_(s), device_(std::move(device)), hook_(std::move(hook)) {}
        client::result<client::http_response> send(const client::http_request& req, std::chrono::milliseconds) override {
            const fault f = hook_ ? hook_(req, ++n_) : fault{};
            if (f.what == fault::drop_request) return client::make_error(client::errc::network, "fake: request dropped");
            if (f.what == fault::status)
                return client::http_response{f.http_status, proto::encode(proto::error{proto::errc::unavailable, "fake"}).dump()};
            bool authorized = false;
            for (const auto& [k, v] : req.headers)
                if (k == "Authorization" && v == "Bearer token-" + device_) authorized = true;
            if (!authorized)
                return client::http_response{401, proto::encode(proto::error{proto::errc::unauthorized, "bad token"}).dump()};
            const bool blob = req.url.find("/v1/uploads/") != std::string::npos ||
                              req.url.find("/v1/blobs/") != std::string::npos;
            auto r = blob ? s_.handle_blob(device_, req) : s_.handle(device_, req.body);
            if (f.what == fault::drop_response) return client::make_error(client::errc::network, "fake: response lost");
            return r;
        }

    private:
        fake_server& s_;
        std::string device_;
        std::function<fault(const client::http_request&, int)> hook_;
        std::atomic<int> n_{0};  // upload() and sync() may share a connection
    };

    static client::http_response answer(int status, const json& j) { return {status, j.dump()}; }

    proto::change_result apply(const std::string& device, const proto::change_entry& e) {
        const auto key = device + "\n" + e.c.change_id;
        if (auto it = decided_.find(key); it != decided_.end()) return it->second;
        proto::change_result r;
        r.change_id = e.c.change_id;
        auto decide_rejected = [&](proto::error err) {
            r.status = proto::change_status::rejected;
            r.err = std::move(err);
            decided_[key] = r;
            return r;
        };
        if (e.rejected) return decide_rejected(*e.rejected);
        const auto* coll = proto::schema::default_schema().find(e.c.collection);
        if (!coll) return decide_rejected({proto::errc::unknown_collection, "unknown collection '" + e.c.collection + "'"});

        auto it = records_.find({e.c.collection, e.c.id});
        std::optional<proto::head_state> head;
        std::optional<proto::version_state> base;
        if (it != records_.end()) {
            head = proto::head_state{static_cast<std::int64_t>(it->second.history.size()), it->second.history.back(),
                                     it->second.stamp, it->second.writer};
            if (e.c.base_version > 0 && e.c.base_version < head->version)
                base = it->second.history[static_cast<std::size_t>(e.c.base_version - 1)];
        }
        proto::incoming_change in;
        in.op = e.c.op;
        in.base_version = e.c.base_version;
        in.data = &e.c.data;
        in.stamp = e.c.stamp.value_or(proto::hlc{});
        in.writer = device;
        auto o = proto::decide(head, base, in, coll->policy);
        r.status = proto::to_status(o.kind);
        r.version = head ? head->version : 0;
        switch (o.kind) {
            case proto::merge_kind::fast_forward:
            case proto::merge_kind::merged: {
                if (!o.result.deleted)
                    if (auto err = proto::schema::default_schema().validate(*coll, o.result.data)) return decide_rejected(*err);
                auto& rec = records_[{e.c.collection, e.c.id}];
                rec.unit_id = e.c.unit_id;
                rec.history.push_back(o.result);
                rec.seq = next_seq_++;
                rec.stamp = in.stamp;
                rec.writer = device;
                r.version = static_cast<std::int64_t>(rec.history.size());
                break;
            }
            case proto::merge_kind::unchanged: break;
            case proto::merge_kind::conflict:
                r.conflict_id = "conflict-" + std::to_string(++conflicts_);
                break;
            case proto::merge_kind::rejected: return decide_rejected(*o.err);
        }
        decided_[key] = r;
        return r;
    }

    std::mutex mutex_;
    std::map<std::pair<std::string, std::string>, stored> records_;
    std::map<std::string, proto::change_result> decided_;
    std::int64_t conflicts_ = 0;
    std::int64_t next_seq_ = 1;
};

}  // namespace fieldsync::test
