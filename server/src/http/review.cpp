#include "http/review.hpp"

#include "http/encoding.hpp"

#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <charconv>
#include <chrono>
#include <map>
#include <variant>

namespace fieldsync::server::detail {

namespace proto = fieldsync::protocol;
using proto::errc;

namespace {

constexpr std::int64_t k_default_page = 100;
constexpr std::int64_t k_max_page = 1000;


// An empty value counts as absent, as HTML forms send unfilled fields.
std::optional<std::string> query_value(const admitted& a, std::string_view key) {
    for (const auto& [k, v] : a.query)
        if (k == key && !v.empty()) return v;
    return std::nullopt;
}

std::int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

json conflict_json(const store_roles& st, const conflict_view& c, bool detailed) {
    json j = {{"id", c.id},
              {"collection", c.collection},
              {"record_id", c.record_id},
              {"unit_id", c.unit_id},
              {"path", c.path},
              {"status", c.status},
              {"base_version", c.base_version},
              {"head_version", c.head_version},
              {"base", c.base},
              {"head", c.head},
              {"head_deleted", c.head_deleted},
              {"incoming", c.incoming},
              {"incoming_deleted", c.incoming_deleted},
              {"fields", c.fields},
              {"device_id", c.device_id},
              {"change_id", c.change_id},
              {"hlc", c.hlc},
              {"created_ms", c.created_ms},
              {"closed_by", c.closed_by.empty() ? json(nullptr) : json(c.closed_by)},
              {"closed_ms", c.closed_by.empty() ? json(nullptr) : json(c.closed_ms)},
              {"resolution", c.resolution},
              {"title", c.title},
              {"device_name", c.device_name ? json(*c.device_name) : json(nullptr)},
              {"unit_name", c.unit_name ? json(*c.unit_name) : json(nullptr)},
              {"path_names", c.path_names}};
    if (!c.closed_by.empty()) j["closed_by_name"] = c.closed_by_name;
    if (!detailed) return j;

    j["current_version"] = c.current_version;
    j["current"] = c.current_deleted ? json(nullptr) : c.current;
    j["current_deleted"] = c.current_deleted;
    // Who wrote each side: history names the writer of every version; the incoming side is
    // the change that raised the conflict, received when the conflict was opened.
    json writers = json::object();
    json incoming = {{"device_id", c.device_id}, {"device_name", c.device_name.value_or("")}};
    incoming["change_id"] = c.change_id;
    incoming["hlc"] = c.hlc;
    incoming["server_ms"] = c.created_ms;
    writers["incoming"] = std::move(incoming);
    if (auto h = st.sync.history(c.collection, c.record_id)) {
        for (const auto& e : *h) {
            auto one = [&] {
                json w = {{"device_id", e.device_id}, {"device_name", e.device_name.value_or("")}};
                w["version"] = e.version;
                w["hlc"] = e.hlc;
                w["server_ms"] = e.server_ms;
                w["how"] = e.how;
                return w;
            };
            if (e.version == c.base_version) writers["base"] = one();
            if (e.version == c.head_version) writers["head"] = one();
            if (e.version == c.current_version) writers["current"] = one();
        }
    }
    j["writers"] = std::move(writers);
    return j;
}

response review_list(const store_roles& st, const admitted& a, const request& req) {
    conflict_filter f;
    if (auto s = query_value(a, "status")) {
        if (*s == "any" || *s == "all")
            f.status.clear();
        else if (*s == "open" || *s == "resolved" || *s == "dismissed")
            f.status = *s;
        else
            return answer(req, err(errc::bad_request, "status must be open, resolved, dismissed or any"));
    }
    auto number = [&](std::string_view key, std::int64_t min, const char* what) -> std::variant<std::optional<std::int64_t>, response> {
        const auto s = query_value(a, key);
        if (!s) return std::optional<std::int64_t>();
        const auto v = parse_decimal(*s);
        if (!v || *v < min) return answer(req, err(errc::bad_request, std::string(key) + " must be " + what));
        return v;
    };
    std::optional<std::int64_t> limit, offset, older, newer;
    for (auto [key, min, what, out] : {std::tuple{"limit", 1, "a positive integer", &limit},
                                       std::tuple{"offset", 0, "a non-negative integer", &offset},
                                       std::tuple{"older_than_ms", 0, "a non-negative integer", &older},
                                       std::tuple{"newer_than_ms", 0, "a non-negative integer", &newer}}) {
        auto v = number(key, min, what);
        if (auto* r = std::get_if<response>(&v)) return std::move(*r);
        *out = std::get<0>(v);
    }
    f.limit = limit ? std::min(*limit, k_max_page) : k_default_page;
    f.offset = offset.value_or(0);
    const auto now = now_ms();
    if (older) f.created_before_ms = now - *older;
    if (newer) f.created_after_ms = now - *newer;
    f.collection = query_value(a, "collection").value_or("");
    f.unit_id = query_value(a, "unit").value_or("");
    f.device_id = query_value(a, "device").value_or("");

    auto list = st.review.conflicts(scope::of(*a.dev), f);
    if (!list) return answer(req, list.err());
    json out = json::array();
    for (const auto& c : *list) out.push_back(conflict_json(st, c, false));
    return answer(req, json{{"conflicts", std::move(out)}, {"limit", f.limit}, {"offset", f.offset}});
}

response review_show(const store_roles& st, const admitted& a, const request& req) {
    auto c = st.review.conflict(scope::of(*a.dev), a.params[0]);
    if (!c) return answer(req, c.err());
    if (!*c) return answer(req, err(errc::not_found, "no conflict '" + a.params[0] + "'"));
    return answer(req, conflict_json(st, **c, true));
}

namespace {

// The body of POST .../resolve and .../preview (SPEC.md, "Resolving a conflict"), or the
// answer refusing it.
std::variant<resolution, response> decision_of(const request& req) {
    auto body = proto::parse_json(req.body(), proto::tuning::max_json_depth);
    if (!body) return answer(req, body.err());
    const json& b = *body;
    auto bad = [&](std::string message) { return answer(req, err(errc::bad_request, std::move(message))); };
    if (!b.is_object()) return bad("the body must be a JSON object");

    resolution r;
    const auto choice = b.find("choice");
    if (choice == b.end() || !choice->is_string()) return bad("'choice' is required: keep_head, take_incoming, pick, edit or dismiss");
    const auto how = parse_choice(choice->get<std::string>());
    if (!how) return bad("'choice' must be keep_head, take_incoming, pick, edit or dismiss");
    r.how = *how;
    const auto hv = b.find("head_version");
    if (hv == b.end() || !hv->is_number_integer() || hv->get<std::int64_t>() < 0)
        return bad("'head_version' is required: the head version the decision was made against");
    r.head_version = hv->get<std::int64_t>();
    if (const auto note = b.find("note"); note != b.end() && !note->is_null()) {
        if (!note->is_string()) return bad("'note' must be a string");
        r.note = note->get<std::string>();
    }
    if (const auto picks = b.find("picks"); picks != b.end() && !picks->is_null()) {
        if (!picks->is_object()) return bad("'picks' must be an object: JSON Pointer -> \"head\" | \"incoming\"");
        for (const auto& [pointer, side] : picks->items()) {
            if (!side.is_string()) return bad("'picks' values are \"head\" or \"incoming\"");
            r.picks.emplace(pointer, side.get<std::string>());
        }
    }
    if (r.how == resolution::choice::pick && r.picks.empty()) return bad("choice 'pick' needs 'picks'");
    if (r.how == resolution::choice::edit) {
        const auto del = b.find("deleted");
        r.edited_deleted = del != b.end() && del->is_boolean() && del->get<bool>();
        const auto rec = b.find("record");
        if (!r.edited_deleted) {
            if (rec == b.end() || !rec->is_object()) return bad("choice 'edit' needs 'record' (an object) or \"deleted\": true");
            r.edited = *rec;
        }
    }
    return r;
}

// A refused decision. A stale one was made on a head that moved: the answer hands back the
// conflict as it is now, so the reviewer decides again without another round trip.
response refused_decision(const store_roles& st, const admitted& a, const request& req, const proto::error& e) {
    auto res = answer(req, e);
    if (e.code == errc::stale) {
        if (auto now = st.review.conflict(scope::of(*a.dev), a.params[0]); now && *now) {
            json j = json::parse(res.body());
            j["conflict"] = conflict_json(st, **now, true);
            res.body() = j.dump(-1, ' ', false, json::error_handler_t::replace);
            res.prepare_payload();
        }
    }
    return res;
}

}  // namespace

response review_preview(const store_roles& st, const admitted& a, const request& req) {
    auto decided = decision_of(req);
    if (auto* refused = std::get_if<response>(&decided)) return std::move(*refused);
    auto p = st.review.preview(*a.dev, a.params[0], std::get<resolution>(decided));
    if (!p) return refused_decision(st, a, req, p.err());
    return answer(req, json{{"record", p->deleted ? json(nullptr) : p->record},
                            {"deleted", p->deleted},
                            {"head_version", p->head_version},
                            {"changed", p->changed}});
}

response review_resolve(const store_roles& st, const admitted& a, const request& req) {
    auto decided = decision_of(req);
    if (auto* refused = std::get_if<response>(&decided)) return std::move(*refused);
    auto done = st.review.resolve(*a.dev, a.params[0], std::get<resolution>(decided));
    if (!done) return refused_decision(st, a, req, done.err());
    auto now = st.review.conflict(scope::of(*a.dev), a.params[0]);
    if (now && *now) return answer(req, conflict_json(st, **now, true));
    return answer(req, conflict_json(st, *done, false));
}

}  // namespace fieldsync::server::detail
