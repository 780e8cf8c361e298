#include "http/router.hpp"

#include "http/blobs.hpp"
#include "http/encoding.hpp"
#include "http/internal_error.hpp"
#include "http/devices.hpp"
#include "http/reports.hpp"
#include "http/http_metrics.hpp"
#include "http/review.hpp"
#include "http/static_files.hpp"

#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/version.hpp>

#include <iostream>
#include <limits>
#include <memory>

namespace fieldsync::server::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace proto = fieldsync::protocol;
using proto::errc;

namespace {

constexpr std::string_view k_server_name = "fieldsync/0.1";


std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The JSON views of the read endpoints (SPEC.md, "Records" and "Conflicts").
json to_json(const record_view& r) {
    return {{"collection", r.collection}, {"id", r.id},     {"unit_id", r.unit_id},
            {"version", r.version},       {"deleted", r.deleted},
            {"data", r.deleted ? json(nullptr) : r.data},
            {"seq", r.seq},               {"hlc", r.hlc},   {"updated_ms", r.updated_ms}};
}

json to_json(const history_entry& h) {
    return {{"version", h.version},     {"seq", h.seq},
            {"deleted", h.deleted},     {"data", h.deleted ? json(nullptr) : h.data},
            {"unit_id", h.unit_id},     {"device_id", h.device_id},
            {"device_name", h.device_name ? json(*h.device_name) : json(nullptr)},
            {"change_id", h.change_id}, {"hlc", h.hlc},
            {"server_ms", h.server_ms}, {"how", h.how},
            {"lost", h.lost.is_null() ? json::object() : h.lost}};
}

// The handshake's refusals carry the server's versions, so a client can say what to upgrade.
response version_refusal(const request& req, const proto::error& e, const proto::server_versions& v) {
    auto body = proto::encode(e);
    body["error"]["server"] = proto::encode(v);
    return json_response(req.version(), req.keep_alive(), static_cast<http::status>(proto::http_status(e.code)), body);
}

// Splits the path into decoded segments; the leading '/' is required.
std::optional<std::vector<std::string>> split_path(std::string_view path) {
    if (path.empty() || path.front() != '/') return std::nullopt;
    path.remove_prefix(1);
    std::vector<std::string> out;
    // Decoding after splitting keeps an encoded '/' (%2F) inside its segment.
    while (true) {
        const auto slash = path.find('/');
        auto seg = percent_decode(path.substr(0, slash), false);
        if (!seg) return std::nullopt;
        out.push_back(std::move(*seg));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> split_query(std::string_view q) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!q.empty()) {
        const auto amp = q.find('&');
        const auto part = q.substr(0, amp);
        if (!part.empty()) {
            const auto eq = part.find('=');
            auto k = percent_decode(part.substr(0, eq), true);
            auto v = percent_decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), true);
            if (!k || !v) return std::nullopt;
            out.emplace_back(std::move(*k), std::move(*v));
        }
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    return out;
}

struct route_spec {
    endpoint where;
    http::verb method;
    std::string_view allow;
};

// Matches decoded segments against the routes; params receive the variable segments.
std::optional<route_spec> match(const std::vector<std::string>& s, std::vector<std::string>& params, http::verb method) {
    const auto n = s.size();
    // The review page (issue 5): static files, no token (the page asks for one).
    if (n >= 1 && s[0] == "admin") {
        params.assign(s.begin() + 1, s.end());
        return route_spec{endpoint::admin_page, http::verb::get, "GET"};
    }
    // The field app (SPEC.md, "GET /app/"): static files, no token (it enrols itself).
    if (n >= 1 && s[0] == "app") {
        params.assign(s.begin() + 1, s.end());
        return route_spec{endpoint::app_page, http::verb::get, "GET"};
    }
    // Prometheus scrapes /metrics by default; an admin token is required (device ids are in it).
    if (n == 1 && s[0] == "metrics") return route_spec{endpoint::metrics, http::verb::get, "GET"};
    if (n < 2 || s[0] != "v1") return std::nullopt;
    if (n == 2 && s[1] == "health") return route_spec{endpoint::health, http::verb::get, "GET"};
    if (n == 2 && s[1] == "sync") return route_spec{endpoint::sync, http::verb::post, "POST"};
    if (n == 2 && s[1] == "schema") return route_spec{endpoint::schema, http::verb::get, "GET"};
    if (n == 2 && s[1] == "me") return route_spec{endpoint::me, http::verb::get, "GET"};
    if (n == 2 && s[1] == "enrol") return route_spec{endpoint::enrol, http::verb::post, "POST"};
    if (s[1] == "records" && (n == 4 || (n == 5 && s[4] == "history")) && !s[2].empty() && !s[3].empty()) {
        params = {s[2], s[3]};
        return route_spec{n == 4 ? endpoint::record : endpoint::history, http::verb::get, "GET"};
    }
    if (s[1] == "conflicts" && n == 2) return route_spec{endpoint::conflicts, http::verb::get, "GET"};
    if (s[1] == "conflicts" && n == 3 && !s[2].empty()) {
        params = {s[2]};
        return route_spec{endpoint::conflict, http::verb::get, "GET"};
    }
    if (s[1] == "conflicts" && n == 4 && !s[2].empty() && (s[3] == "resolve" || s[3] == "preview")) {
        params = {s[2]};
        return route_spec{s[3] == "resolve" ? endpoint::resolve : endpoint::preview, http::verb::post, "POST"};
    }
    if (s[1] == "devices" && n == 2) return route_spec{endpoint::devices, http::verb::get, "GET"};
    if (s[1] == "devices" && n == 4 && !s[2].empty() && s[3] == "enrol") {
        params = {s[2]};
        return route_spec{endpoint::device_enrol, http::verb::post, "POST"};
    }
    // Attachments (SPEC.md, "Attachments"): one path, two methods.
    if (s[1] == "uploads" && n == 3) {
        params = {s[2]};
        if (method == http::verb::put) return route_spec{endpoint::upload_chunk, http::verb::put, "GET, PUT"};
        return route_spec{endpoint::upload_status, http::verb::get, "GET, PUT"};
    }
    if (s[1] == "blobs" && n == 3) {
        params = {s[2]};
        return route_spec{endpoint::blob, http::verb::get, "GET"};
    }
    if (s[1] == "reports" && n == 2) return route_spec{endpoint::reports, http::verb::get, "GET"};
    if (s[1] == "reports" && n == 3 && !s[2].empty()) {
        params = {s[2]};
        return route_spec{endpoint::report, http::verb::get, "GET"};
    }
    return std::nullopt;
}

// 429 for an address past its allowance of failed sign-ins (guard.hpp); the connection closes.
response too_many_failures(const request& req, std::chrono::seconds wait) {
    auto res = answer(req, err(errc::rate_limited, "too many failed sign-ins from this address; retry in " +
                                                       std::to_string(wait.count()) + " s"));
    res.set(http::field::retry_after, std::to_string(wait.count()));
    res.keep_alive(false);
    return res;
}

bool is_json_media_type(std::string_view content_type) {
    const auto semi = content_type.find(';');
    return beast::iequals(trim(content_type.substr(0, semi)), "application/json");
}

}  // namespace

std::string_view route_template(endpoint e) noexcept {
    switch (e) {
        case endpoint::health: return "/v1/health";
        case endpoint::sync: return "/v1/sync";
        case endpoint::record: return "/v1/records/{collection}/{id}";
        case endpoint::history: return "/v1/records/{collection}/{id}/history";
        case endpoint::conflicts: return "/v1/conflicts";
        case endpoint::conflict: return "/v1/conflicts/{id}";
        case endpoint::resolve: return "/v1/conflicts/{id}/resolve";
        case endpoint::preview: return "/v1/conflicts/{id}/preview";
        case endpoint::admin_page: return "/admin/{file}";
        case endpoint::reports: return "/v1/reports";
        case endpoint::report: return "/v1/reports/{name}";
        case endpoint::metrics: return "/metrics";
        case endpoint::schema: return "/v1/schema";
        case endpoint::me: return "/v1/me";
        case endpoint::enrol: return "/v1/enrol";
        case endpoint::app_page: return "/app/{file}";
        case endpoint::devices: return "/v1/devices";
        case endpoint::device_enrol: return "/v1/devices/{id}/enrol";
        case endpoint::upload_status: return "GET /v1/uploads/{sha256}";
        case endpoint::upload_chunk: return "PUT /v1/uploads/{sha256}";
        case endpoint::blob: return "/v1/blobs/{sha256}";
        case endpoint::unmatched: return "unmatched";
    }
    return "unmatched";
}

response json_text_response(unsigned version, bool keep_alive, http::status status, std::string body) {
    response res{status, version};
    res.set(http::field::server, k_server_name);
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

response json_response(unsigned version, bool keep_alive, http::status status, const json& body) {
    // Input was checked to be valid UTF-8, so `replace` never fires for it; it only keeps a
    // byte that slipped into stored data from turning an answer into an exception.
    return json_text_response(version, keep_alive, status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

response error_response(unsigned version, bool keep_alive, const proto::error& e) {
    auto res = json_response(version, keep_alive, static_cast<http::status>(proto::http_status(e.code)),
                             proto::encode(e));
    if (e.code == errc::unauthorized) res.set(http::field::www_authenticate, "Bearer");
    return res;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) return std::nullopt;
            const int hi = hex(text[i + 1]);
            const int lo = hex(text[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::variant<admitted, refusal> router::admit(const request& req, const boost::asio::ip::address& remote,
                                               endpoint* route) const {
    const std::string_view target = req.target();
    const auto qmark = target.find('?');
    auto segments = split_path(target.substr(0, qmark));
    if (!segments) return answer(req, err(errc::bad_request, "the request path has a malformed %-escape"));

    admitted a;
    const auto spec = match(*segments, a.params, req.method());
    if (!spec) return answer(req, err(errc::not_found, "no endpoint at " + std::string(target.substr(0, qmark))));
    a.where = spec->where;
    if (route) *route = a.where;
    if (req.method() != spec->method) {
        auto res = answer(req, err(errc::method_not_allowed, "use " + std::string(spec->allow) + " for this path"));
        res.set(http::field::allow, spec->allow);
        return res;
    }
    if (qmark != std::string_view::npos) {
        auto q = split_query(target.substr(qmark + 1));
        if (!q) return answer(req, err(errc::bad_request, "the query string has a malformed %-escape"));
        a.query = std::move(*q);
    }
    a.remote = remote;
    if (a.where == endpoint::health || a.where == endpoint::admin_page || a.where == endpoint::app_page) return a;
    // An enrolment carries a code instead of a token (SPEC.md, "Enrolment").
    if (a.where == endpoint::enrol) {
        const auto ct = req.find(http::field::content_type);
        if (ct == req.end() || !is_json_media_type(ct->value()))
            return answer(req, err(errc::unsupported_media_type, "POST /v1/enrol takes Content-Type: application/json"));
        return a;
    }

    const auto auth = req.find(http::field::authorization);
    std::string_view token;
    if (auth != req.end()) {
        const auto value = trim(auth->value());
        if (value.size() > 7 && beast::iequals(value.substr(0, 7), "Bearer ")) token = trim(value.substr(7));
    }
    if (token.empty()) return answer(req, err(errc::unauthorized, "send 'Authorization: Bearer <device token>'"));
    // Every token is checked, whatever its address did before: a valid one is served. Failures
    // are what is throttled (guard.hpp): past an address's allowance they are answered 429,
    // late, so guessing stays slow while the honest devices behind the same address sync.
    auto dev = store_.directory.authenticate(std::string(token));
    if (!dev) return answer(req, dev.err());
    if (!*dev) {
        if (const auto wait = guard_.auth_failed(remote)) {
            return refusal{too_many_failures(req, *wait), guard_.over_allowance_delay()};
        }
        return answer(req, err(errc::unauthorized, "unknown or revoked device token"));
    }
    a.dev = std::move(**dev);
    if (a.where == endpoint::metrics && a.dev->role != device_role::admin)
        return answer(req, err(errc::forbidden, "the metrics need an admin device's token"));

    // The handshake (SPEC.md, "Versions and the handshake"): a newer client is refused before
    // anything is read; a client below the minimum may still push (router::sync) but not read.
    for (const auto& [field, into] : {std::pair{proto::protocol_header, &a.client.protocol},
                                      std::pair{proto::schema_header, &a.client.schema}}) {
        const auto h = req.find(beast::string_view(field.data(), field.size()));
        if (h == req.end()) continue;
        const auto v = proto::parse_version(trim(h->value()));
        if (!v) return answer(req, err(errc::bad_request, std::string(field) + " must be a positive decimal integer"));
        *into = *v;
        if (into == &a.client.protocol) a.client.named = true;
    }
    const auto sv = sync_.versions();
    a.standing = proto::standing(a.client, sv);
    if (a.standing == proto::client_standing::too_new)
        return version_refusal(req, err(errc::unsupported_protocol,
                                        "this client speaks protocol " + std::to_string(a.client.protocol) + "; " +
                                            describe(sv) + ": upgrade the server"),
                               sv);
    // The conflict endpoints stay open: review tools (the /admin/ page) name no versions.
    if (a.standing == proto::client_standing::too_old && (a.where == endpoint::record || a.where == endpoint::history))
        return version_refusal(req, err(errc::client_too_old, "this client (protocol " +
                                                                  std::to_string(a.client.protocol) + ", schema " +
                                                                  std::to_string(a.client.schema) + ") must be upgraded; " +
                                                                  describe(sv)),
                               sv);

    if (a.where == endpoint::sync) {
        // SPEC.md, "Compression and encodings": CBOR beside JSON, and gzip content coding.
        if (!is_sync_media_type(req))
            return answer(req, err(errc::unsupported_media_type,
                                   "POST /v1/sync takes Content-Type: application/json or application/cbor"));
        if (!content_encoding_supported(req))
            return answer(req, err(errc::unsupported_media_type, "Content-Encoding must be gzip or identity"));
        return a;
    }
    if (a.where == endpoint::sync || a.where == endpoint::resolve || a.where == endpoint::preview ||
        a.where == endpoint::device_enrol) {
        const auto ct = req.find(http::field::content_type);
        if (ct == req.end() || !is_json_media_type(ct->value()))
            return answer(req, err(errc::unsupported_media_type, "POST " + std::string(target.substr(0, qmark)) +
                                                                     " takes Content-Type: application/json"));
    }
    return a;
}

void router::handle(admitted a, request req, const net::any_io_executor& ex, respond_fn done) const {
    switch (a.where) {
        case endpoint::health: return done(answer(req, json{{"status", "ok"}}));
        case endpoint::record: return done(get_record(a, req));
        case endpoint::history: return done(get_history(a, req));
        case endpoint::conflicts: return done(review_list(store_, a, req));
        case endpoint::conflict: return done(review_show(store_, a, req));
        case endpoint::resolve: return done(review_resolve(store_, a, req));
        case endpoint::preview: return done(review_preview(store_, a, req));
        case endpoint::admin_page: return done(serve_web_page("admin", a.params, req));
        case endpoint::app_page: return done(serve_web_page("app", a.params, req));
        case endpoint::enrol: return done(enrol(a, req));
        case endpoint::reports: return done(report_list(store_.reports, a, req));
        case endpoint::report: return done(report_show(store_.reports, a, req));
        case endpoint::metrics: return done(get_metrics(req));
        case endpoint::schema: return done(answer(req, store_.sync.schema().document()));
        case endpoint::me: return done(get_me(a, req));
        case endpoint::devices: return done(device_list(store_.directory, a, req));
        case endpoint::device_enrol: return done(device_enrol(store_.directory, a, req));
        case endpoint::upload_status: return done(upload_status(blobs_, store_, a, req));
        case endpoint::upload_chunk: return done(upload_chunk(blobs_, store_, metrics_, a, req));
        case endpoint::blob: return done(blob_download(blobs_, store_, metrics_, a, req));
        case endpoint::sync: return sync(std::move(a), std::move(req), ex, std::move(done));
        case endpoint::unmatched: break;
    }
    done(answer(req, err(errc::internal, "unrouted endpoint")));
}

response router::get_metrics(const request& req) const {
    if (!metrics_) return answer(req, err(errc::not_found, "this server keeps no metrics"));
    response res{http::status::ok, req.version()};
    res.set(http::field::server, k_server_name);
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    res.body() = metrics_->render(store_, connections_ ? connections_->load() : 0, waits_.waiting());
    res.prepare_payload();
    return res;
}

// SPEC.md, "GET /v1/me": the device, its unit, and the units of the tree it may see.
response router::get_me(const admitted& a, const request& req) const {
    const auto& d = *a.dev;
    auto all = store_.directory.units();
    if (!all) return answer(req, all.err());
    const auto sc = scope::of(d);
    json units = json::array();
    json own = nullptr;
    for (const auto& u : *all) {
        if (!sc.contains(u.path)) continue;
        json j{{"id", u.id}, {"parent", u.parent}, {"name", u.name}, {"kind", u.kind}};
        if (u.id == d.unit_id) own = j;
        units.push_back(std::move(j));
    }
    return answer(req, json{{"device", {{"id", d.id}, {"name", d.name}, {"role", role_name(d.role)}, {"unit_id", d.unit_id}}},
                            {"unit", std::move(own)},
                            {"units", std::move(units)}});
}

// SPEC.md, "Enrolment": a one-time code and a token the client made, for the device's
// token; answered as GET /v1/me answers that device. Guessed codes count as failed sign-ins.
response router::enrol(const admitted& a, const request& req) const {
    auto body = parse_body(req);
    if (!body) return answer(req, body.err());
    const auto* code = body->is_object() && body->contains("code") ? &(*body)["code"] : nullptr;
    const auto* token = body->is_object() && body->contains("token") ? &(*body)["token"] : nullptr;
    if (!code || !code->is_string() || !token || !token->is_string())
        return answer(req, err(errc::bad_request, "POST /v1/enrol takes {\"code\": string, \"token\": string}"));
    auto dev = store_.directory.redeem_enrolment(code->get<std::string>(), token->get<std::string>());
    if (!dev) {
        if (dev.err().code == errc::not_found) {
            if (const auto wait = guard_.auth_failed(a.remote)) return too_many_failures(req, *wait);
        }
        return answer(req, dev.err());
    }
    admitted as_device = a;
    as_device.dev = std::move(*dev);
    return get_me(as_device, req);
}

response router::get_record(const admitted& a, const request& req) const {
    auto r = store_.sync.get(scope::of(*a.dev), a.params[0], a.params[1]);
    if (!r) return answer(req, r.err());
    if (!*r) return answer(req, err(errc::not_found, "no record '" + a.params[1] + "' in '" + a.params[0] + "'"));
    return answer(req, to_json(**r));
}

response router::get_history(const admitted& a, const request& req) const {
    auto h = store_.sync.history(scope::of(*a.dev), a.params[0], a.params[1]);
    if (!h) return answer(req, h.err());
    if (h->empty()) return answer(req, err(errc::not_found, "no record '" + a.params[1] + "' in '" + a.params[0] + "'"));
    json versions = json::array();
    for (const auto& e : *h) versions.push_back(to_json(e));
    return answer(req, json{{"collection", a.params[0]}, {"id", a.params[1]}, {"versions", std::move(versions)}});
}

void router::sync(admitted a, request req, const net::any_io_executor& ex, respond_fn done) const {
    auto body = parse_body(req);
    if (!body) return done(answer(req, body.err()));
    auto cs = proto::decode_change_set(std::move(*body));
    if (!cs) return done(answer(req, cs.err()));
    if (a.note) a.note->changes = static_cast<std::int64_t>(cs->changes.size());

    const device dev = *a.dev;
    auto planned = sync_.plan(dev, *cs, a.client, a.standing);
    if (auto* refused = std::get_if<sync_refusal>(&planned)) {
        if (refused->versions) return done(version_refusal(req, refused->err, *refused->versions));
        return done(answer(req, refused->err));
    }
    auto plan = std::get<sync_plan>(std::move(planned));
    if (cs->changes.empty()) {
        if (plan.wait.count() > 0) return pull_or_wait(std::move(a), std::move(req), std::move(plan), ex, std::move(done));
        return done(sync_answer(req, plan, {}));
    }

    // The store answers on its writer thread; pulling there would hold up every other
    // device's commit, so the answer hops back to the session's executor first. The work
    // guard keeps the io_context running until the answer is sent. The store destroys its
    // callback on the writer thread, maybe after the answer went out: the callback's
    // `in_store` holds a ticket, so server::stop() waits for that too before the io_context
    // (on which the guard's strand and the session's socket live) is destroyed.
    req.body().clear();
    struct pending {
        request req;
        sync_plan plan;
        respond_fn done;
        net::executor_work_guard<net::any_io_executor> guard;
    };
    struct in_store {
        explicit in_store(store_calls& calls, std::shared_ptr<pending> p) : ticket(calls), p(std::move(p)) {}
        store_calls::ticket ticket;     // declared first: released last, after p
        std::shared_ptr<pending> p;
    };
    auto held = std::make_shared<in_store>(
        store_calls_,
        std::make_shared<pending>(pending{std::move(req), std::move(plan), std::move(done), net::make_work_guard(ex)}));
    store_.sync.submit(dev, std::move(*cs), [this, held](proto::expected<std::vector<proto::change_result>> r) {
        auto p = held->p;
        if (metrics_) metrics_->count_change_set(r);
        auto ex2 = p->guard.get_executor();
        net::post(ex2, [this, p, r = std::move(r)]() mutable {
            response res = catch_internal_error(
                "answering a sync",
                [&] { return r ? sync_answer(p->req, p->plan, std::move(*r)) : answer(p->req, r.err()); },
                [&] { return answer(p->req, err(errc::internal, "internal error")); });
            auto done = std::move(p->done);
            p->guard.reset();
            done(std::move(res));
        });
    });
}

// SPEC.md, "Waiting for changes": a pull whose answer would tell the device nothing new waits
// for a commit, its deadline, the client leaving or the server stopping, holding nothing of
// the store meanwhile; every read of it is an ordinary respond(), in a read transaction of
// its own.
void router::pull_or_wait(admitted a, request req, sync_plan plan, const net::any_io_executor& ex,
                          respond_fn done) const {
    // Before the read: a commit after this count is one the read may have missed.
    const auto seen = waits_.commits();
    auto first = sync_.respond(plan, {});
    if (!first) return done(answer(req, first.err()));
    if (!tells_nothing(*first)) return done(answer(req, *first));

    req.body().clear();
    const auto deadline = std::chrono::steady_clock::now() + plan.wait;
    sync_waits::poll_fn poll = [this, req = std::make_shared<const request>(std::move(req)), plan = std::move(plan),
                                done = std::move(done)](bool last) -> sync_waits::send_fn {
        auto res = catch_internal_error(
            "answering a waiting sync",
            [&]() -> std::optional<response> {
                auto out = sync_.respond(plan, {});
                if (out && !last && tells_nothing(*out)) return std::nullopt;
                return out ? answer(*req, *out) : answer(*req, out.err());
            },
            [&]() -> std::optional<response> { return answer(*req, err(errc::internal, "internal error")); });
        if (!res) return {};
        return [done, res = std::make_shared<response>(std::move(*res))] { done(std::move(*res)); };
    };
    auto leave = waits_.park(ex, deadline, seen, std::move(poll));
    // Too many waiting, or the server stops: answered now, as without a wait (the read again
    // costs what the first did, and sees any commit since). `poll` is left as it was.
    if (!leave) {
        poll(true)();
        return;
    }
    if (a.note) a.note->leave_wait = std::move(leave);
}

void store_calls::enter() {
    std::lock_guard lock(mutex_);
    ++count_;
}

void store_calls::leave() {
    std::lock_guard lock(mutex_);
    if (--count_ == 0) idle_.notify_all();
}

void store_calls::wait_idle() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return count_ == 0; });
}

response router::sync_answer(const request& req, const sync_plan& plan,
                             std::vector<proto::change_result> results) const {
    auto out = sync_.respond(plan, std::move(results));
    if (!out) return answer(req, out.err());
    return answer(req, *out);
}

}  // namespace fieldsync::server::detail
