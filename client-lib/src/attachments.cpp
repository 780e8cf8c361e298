// Uploads and downloads of attached files (SPEC.md, "Attachments": "Uploading", "Downloading"
// and "Client behaviour"). attach() itself is in replica.cpp, beside the other local edits.
//
// upload() and download() run beside sync(), on other threads: they take the replica's mutex
// only to read and write the local file (the queue, the folder's bookkeeping), never while a
// request is on the network, and use a transport of their own (replica::impl::blob_net).

#include "replica_impl.hpp"

#include <fieldsync/client/tuning.hpp>
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <chrono>

namespace fieldsync::client {

using detail::failure;

std::shared_ptr<transport> replica::impl::make_blob_transport() {
    std::lock_guard lock(mutex);
    if (options.transport_override) return options.transport_override;
    auto o = options.http;
    o.gzip = false;  // photos and PDFs are compressed already; the server never gzips blobs
    return make_http_transport(o);  // nullptr in the embedded build
}

std::int64_t replica::impl::now_ms() const {
    if (options.seams.wall_ms) return options.seams.wall_ms();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void replica::impl::evict_blobs(const std::string& keep) {
    std::vector<std::string> gone;
    {
        sqlite::write_transaction tx(store->db());
        gone = store->evict_blob_files(blob_cache_bytes, keep);
        tx.commit();
    }
    // After the commit: a crash in between leaves a file no row names, which download() takes
    // back (its bytes were checked when they came), never a row without its file.
    for (const auto& sha : gone) blobs.remove(sha);
}

namespace {

// Where the server and this replica are: read once per call.
struct endpoint {
    std::string url;    // without a trailing slash
    std::string token;
};

endpoint read_endpoint(replica::impl& im) {
    endpoint e;
    {
        std::lock_guard lock(im.mutex);
        e.url = im.store->meta("server_url").value_or("");
        e.token = im.store->meta("token").value_or("");
    }
    while (!e.url.empty() && e.url.back() == '/') e.url.pop_back();
    if (e.url.empty() && !im.options.transport_override)
        throw failure(errc::not_configured, "no server configured: call configure(server_url, token) first");
    return e;
}

http_request blob_request(const replica::impl& im, const endpoint& e, std::string method, const std::string& path) {
    http_request req;
    req.method = std::move(method);
    req.url = e.url + path;
    // The handshake applies to every endpoint that takes a token (SPEC.md, "Versions and the
    // handshake").
    req.headers.emplace_back(protocol::protocol_header,
                             std::to_string(im.test_protocol_version > 0 ? im.test_protocol_version
                                                                         : protocol::protocol_version));
    req.headers.emplace_back(protocol::schema_header, std::to_string(im.options.schema ? im.options.schema->version() : 1));
    if (!e.token.empty()) req.headers.emplace_back("Authorization", "Bearer " + e.token);
    return req;
}

// The error object of a non-2xx answer, when it has one (its "offset" for upload_offset).
json error_object(const http_response& r) {
    auto parsed = protocol::parse_json(r.body, protocol::tuning::max_json_depth);
    if (!parsed || !parsed->is_object()) return nullptr;
    const auto e = parsed->find("error");
    return e != parsed->end() && e->is_object() ? *e : json(nullptr);
}

// An upload answer: {"offset", "complete"} (GET, and a PUT's 200 or 201).
struct upload_answer {
    std::int64_t offset = 0;
    bool complete = false;
};

result<upload_answer> read_upload_answer(const http_response& r, std::int64_t size) {
    auto parsed = protocol::parse_json(r.body, protocol::tuning::max_json_depth);
    if (parsed && parsed->is_object()) {
        const auto off = parsed->find("offset");
        const auto done = parsed->find("complete");
        if (off != parsed->end() && off->is_number_integer() && done != parsed->end() && done->is_boolean()) {
            upload_answer a{off->get<std::int64_t>(), done->get<bool>()};
            if (a.offset >= 0 && (a.offset <= size || a.complete)) return a;
        }
    }
    return make_error(errc::bad_response, "the server's upload answer (HTTP " + std::to_string(r.status) +
                                              ") is not {\"offset\", \"complete\"} within the blob's size");
}

bool refused_for_good(protocol::errc code) {
    return code == protocol::errc::blob_too_large || code == protocol::errc::blob_type_refused ||
           code == protocol::errc::blob_hash_mismatch;
}

// One upload() call: the queue's waiting blobs, oldest first, until the queue is empty, a
// transient failure, the budget or a stop from the progress callback.
class upload_session {
public:
    upload_session(replica::impl& r, const upload_options& o)
        : r_(r), o_(o), started_(std::chrono::steady_clock::now()) {}

    result<upload_report> run() {
        if (!r_.blob_net)
            return make_error(errc::unsupported,
                              "this build has no HTTP transport: give the replica one (replica_options::transport_override)");
        ep_ = read_endpoint(r_);
        result<void> outcome;
        while (outcome && !over_budget()) {
            std::optional<detail::upload_row> next;
            {
                std::lock_guard lock(r_.mutex);
                next = r_.store->next_upload(detail::upload_waiting);
                if (next) r_.uploading = next->sha256;
            }
            if (!next) break;
            try {
                outcome = send(*next);
            } catch (...) {
                std::lock_guard lock(r_.mutex);
                r_.uploading.clear();
                throw;
            }
            std::lock_guard lock(r_.mutex);
            r_.uploading.clear();
        }
        {
            std::lock_guard lock(r_.mutex);
            for (const auto& u : r_.store->uploads())
                if (u.state == detail::upload_waiting) ++report_.waiting;
        }
        report_.duration =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
        if (!outcome) return std::move(outcome).err();
        return report_;
    }

private:
    bool over_budget() const { return o_.byte_budget > 0 && report_.bytes_sent >= o_.byte_budget; }

    result<http_response> exchange(const http_request& req) {
        auto answer = r_.blob_net->send(req, tuning::blob_request_timeout);
        if (answer) ++report_.requests;
        return answer;
    }

    // The server's answer was not one this upload can go on from: an error for the caller,
    // the blob left queued.
    static error stop_error(const http_response& r) {
        bool transient = false;
        std::optional<protocol::errc> code;
        return detail::answer_error(r, transient, code);
    }

    void set_sent(const std::string& sha, std::int64_t sent) {
        std::lock_guard lock(r_.mutex);
        r_.store->set_upload_sent(sha, sent);
    }

    void finish(const detail::upload_row& u, int state, std::optional<std::string> code = std::nullopt,
                std::optional<std::string> message = std::nullopt) {
        std::lock_guard lock(r_.mutex);
        sqlite::write_transaction tx(r_.store->db());
        if (state == detail::upload_sent) r_.store->set_upload_sent(u.sha256, u.size);
        r_.store->end_upload(u.sha256, state, code, message);
        // Sent: the server has the bytes, so the folder's copy becomes a cached one.
        if (state == detail::upload_sent) r_.store->use_blob_file(u.sha256, u.size, r_.now_ms());
        tx.commit();
        if (state == detail::upload_sent) {
            ++report_.completed;
            r_.evict_blobs({});
        } else {
            ++report_.failed;
        }
    }

    // Sends one blob from the server's offset. A permanent refusal marks it failed and is not
    // an error of the call; anything else that stops it leaves it queued and is.
    result<void> send(const detail::upload_row& u) {
        if (r_.blobs.size(u.sha256) != u.size) {
            finish(u, detail::upload_failed, "missing_locally",
                   "the copy of '" + u.name + "' beside the replica is gone; attach the file again");
            return {};
        }
        const std::string path = "/v1/uploads/" + u.sha256;
        auto asked = exchange(blob_request(r_, ep_, "GET", path));
        if (!asked) return std::move(asked).err();
        if (asked->status != 200) return stop_error(*asked);
        auto at = read_upload_answer(*asked, u.size);
        if (!at) return std::move(at).err();
        if (at->complete) {  // from an earlier call, or another device sent the same bytes
            finish(u, detail::upload_sent);
            return {};
        }
        if (at->offset >= u.size)
            return make_error(errc::bad_response, "the server holds all of " + u.sha256 + " but says it is not complete");
        std::int64_t offset = at->offset;
        set_sent(u.sha256, offset);
        int moved = 0;  // upload_offset answers in a row: a server that keeps moving is an error
        while (offset < u.size) {
            if (over_budget()) return {};
            const auto length = std::min<std::int64_t>(static_cast<std::int64_t>(tuning::blob_chunk_bytes), u.size - offset);
            auto req = blob_request(r_, ep_, "PUT", path);
            req.headers.emplace_back("Content-Type", u.content_type);
            req.headers.emplace_back("Upload-Offset", std::to_string(offset));
            req.headers.emplace_back("Upload-Length", std::to_string(u.size));
            req.body = r_.blobs.read(u.sha256, offset, static_cast<std::size_t>(length));
            if (static_cast<std::int64_t>(req.body.size()) != length) {
                finish(u, detail::upload_failed, "missing_locally",
                       "the copy of '" + u.name + "' beside the replica is shorter than its reference");
                return {};
            }
            auto answer = exchange(req);
            report_.bytes_sent += length;
            if (!answer) return std::move(answer).err();
            if (answer->status == 200 || answer->status == 201) {
                auto now = read_upload_answer(*answer, u.size);
                if (!now) return std::move(now).err();
                moved = 0;
                if (now->complete) {
                    finish(u, detail::upload_sent);
                    tell(u, u.size);
                    return {};
                }
                if (now->offset >= u.size)
                    return make_error(errc::bad_response, "the server holds all of " + u.sha256 + " but says it is not complete");
                offset = now->offset;
                set_sent(u.sha256, offset);
                if (!tell(u, offset)) return make_error(errc::cancelled, "upload stopped by the progress callback");
                continue;
            }
            const auto err = error_object(*answer);
            const auto code = protocol::errc_from_name(err.is_object() ? err.value("code", "") : "");
            if (code == protocol::errc::upload_offset && err.contains("offset") && err["offset"].is_number_integer() &&
                ++moved <= 3) {
                // The server holds another offset than we thought (a chunk whose answer was
                // lost, another copy of this replica): go on from its.
                offset = std::clamp<std::int64_t>(err["offset"].get<std::int64_t>(), 0, u.size);
                set_sent(u.sha256, offset);
                continue;
            }
            if (refused_for_good(code)) {
                finish(u, detail::upload_failed, std::string(protocol::errc_name(code)), err.value("message", ""));
                return {};
            }
            return stop_error(*answer);
        }
        return {};
    }

    bool tell(const detail::upload_row& u, std::int64_t sent) {
        if (!o_.progress) return true;
        upload_progress p;
        p.sha256 = u.sha256;
        p.name = u.name;
        p.sent = sent;
        p.size = u.size;
        p.bytes_sent = report_.bytes_sent;
        return o_.progress(p);
    }

    replica::impl& r_;
    const upload_options& o_;
    const std::chrono::steady_clock::time_point started_;
    endpoint ep_;
    upload_report report_;
};

}  // namespace

result<upload_report> replica::impl::run_upload(const upload_options& o) { return upload_session(*this, o).run(); }

// Downloads in ranges of one chunk each, appended to `<sha>.part` and made durable one by one,
// so a cut link loses one range at most and the next call asks for the rest (Range: bytes=P-Q).
// The end shows as a range shorter than asked, or 416 when the part already holds every byte.
result<std::string> replica::impl::run_download(const std::string& sha256) {
    {
        std::lock_guard lock(mutex);
        const auto held = blobs.size(sha256);
        if (held && *held > 0) {
            sqlite::write_transaction tx(store->db());
            store->use_blob_file(sha256, *held, now_ms());
            tx.commit();
            return blobs.path(sha256);
        }
    }
    auto net = make_blob_transport();
    if (!net)
        return make_error(errc::unsupported,
                          "this build has no HTTP transport: give the replica one (replica_options::transport_override)");
    const auto ep = read_endpoint(*this);
    const std::string not_there = "blob " + sha256 + " is not on the server yet, or not this device's to read";
    for (;;) {
        const auto have = blobs.part_size(sha256);
        if (have > tuning::max_blob_bytes) {
            blobs.drop_part(sha256);
            return make_error(errc::bad_response, "the server sent more of " + sha256 + " than a blob may hold");
        }
        auto req = blob_request(*this, ep, "GET", "/v1/blobs/" + sha256);
        const auto last = have + static_cast<std::int64_t>(tuning::blob_chunk_bytes) - 1;
        req.headers.emplace_back("Range", "bytes=" + std::to_string(have) + "-" + std::to_string(last));
        auto answer = net->send(req, tuning::blob_request_timeout);
        if (!answer) return std::move(answer).err();
        if (answer->status == 404) return make_error(errc::not_found, not_there);
        if (answer->status == 416 && have > 0) break;  // the part holds the whole blob
        if (answer->status == 200) {
            // The whole blob, Range or not: it replaces what the part held.
            blobs.drop_part(sha256);
            if (answer->body.empty()) return make_error(errc::bad_response, "the server sent " + sha256 + " empty");
            blobs.append_part(sha256, answer->body);
            break;
        }
        if (answer->status != 206) {
            bool transient = false;
            std::optional<protocol::errc> code;
            return detail::answer_error(*answer, transient, code);
        }
        if (answer->body.empty()) break;
        blobs.append_part(sha256, answer->body);
        if (static_cast<std::int64_t>(answer->body.size()) < last - have + 1) break;
    }
    if (blobs.hash_part(sha256) != sha256) {
        blobs.drop_part(sha256);
        return make_error(errc::bad_response, "the bytes downloaded do not hash to " + sha256 + "; dropped");
    }
    const auto size = blobs.part_size(sha256);
    blobs.promote_part(sha256);
    std::lock_guard lock(mutex);
    {
        sqlite::write_transaction tx(store->db());
        store->use_blob_file(sha256, size, now_ms());
        tx.commit();
    }
    evict_blobs(sha256);
    return blobs.path(sha256);
}

}  // namespace fieldsync::client
