// The C ABI (fieldsync.h): each function converts its arguments, calls the C++ API and turns
// every failure, exceptions included, into an fs_errc. No exception crosses this file's
// functions.

#include <fieldsync/client/replica.hpp>
#include <fieldsync/fieldsync.h>
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

using namespace fieldsync::client;
namespace protocol = fieldsync::protocol;

static_assert(FS_ERR_INTERNAL == static_cast<int>(errc::internal), "fs_errc must mirror client::errc");
static_assert(FS_ERR_CLIENT_TOO_OLD == static_cast<int>(errc::client_too_old), "fs_errc must mirror client::errc");
static_assert(FS_ERR_TLS == static_cast<int>(errc::tls), "fs_errc must mirror client::errc");
static_assert(FS_ERR_UNSUPPORTED == static_cast<int>(errc::unsupported), "fs_errc must mirror client::errc");
static_assert(FS_STATE_REJECTED == static_cast<int>(sync_state::rejected), "fs_state must mirror sync_state");

struct fs_replica {
    std::unique_ptr<replica> r;
    mutable std::mutex m;  // guards last_*
    int last_code = FS_OK;
    std::string last_message;
};

struct fs_http_response {
    int status = 0;
    std::string body;
};

namespace {

void fill(fs_error* out, int code, const std::string& message) {
    if (!out) return;
    out->code = code;
    const auto n = std::min(message.size(), static_cast<std::size_t>(FS_ERROR_MESSAGE_MAX - 1));
    std::memcpy(out->message, message.data(), n);
    out->message[n] = '\0';
}

int report(fs_replica* h, fs_error* out, int code, const std::string& message) {
    fill(out, code, message);
    if (h) {
        std::lock_guard lock(h->m);
        h->last_code = code;
        h->last_message = message;
    }
    return code;
}

int report(fs_replica* h, fs_error* out, const error& e) {
    const int code = e.code.category() == client_category() ? e.code.value() : FS_ERR_INTERNAL;
    return report(h, out, code, e.message);
}

int ok(fs_replica* h, fs_error* out) { return report(h, out, FS_OK, std::string()); }

// Runs `body` (which reports its own outcome); any exception becomes FS_ERR_INTERNAL and
// `failed` is returned.
template <class T, class F>
T guard(fs_replica* h, fs_error* out, T failed, F&& body) noexcept {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        report(h, out, FS_ERR_INTERNAL, "out of memory");
    } catch (const std::exception& e) {
        report(h, out, FS_ERR_INTERNAL, e.what());
    } catch (...) {
        report(h, out, FS_ERR_INTERNAL, "unknown exception");
    }
    return failed;
}

char* dup(const std::string& s) {
    auto* p = static_cast<char*>(std::malloc(s.size() + 1));
    if (!p) throw std::bad_alloc();
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
    return p;
}

std::string str(const char* s) { return s ? std::string(s) : std::string(); }

json record_json(const record& r) {
    json j = {{"collection", r.collection}, {"id", r.id},           {"unit_id", r.unit_id},
              {"data", r.data},             {"deleted", r.deleted}, {"version", r.version},
              {"state", sync_state_name(r.state)}};
    if (r.reason) j["reason"] = {{"code", protocol::errc_name(r.reason->code)}, {"message", r.reason->message}};
    if (r.conflict_id) j["conflict_id"] = *r.conflict_id;
    if (!r.held.is_null()) j["held"] = r.held;
    if (r.resolution) j["resolution"] = protocol::encode(*r.resolution);
    return j;
}

// Parses JSON handed in by the app; reports and returns nullopt on failure.
std::optional<json> parse_in(fs_replica* h, fs_error* out, const char* text, const char* what) {
    if (!text) {
        report(h, out, FS_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL");
        return std::nullopt;
    }
    auto parsed = protocol::parse_json(text, protocol::tuning::max_json_depth);
    if (!parsed) {
        const int code = parsed.err().code == protocol::errc::bad_utf8 ? FS_ERR_INVALID_UTF8 : FS_ERR_INVALID_JSON;
        report(h, out, code, std::string(what) + ": " + parsed.err().message);
        return std::nullopt;
    }
    return std::move(*parsed);
}

bool need(fs_replica* h, fs_error* out, bool cond, const char* what) {
    if (!cond) report(h, out, FS_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL");
    return cond;
}

// A transport that hands each request to the app's callback.
class callback_transport final : public transport {
public:
    callback_transport(fs_transport_fn fn, void* user) : fn_(fn), user_(user) {}
    result<http_response> send(const http_request& request, std::chrono::milliseconds timeout) override {
        std::string headers;
        for (const auto& [name, value] : request.headers) headers += name + ": " + value + "\r\n";
        fs_http_response response;
        const int rc = fn_(user_, request.method.c_str(), request.url.c_str(), headers.c_str(), request.body.data(),
                           request.body.size(), static_cast<int64_t>(timeout.count()), &response);
        if (rc != 0) return make_error(errc::network, "the app's transport callback failed (" + std::to_string(rc) + ")");
        if (response.status < 100 || response.status > 599)
            return make_error(errc::network, "the app's transport callback gave no HTTP status");
        return http_response{response.status, std::move(response.body)};
    }

private:
    fs_transport_fn fn_;
    void* user_;
};

char* attachment_out(fs_replica* h, fs_error* error, const result<protocol::attachment_ref>& r) {
    if (!r) return report(h, error, r.err()), nullptr;
    char* out = dup(protocol::to_json(*r).dump());
    ok(h, error);
    return out;
}

}  // namespace

extern "C" {

fs_replica* fs_replica_open(const char* path, fs_error* error) {
    return guard<fs_replica*>(nullptr, error, nullptr, [&]() -> fs_replica* {
        if (!need(nullptr, error, path, "path")) return nullptr;
        replica_options o;
        o.path = path;
        auto r = replica::open(std::move(o));
        if (!r) {
            report(nullptr, error, r.err());
            return nullptr;
        }
        auto* h = new fs_replica;
        h->r = std::move(*r);
        ok(nullptr, error);
        return h;
    });
}

void fs_replica_close(fs_replica* replica) { delete replica; }

int fs_replica_configure(fs_replica* h, const char* server_url, const char* token, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL");
    return guard<int>(h, error, FS_ERR_INTERNAL, [&]() -> int {
        if (!need(h, error, server_url && token, "server_url or token")) return FS_ERR_INVALID_ARGUMENT;
        auto r = h->r->configure(server_url, token);
        return r ? ok(h, error) : report(h, error, r.err());
    });
}

char* fs_replica_put(fs_replica* h, const char* collection, const char* id, const char* unit_id, const char* text,
                     fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), nullptr;
    return guard<char*>(h, error, nullptr, [&]() -> char* {
        if (!need(h, error, collection, "collection")) return nullptr;
        auto data = parse_in(h, error, text, "record JSON");
        if (!data) return nullptr;
        auto r = h->r->put(collection, *data, put_options{str(id), str(unit_id)});
        if (!r) return report(h, error, r.err()), nullptr;
        char* out = dup(r->id);
        ok(h, error);
        return out;
    });
}

char* fs_replica_put_many(fs_replica* h, const char* text, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), nullptr;
    return guard<char*>(h, error, nullptr, [&]() -> char* {
        auto arr = parse_in(h, error, text, "records JSON");
        if (!arr) return nullptr;
        if (!arr->is_array()) return report(h, error, FS_ERR_INVALID_ARGUMENT, "records JSON must be an array"), nullptr;
        std::vector<replica::put_item> items;
        items.reserve(arr->size());
        for (std::size_t i = 0; i < arr->size(); ++i) {
            const auto& it = (*arr)[i];
            auto text_of = [&](const char* key) {
                const auto f = it.find(key);
                return f != it.end() && f->is_string() ? f->get<std::string>() : std::string();
            };
            if (!it.is_object() || !it.contains("data"))
                return report(h, error, FS_ERR_INVALID_ARGUMENT,
                              "item " + std::to_string(i) + " must be {\"collection\", \"id\"?, \"unit_id\", \"data\"}"),
                       nullptr;
            items.push_back({text_of("collection"), it["data"], put_options{text_of("id"), text_of("unit_id")}});
        }
        auto r = h->r->put_many(items);
        if (!r) return report(h, error, r.err()), nullptr;
        json ids = json::array();
        for (const auto& rec : *r) ids.push_back(rec.id);
        char* out = dup(ids.dump());
        ok(h, error);
        return out;
    });
}

int fs_replica_patch(fs_replica* h, const char* collection, const char* id, const char* json_patch, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL");
    return guard<int>(h, error, FS_ERR_INTERNAL, [&]() -> int {
        if (!need(h, error, collection && id, "collection or id")) return FS_ERR_INVALID_ARGUMENT;
        auto patch = parse_in(h, error, json_patch, "merge patch JSON");
        if (!patch) return fs_replica_last_error_code(h);
        auto r = h->r->patch(collection, id, *patch);
        return r ? ok(h, error) : report(h, error, r.err());
    });
}

int fs_replica_remove(fs_replica* h, const char* collection, const char* id, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL");
    return guard<int>(h, error, FS_ERR_INTERNAL, [&]() -> int {
        if (!need(h, error, collection && id, "collection or id")) return FS_ERR_INVALID_ARGUMENT;
        auto r = h->r->remove(collection, id);
        return r ? ok(h, error) : report(h, error, r.err());
    });
}

int fs_replica_discard(fs_replica* h, const char* collection, const char* id, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL");
    return guard<int>(h, error, FS_ERR_INTERNAL, [&]() -> int {
        if (!need(h, error, collection && id, "collection or id")) return FS_ERR_INVALID_ARGUMENT;
        auto r = h->r->discard(collection, id);
        return r ? ok(h, error) : report(h, error, r.err());
    });
}

char* fs_replica_get(fs_replica* h, const char* collection, const char* id, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), nullptr;
    return guard<char*>(h, error, nullptr, [&]() -> char* {
        if (!need(h, error, collection && id, "collection or id")) return nullptr;
        auto r = h->r->get(collection, id);
        if (!r) return report(h, error, r.err()), nullptr;
        ok(h, error);
        if (!*r) return nullptr;
        return dup(record_json(**r).dump());
    });
}

char* fs_replica_list(fs_replica* h, const char* collection, const char* unit_id, const char* field,
                      const char* value_json, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), nullptr;
    return guard<char*>(h, error, nullptr, [&]() -> char* {
        if (!need(h, error, collection, "collection")) return nullptr;
        query q;
        q.collection = collection;
        q.unit_id = str(unit_id);
        if (field) {
            q.field = field;
            auto v = parse_in(h, error, value_json ? value_json : "null", "value JSON");
            if (!v) return nullptr;
            q.value = std::move(*v);
        }
        auto r = h->r->list(q);
        if (!r) return report(h, error, r.err()), nullptr;
        json arr = json::array();
        for (const auto& rec : *r) arr.push_back(record_json(rec));
        char* out = dup(arr.dump());
        ok(h, error);
        return out;
    });
}

char* fs_replica_list_held(fs_replica* h, const char* collection, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), nullptr;
    return guard<char*>(h, error, nullptr, [&]() -> char* {
        json arr = json::array();
        for (const auto state : {sync_state::conflict, sync_state::rejected}) {
            query q;
            q.collection = str(collection);
            q.include_deleted = true;
            q.state = state;
            auto r = h->r->list(q);
            if (!r) return report(h, error, r.err()), nullptr;
            for (const auto& rec : *r) arr.push_back(record_json(rec));
        }
        char* out = dup(arr.dump());
        ok(h, error);
        return out;
    });
}

char* fs_replica_status(fs_replica* h, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), nullptr;
    return guard<char*>(h, error, nullptr, [&]() -> char* {
        auto r = h->r->status();
        if (!r) return report(h, error, r.err()), nullptr;
        const json out = {{"pending", r->pending}, {"conflicts", r->conflicts}, {"rejected", r->rejected},
                          {"records", r->records},  {"cursor", r->cursor},       {"server_url", r->server_url}};
        char* text = dup(out.dump());
        ok(h, error);
        return text;
    });
}

int64_t fs_replica_pending_count(fs_replica* h, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), -1;
    return guard<int64_t>(h, error, -1, [&]() -> int64_t {
        auto r = h->r->pending_count();
        if (!r) return report(h, error, r.err()), -1;
        ok(h, error);
        return *r;
    });
}

int fs_replica_record_state(fs_replica* h, const char* collection, const char* id, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), FS_STATE_UNKNOWN;
    return guard<int>(h, error, FS_STATE_UNKNOWN, [&]() -> int {
        if (!need(h, error, collection && id, "collection or id")) return FS_STATE_UNKNOWN;
        auto r = h->r->get(collection, id);
        if (!r) return report(h, error, r.err()), FS_STATE_UNKNOWN;
        ok(h, error);
        return *r ? static_cast<int>((*r)->state) : FS_STATE_UNKNOWN;
    });
}

int fs_replica_sync(fs_replica* h, fs_progress_fn progress, void* user, fs_sync_report* out, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL");
    return guard<int>(h, error, FS_ERR_INTERNAL, [&]() -> int {
        progress_fn fn;
        if (progress)
            fn = [&](const sync_progress& p) {
                return progress(user, static_cast<int>(p.phase), p.pushed, p.to_push, p.pulled, p.bytes_sent,
                                p.bytes_received) != 0;
            };
        auto r = h->r->sync(fn);
        if (!r) return report(h, error, r.err());
        if (out) {
            out->pushed = r->pushed;
            out->applied = r->applied;
            out->merged = r->merged;
            out->conflicts = r->conflicts;
            out->rejected = r->rejected;
            out->pulled = r->pulled;
            out->bytes_sent = r->bytes_sent;
            out->bytes_received = r->bytes_received;
            out->duration_ms = r->duration.count();
            out->decided = r->decided;
        }
        return ok(h, error);
    });
}

int fs_http_response_set(fs_http_response* response, int status, const char* body, size_t body_len) {
    if (!response || (!body && body_len)) return FS_ERR_INVALID_ARGUMENT;
    try {
        response->status = status;
        response->body.assign(body ? body : "", body_len);
        return FS_OK;
    } catch (...) {
        return FS_ERR_INTERNAL;
    }
}

int fs_replica_set_transport(fs_replica* h, fs_transport_fn fn, void* user, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL");
    return guard<int>(h, error, FS_ERR_INTERNAL, [&]() -> int {
        auto r = h->r->set_transport(fn ? std::make_shared<callback_transport>(fn, user) : nullptr);
        return r ? ok(h, error) : report(h, error, r.err());
    });
}

int fs_replica_set_encoding(fs_replica* h, int format, int gzip, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL");
    if (format != FS_BODY_JSON && format != FS_BODY_CBOR)
        return report(h, error, FS_ERR_INVALID_ARGUMENT, "body_format must be FS_BODY_JSON or FS_BODY_CBOR");
    return guard<int>(h, error, FS_ERR_INTERNAL, [&]() -> int {
        auto r = h->r->set_encoding(format == FS_BODY_CBOR ? body_format::cbor : body_format::json, gzip != 0);
        return r ? ok(h, error) : report(h, error, r.err());
    });
}

int fs_replica_set_ca_file(fs_replica* h, const char* ca_file, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL");
    return guard<int>(h, error, FS_ERR_INTERNAL, [&]() -> int {
        auto o = h->r->http_options();  // keeps the gzip choice of fs_replica_set_encoding
        o.ca_file = str(ca_file);
        auto r = h->r->set_http_options(o);
        return r ? ok(h, error) : report(h, error, r.err());
    });
}

char* fs_replica_attach(fs_replica* h, const char* collection, const char* id, const char* field, const char* file_path,
                        const char* name, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), nullptr;
    return guard<char*>(h, error, nullptr, [&]() -> char* {
        if (!need(h, error, collection && id && field && file_path, "collection, id, field or file_path")) return nullptr;
        return attachment_out(h, error, h->r->attach(collection, id, field, file_path, str(name)));
    });
}

char* fs_replica_attach_bytes(fs_replica* h, const char* collection, const char* id, const char* field,
                              const void* bytes, size_t len, const char* name, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), nullptr;
    return guard<char*>(h, error, nullptr, [&]() -> char* {
        if (!need(h, error, collection && id && field && name && (bytes || len == 0),
                  "collection, id, field, bytes or name"))
            return nullptr;
        const std::string_view data(static_cast<const char*>(bytes), bytes ? len : 0);
        return attachment_out(h, error, h->r->attach_bytes(collection, id, field, data, name));
    });
}

int fs_replica_upload(fs_replica* h, int64_t byte_budget, fs_upload_progress_fn progress, void* user,
                      fs_upload_report* out, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL");
    return guard<int>(h, error, FS_ERR_INTERNAL, [&]() -> int {
        upload_options o;
        o.byte_budget = byte_budget > 0 ? byte_budget : 0;
        if (progress)
            o.progress = [&](const upload_progress& p) {
                return progress(user, p.sha256.c_str(), p.sent, p.size, p.bytes_sent) != 0;
            };
        auto r = h->r->upload(o);
        if (!r) return report(h, error, r.err());
        if (out) {
            out->completed = r->completed;
            out->failed = r->failed;
            out->bytes_sent = r->bytes_sent;
            out->waiting = r->waiting;
            out->duration_ms = r->duration.count();
        }
        return ok(h, error);
    });
}

char* fs_replica_upload_queue(fs_replica* h, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), nullptr;
    return guard<char*>(h, error, nullptr, [&]() -> char* {
        auto r = h->r->upload_queue();
        if (!r) return report(h, error, r.err()), nullptr;
        json arr = json::array();
        for (const auto& e : *r) {
            json j = protocol::to_json(e.ref);
            j["state"] = upload_state_name(e.state);
            j["sent"] = e.sent;
            if (e.state == upload_state::failed) j["error"] = {{"code", e.error_code}, {"message", e.error_message}};
            arr.push_back(std::move(j));
        }
        char* out = dup(arr.dump());
        ok(h, error);
        return out;
    });
}

char* fs_replica_download(fs_replica* h, const char* sha256, fs_error* error) {
    if (!h) return report(nullptr, error, FS_ERR_INVALID_ARGUMENT, "replica is NULL"), nullptr;
    return guard<char*>(h, error, nullptr, [&]() -> char* {
        if (!need(h, error, sha256, "sha256")) return nullptr;
        auto r = h->r->download(sha256);
        if (!r) return report(h, error, r.err()), nullptr;
        char* out = dup(*r);
        ok(h, error);
        return out;
    });
}

int fs_replica_last_error_code(const fs_replica* h) {
    if (!h) return FS_ERR_INVALID_ARGUMENT;
    std::lock_guard lock(h->m);
    return h->last_code;
}

const char* fs_replica_last_error_message(const fs_replica* h) {
    if (!h) return "replica is NULL";
    std::lock_guard lock(h->m);
    return h->last_message.c_str();
}

void fs_free(void* p) { std::free(p); }

const char* fs_version(void) { return "0.1.0"; }

}  // extern "C"
