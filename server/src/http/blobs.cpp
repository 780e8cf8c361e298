#include "http/blobs.hpp"

#include "http/encoding.hpp"
#include "http/http_metrics.hpp"

#include <fieldsync/protocol/attachment.hpp>
#include <fieldsync/protocol/ids.hpp>

#include <boost/beast/core/string.hpp>

#include <chrono>

namespace fieldsync::server::detail {

namespace beast = boost::beast;
namespace proto = fieldsync::protocol;
using proto::errc;

namespace {

constexpr std::string_view k_server_name = "fieldsync/0.1";
using upload_result = http_metrics::upload_result;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The media type of a Content-Type field, without parameters, lower case.
std::string media_type(const request& req) {
    const auto f = req.find(http::field::content_type);
    if (f == req.end()) return {};
    auto v = trim(f->value());
    v = trim(v.substr(0, v.find(';')));
    std::string out(v);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::optional<std::int64_t> header_number(const request& req, std::string_view name) {
    const auto f = req.find(beast::string_view(name.data(), name.size()));
    if (f == req.end()) return std::nullopt;
    const auto v = trim(f->value());
    return proto::parse_decimal(std::string_view(v.data(), v.size()));
}

response json_status(const request& req, http::status status, const json& body) {
    return json_response(req.version(), req.keep_alive(), status, body);
}

json upload_body(const std::string& sha, std::int64_t offset, bool complete) {
    return {{"sha256", sha}, {"offset", offset}, {"complete", complete}};
}

// The same 404 for a blob not held and one the device may not read (SPEC.md, "Attachments").
response no_blob(const request& req, const std::string& sha) {
    return answer(req, err(errc::not_found, "no attachment " + sha + " (not sent by its device yet, or not yours to read)"));
}

std::int64_t utc_day_start(std::int64_t ms) { return ms - ms % (24LL * 3600 * 1000); }

// A kept blob whose row is missing (the server died between keeping the bytes and recording
// them) is recorded when it is next asked about; its type is read from its first bytes.
proto::expected<void> ensure_recorded(const blob_settings& b, const store_roles& st, const std::string& sha,
                                      std::int64_t size, const std::string& device_id) {
    auto meta = st.attachments.blob(sha);
    if (!meta) return std::move(meta).err();
    if (*meta) return {};
    auto head = b.store->read(sha, 0, 16);
    if (!head) return std::move(head).err();
    return st.attachments.keep_blob(
        blob_meta{sha, size, std::string(proto::sniff_content_type(*head)), device_id, now_ms()});
}

}  // namespace

response upload_status(const blob_settings& b, const store_roles& st, const admitted& a, const request& req) {
    const auto& sha = a.params[0];
    if (!b.store) return answer(req, err(errc::not_found, "this server keeps no attachments"));
    if (!proto::is_sha256_hex(sha))
        return answer(req, err(errc::bad_request, "an upload is named by the SHA-256 of its bytes: 64 lowercase hex digits"));
    auto size = b.store->size(sha);
    if (!size) return answer(req, size.err());
    if (*size) {
        if (auto r = ensure_recorded(b, st, sha, **size, a.dev->id); !r) return answer(req, r.err());
        return answer(req, upload_body(sha, **size, true));
    }
    auto held = b.store->upload(a.dev->id, sha);
    if (!held) return answer(req, held.err());
    // Every byte arrived but the server stopped before keeping the blob (killed between the
    // last chunk's fsync and the hash): it is kept now, as the last chunk's answer would have.
    if (*held && (*held)->offset == (*held)->length) {
        const auto length = (*held)->length;
        if (auto kept = b.store->complete(a.dev->id, sha); !kept) {
            if (kept.err().code != errc::blob_hash_mismatch) return answer(req, kept.err());
            return answer(req, upload_body(sha, 0, false));  // forgotten: send it again
        }
        if (auto r = ensure_recorded(b, st, sha, length, a.dev->id); !r) return answer(req, r.err());
        return answer(req, upload_body(sha, length, true));
    }
    return answer(req, upload_body(sha, *held ? (*held)->offset : 0, false));
}

response upload_chunk(const blob_settings& b, const store_roles& st, http_metrics* m, const admitted& a,
                      const request& req) {
    const auto& sha = a.params[0];
    const auto& dev = *a.dev;
    auto refuse = [&](upload_result r, proto::error e) {
        if (m) m->count_upload(r);
        return answer(req, e);
    };
    if (!b.store) return answer(req, err(errc::not_found, "this server keeps no attachments"));
    // 1. The request's own form.
    if (!proto::is_sha256_hex(sha))
        return answer(req, err(errc::bad_request, "an upload is named by the SHA-256 of its bytes: 64 lowercase hex digits"));
    const auto length = header_number(req, "Upload-Length");
    const auto offset = header_number(req, "Upload-Offset");
    if (!length || *length < 1) return answer(req, err(errc::bad_request, "Upload-Length must be the blob's size in bytes"));
    if (!offset) return answer(req, err(errc::bad_request, "Upload-Offset must be where this chunk starts"));
    const auto& chunk = req.body();
    if (chunk.empty()) return answer(req, err(errc::bad_request, "a chunk holds at least one byte"));
    if (static_cast<std::int64_t>(chunk.size()) > tuning::max_chunk_bytes)
        return answer(req, err(errc::body_too_large, "a chunk holds at most " + std::to_string(tuning::max_chunk_bytes) + " bytes"));
    if (*offset > *length - static_cast<std::int64_t>(chunk.size()))
        return answer(req, err(errc::bad_request, "the chunk runs past Upload-Length"));
    // 2, 3. The blob's size and type.
    if (*length > b.max_blob_bytes)
        return refuse(upload_result::too_large,
                      err(errc::blob_too_large, "an attachment may be at most " + std::to_string(b.max_blob_bytes) +
                                                    " bytes; this one is " + std::to_string(*length)));
    const auto type = media_type(req);
    if (!proto::content_type_allowed(type))
        return refuse(upload_result::type_refused,
                      err(errc::blob_type_refused, "attachments are JPEG, PNG or WebP photos or PDF files, not '" + type + "'"));
    // 4. Held already (this device's earlier upload, or another device's): nothing to keep.
    auto size = b.store->size(sha);
    if (!size) return answer(req, size.err());
    if (*size) {
        if (auto r = ensure_recorded(b, st, sha, **size, dev.id); !r) return answer(req, r.err());
        return answer(req, upload_body(sha, **size, true));
    }
    // 5. The offset.
    auto held = b.store->upload(dev.id, sha);
    if (!held) return answer(req, held.err());
    const std::int64_t at = *held ? (*held)->offset : 0;
    if (*offset != at) {
        auto body = proto::encode(err(errc::upload_offset, "the server holds " + std::to_string(at) +
                                                               " bytes of this upload; resend from there"));
        body["error"]["offset"] = at;
        return json_status(req, http::status::conflict, body);
    }
    // 6. The day's allowance, when an upload begins.
    if (!*held) {
        const auto now = now_ms();
        auto used = st.attachments.blob_bytes_since(dev.id, utc_day_start(now));
        if (!used) return answer(req, used.err());
        auto open = b.store->uploads();
        if (!open) return answer(req, open.err());
        std::int64_t pending = 0;
        for (const auto& u : *open)
            if (u.device_id == dev.id && u.sha256 != sha) pending += u.length;
        if (*used + pending + *length > b.daily_quota_bytes) {
            if (m) m->count_upload(upload_result::quota);
            const auto wait_s = (utc_day_start(now) + 24LL * 3600 * 1000 - now) / 1000 + 1;
            auto res = answer(req, err(errc::blob_quota, "this device has sent its " +
                                                             std::to_string(b.daily_quota_bytes) +
                                                             " bytes of attachments for today; retry in " +
                                                             std::to_string(wait_s) + " s"));
            res.set(http::field::retry_after, std::to_string(wait_s));
            return res;
        }
    }
    // 7. The first bytes must be of the type named.
    if (*offset == 0 && proto::sniff_content_type(chunk) != type) {
        // Nothing of a refused upload is kept (a failure to forget is gc's to finish).
        if (*held) (void)b.store->forget_upload(dev.id, sha);
        return refuse(upload_result::type_refused,
                      err(errc::blob_type_refused, "the file's first bytes are not those of " + type +
                                                       (chunk.size() < 12 ? " (send at least 12 bytes in the first chunk)" : "")));
    }
    auto next = b.store->append(dev.id, sha, *length, *offset, chunk);
    if (!next) {
        if (next.err().code == errc::upload_offset) {
            // Another request of the same upload got there first.
            auto now = b.store->upload(dev.id, sha);
            auto body = proto::encode(next.err());
            body["error"]["offset"] = now && *now ? (*now)->offset : 0;
            return json_status(req, http::status::conflict, body);
        }
        return answer(req, next.err());
    }
    if (m) m->count_blob_bytes_in(chunk.size());
    if (*next < *length) return answer(req, upload_body(sha, *next, false));

    auto kept = b.store->complete(dev.id, sha);
    if (!kept) {
        if (kept.err().code == errc::blob_hash_mismatch) return refuse(upload_result::hash_mismatch, kept.err());
        return answer(req, kept.err());
    }
    if (auto r = st.attachments.keep_blob(blob_meta{sha, *length, type, dev.id, now_ms()}); !r) return answer(req, r.err());
    if (m) m->count_upload(upload_result::kept);
    return json_status(req, http::status::created, upload_body(sha, *length, true));
}

response blob_download(const blob_settings& b, const store_roles& st, http_metrics* m, const admitted& a,
                       const request& req) {
    const auto& sha = a.params[0];
    if (!b.store || !proto::is_sha256_hex(sha)) return no_blob(req, sha);
    auto readable = st.attachments.blob_readable(scope::of(*a.dev), sha);
    if (!readable) return answer(req, readable.err());
    auto size = b.store->size(sha);
    if (!size) return answer(req, size.err());
    // Admins may fetch any kept blob, named or not (a review of what a device sent).
    if (!*size || (!*readable && a.dev->role != device_role::admin)) return no_blob(req, sha);
    const std::int64_t total = **size;

    std::string type;
    if (auto meta = st.attachments.blob(sha); meta && *meta) type = (*meta)->content_type;
    if (type.empty()) {
        auto head = b.store->read(sha, 0, 16);
        if (!head) return answer(req, head.err());
        type = std::string(proto::sniff_content_type(*head));
        if (type.empty()) type = "application/octet-stream";
    }

    // One range (RFC 9110, 14.1.2): A-B, A- or -N. Anything else is ignored: the whole blob.
    std::int64_t from = 0, to = total - 1;
    bool ranged = false;
    if (const auto r = req.find(http::field::range); r != req.end()) {
        auto spec = trim(r->value());
        if (spec.size() > 6 && beast::iequals(spec.substr(0, 6), "bytes=") && spec.find(',') == std::string_view::npos) {
            spec.remove_prefix(6);
            const auto dash = spec.find('-');
            if (dash != std::string_view::npos) {
                const auto first = std::string_view(spec.data(), dash);
                const auto last = std::string_view(spec.data() + dash + 1, spec.size() - dash - 1);
                const auto a1 = first.empty() ? std::nullopt : proto::parse_decimal(first);
                const auto b1 = last.empty() ? std::nullopt : proto::parse_decimal(last);
                if (a1 && (last.empty() || (b1 && *b1 >= *a1))) {
                    if (*a1 >= total) {
                        auto res = answer(req, err(errc::range_not_satisfiable,
                                                   "the attachment has " + std::to_string(total) + " bytes"));
                        res.set(http::field::content_range, "bytes */" + std::to_string(total));
                        return res;
                    }
                    from = *a1;
                    to = b1 ? std::min(*b1, total - 1) : total - 1;
                    ranged = true;
                } else if (first.empty() && b1 && *b1 > 0) {
                    from = std::max<std::int64_t>(0, total - *b1);
                    ranged = true;
                }
            }
        }
    }
    auto bytes = b.store->read(sha, from, to - from + 1);
    if (!bytes) return answer(req, bytes.err());
    response res{ranged ? http::status::partial_content : http::status::ok, req.version()};
    res.set(http::field::server, k_server_name);
    res.set(http::field::content_type, type);
    res.set(http::field::cache_control, "private, max-age=31536000, immutable");
    res.set(http::field::etag, "\"" + sha + "\"");
    res.set(http::field::accept_ranges, "bytes");
    res.set("X-Content-Type-Options", "nosniff");
    if (ranged)
        res.set(http::field::content_range,
                "bytes " + std::to_string(from) + "-" + std::to_string(from + static_cast<std::int64_t>(bytes->size()) - 1) +
                    "/" + std::to_string(total));
    res.keep_alive(req.keep_alive());
    if (m) m->count_blob_bytes_out(bytes->size());
    res.body() = std::move(*bytes);
    res.prepare_payload();
    return res;
}

}  // namespace fieldsync::server::detail
