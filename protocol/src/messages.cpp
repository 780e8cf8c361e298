#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <cstdio>
#include <limits>
#include <unordered_set>

namespace fieldsync::protocol {

std::string_view op_name(op_kind op) noexcept {
    switch (op) {
        case op_kind::put: return "put";
        case op_kind::patch: return "patch";
        case op_kind::del: return "delete";
    }
    return "put";
}

std::string_view status_name(change_status s) noexcept {
    switch (s) {
        case change_status::applied: return "applied";
        case change_status::merged: return "merged";
        case change_status::conflict: return "conflict";
        case change_status::rejected: return "rejected";
        case change_status::queued: return "queued";
    }
    return "rejected";
}

std::optional<std::int64_t> as_int64(const json& j, std::int64_t min) {
    if (j.is_number_integer() && !j.is_number_unsigned()) {
        const auto v = j.get<std::int64_t>();
        if (v >= min) return v;
        return std::nullopt;
    }
    if (j.is_number_unsigned()) {
        const auto v = j.get<std::uint64_t>();
        if (v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
            static_cast<std::int64_t>(v) >= min)
            return static_cast<std::int64_t>(v);
    }
    return std::nullopt;
}

bool valid_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > tuning::max_id_bytes) return false;
    for (const char ch : id) {
        if (ch <= 0x20 || ch >= 0x7F || ch == '/' || ch == '?' || ch == '#' || ch == '%') return false;
    }
    return true;
}

namespace {

error bad(errc code, std::string message) { return error{code, std::move(message)}; }

// Reads a required id-like string member; returns an error naming the field.
std::optional<error> read_id(const json& obj, const char* field, std::string& out) {
    const auto it = obj.find(field);
    if (it == obj.end()) return bad(errc::bad_field, std::string("missing field '") + field + "'");
    if (!it->is_string()) return bad(errc::bad_field, std::string("field '") + field + "' must be a string");
    const auto& s = it->get_ref<const std::string&>();
    if (!valid_id(s))
        return bad(errc::bad_field, std::string("field '") + field +
                                        "' must be 1 to 128 printable ASCII characters without / ? # % or spaces");
    out = s;
    return std::nullopt;
}

// decode_change, taking the record's data out of `item` when `movable` is set: the server
// decodes a body it parsed for this alone, and a change-set of 1,000 records would otherwise
// copy each record's tree once more.
change_entry decode_change_from(const json& item, json* movable) {
    change_entry e;
    auto reject = [&](error err) {
        e.rejected = std::move(err);
        return e;
    };
    if (!item.is_object()) return reject(bad(errc::bad_field, "a change must be a JSON object"));
    // change_id is read by decode_change_set first; here it may still be missing (tests).
    if (auto err = read_id(item, "change_id", e.c.change_id)) return reject(*err);

    if (const auto it = item.find("collection"); it == item.end() || !it->is_string())
        return reject(bad(errc::bad_field, "field 'collection' must be a string"));
    else {
        const auto& name = it->get_ref<const std::string&>();
        if (name.empty() || name.size() > tuning::max_collection_bytes)
            return reject(bad(errc::bad_field, "field 'collection' must be 1 to 64 bytes"));
        e.c.collection = name;
    }
    if (auto err = read_id(item, "id", e.c.id)) return reject(*err);

    const auto op = item.find("op");
    if (op == item.end() || !op->is_string())
        return reject(bad(errc::bad_field, "field 'op' must be \"put\", \"patch\" or \"delete\""));
    const auto& op_s = op->get_ref<const std::string&>();
    if (op_s == "put")
        e.c.op = op_kind::put;
    else if (op_s == "patch")
        e.c.op = op_kind::patch;
    else if (op_s == "delete")
        e.c.op = op_kind::del;
    else
        return reject(bad(errc::bad_field, "field 'op' must be \"put\", \"patch\" or \"delete\""));

    if (auto err = read_id(item, "unit_id", e.c.unit_id)) return reject(*err);

    const auto bv = item.find("base_version");
    if (bv == item.end()) return reject(bad(errc::bad_version, "missing field 'base_version'"));
    const auto v = as_int64(*bv, 0);
    if (!v) return reject(bad(errc::bad_version, "field 'base_version' must be an integer from 0 to 2^63-1"));
    e.c.base_version = *v;

    const auto data = item.find("data");
    if (e.c.op == op_kind::del) {
        if (data != item.end() && !data->is_null())
            return reject(bad(errc::bad_field, "a delete carries no 'data'"));
        e.c.data = nullptr;
    } else {
        if (data == item.end() || !data->is_object())
            return reject(bad(errc::bad_field, "field 'data' must be a JSON object"));
        if (movable)
            e.c.data = std::move((*movable)["data"]);
        else
            e.c.data = *data;
    }
    if (e.c.op == op_kind::patch && e.c.base_version == 0)
        return reject(bad(errc::bad_version, "a patch needs the base_version it was edited from (> 0)"));

    if (const auto h = item.find("hlc"); h != item.end() && !h->is_null()) {
        if (!h->is_string()) return reject(bad(errc::bad_field, "field 'hlc' must be a string \"<wall_ms>-<counter>\""));
        auto parsed = hlc::parse(h->get_ref<const std::string&>());
        if (!parsed) return reject(bad(errc::bad_field, "field 'hlc' must be \"<wall_ms>-<counter>\""));
        e.c.stamp = *parsed;
    }
    return e;
}

}  // namespace

change_entry decode_change(const json& item) { return decode_change_from(item, nullptr); }

namespace {

// decode_change_set; with `movable` (the same tree as `body`), each change's data is taken
// out of it.
expected<change_set> decode_set(const json& body, json* movable) {
    if (!body.is_object()) return bad(errc::bad_request, "the body must be a JSON object");
    change_set cs;

    if (const auto it = body.find("batch_id"); it != body.end() && !it->is_null()) {
        if (!it->is_string() || !valid_id(it->get_ref<const std::string&>()))
            return bad(errc::bad_request, "field 'batch_id' must be an id string");
        cs.batch_id = it->get_ref<const std::string&>();
    }
    if (const auto it = body.find("cursor"); it != body.end() && !it->is_null()) {
        if (!it->is_string()) return bad(errc::bad_cursor, "field 'cursor' must be a string");
        cs.cursor = it->get_ref<const std::string&>();
    }
    if (const auto it = body.find("limit"); it != body.end() && !it->is_null()) {
        const auto v = as_int64(*it, 1);
        if (!v) return bad(errc::bad_request, "field 'limit' must be a positive integer");
        cs.limit = std::min<std::int64_t>(*v, tuning::max_pull_limit);
    }
    if (const auto it = body.find("diffs"); it != body.end() && !it->is_null()) {
        if (!it->is_boolean()) return bad(errc::bad_request, "field 'diffs' must be true or false");
        cs.diffs = it->get<bool>();
    }
    if (const auto it = body.find("held"); it != body.end() && !it->is_null()) {
        if (!it->is_array() || it->size() > tuning::max_held_per_sync)
            return bad(errc::bad_request, "field 'held' must be an array of at most " +
                                              std::to_string(tuning::max_held_per_sync) + " conflict ids");
        for (const auto& id : *it) {
            if (!id.is_string() || !valid_id(id.get_ref<const std::string&>()))
                return bad(errc::bad_request, "field 'held' must hold conflict ids (strings)");
            cs.held.push_back(id.get<std::string>());
        }
    }

    if (const auto it = body.find("wait_ms"); it != body.end() && !it->is_null()) {
        const auto v = as_int64(*it, 0);
        if (!v) return bad(errc::bad_request, "field 'wait_ms' must be a whole number of milliseconds, 0 or more");
        cs.wait_ms = *v;
    }

    const auto changes = body.find("changes");
    if (changes == body.end() || changes->is_null()) return cs;
    if (!changes->is_array()) return bad(errc::bad_request, "field 'changes' must be an array");
    if (changes->size() > tuning::max_changes_per_batch)
        return bad(errc::too_many_changes, "a change-set holds at most " +
                                               std::to_string(tuning::max_changes_per_batch) + " changes");
    if (!changes->empty() && cs.batch_id.empty())
        return bad(errc::bad_request, "a change-set with changes needs a 'batch_id'");

    std::unordered_set<std::string_view> seen;
    cs.changes.reserve(changes->size());
    std::size_t index = 0;
    for (const auto& item : *changes) {
        // Without a valid change_id a change cannot be answered or made idempotent, so the
        // whole request is refused rather than guessing which retry it belongs to.
        std::string id;
        if (!item.is_object())
            return bad(errc::bad_request, "changes[" + std::to_string(index) + "] must be a JSON object");
        if (auto err = read_id(item, "change_id", id))
            return bad(errc::bad_request, "changes[" + std::to_string(index) + "]: " + err->message);
        const auto& stored = item.find("change_id")->get_ref<const std::string&>();
        if (!seen.insert(stored).second)
            return bad(errc::duplicate_change_id, "change_id '" + id + "' appears twice in the change-set");
        cs.changes.push_back(decode_change_from(item, movable ? &(*movable)["changes"][index] : nullptr));
        ++index;
    }
    return cs;
}

}  // namespace

expected<change_set> decode_change_set(const json& body) { return decode_set(body, nullptr); }

expected<change_set> decode_change_set(json&& body) { return decode_set(body, &body); }

json encode(const change& c) {
    json j = {{"change_id", c.change_id}, {"collection", c.collection}, {"id", c.id},
              {"unit_id", c.unit_id},     {"op", op_name(c.op)},        {"base_version", c.base_version}};
    if (c.op != op_kind::del) j["data"] = c.data;
    if (c.stamp) j["hlc"] = c.stamp->to_string();
    return j;
}

json encode(const change_set& cs) {
    json changes = json::array();
    for (const auto& e : cs.changes) changes.push_back(encode(e.c));
    json j = {{"changes", std::move(changes)}, {"cursor", cs.cursor}};
    // A pull-only request has no batch; "" is not an id and the decoder would refuse it.
    if (!cs.batch_id.empty()) j["batch_id"] = cs.batch_id;
    if (cs.limit > 0) j["limit"] = cs.limit;
    if (cs.diffs) j["diffs"] = true;
    if (!cs.held.empty()) j["held"] = cs.held;
    if (cs.wait_ms > 0) j["wait_ms"] = cs.wait_ms;
    return j;
}

json encode(const resolution_notice& n) {
    json j = {{"conflict_id", n.conflict_id}, {"status", n.status}};
    if (n.status == "unknown") return j;
    j["choice"] = n.choice;
    if (!n.note.empty()) j["note"] = n.note;
    if (n.version > 0) j["version"] = n.version;
    j["closed_ms"] = n.closed_ms;
    j["reviewer"] = {{"unit_id", n.reviewer_unit_id}, {"unit_name", n.reviewer_unit_name}};
    return j;
}

json encode(const error& e) {
    return {{"error", {{"code", errc_name(e.code)}, {"message", e.message}}}};
}

json encode(const change_result& r) {
    json j = {{"change_id", r.change_id}, {"status", status_name(r.status)}, {"version", r.version}};
    if (r.conflict_id) j["conflict_id"] = *r.conflict_id;
    if (r.err) j["error"] = {{"code", errc_name(r.err->code)}, {"message", r.err->message}};
    return j;
}

void materialize(pulled_change& p) {
    if (p.data_json.empty()) return;
    p.data = json::parse(p.data_json);
    p.data_json.clear();
}

json encode(const pulled_change& p) {
    if (p.diff_base)
        return {{"collection", p.collection}, {"id", p.id},        {"unit_id", p.unit_id}, {"version", p.version},
                {"deleted", false},           {"base", *p.diff_base}, {"diff", p.data}};
    json data = p.deleted ? json(nullptr) : !p.data_json.empty() ? json::parse(p.data_json) : p.data;
    return {{"collection", p.collection}, {"id", p.id},          {"unit_id", p.unit_id},
            {"version", p.version},       {"deleted", p.deleted}, {"data", std::move(data)}};
}

namespace {

// The text writer of encode_json. Keys go in nlohmann's order (sorted), so the text is the
// one encode(r).dump() makes, byte for byte, when the spliced records are in its form too.
class json_text {
public:
    explicit json_text(std::string& out) : out_(out) {}

    // A string as nlohmann's dump(-1, ' ', false, replace) writes it. ASCII (ids, cursors,
    // statuses) is escaped here; anything with other bytes goes through nlohmann, which also
    // checks the UTF-8.
    void string(std::string_view s) {
        fresh_ = false;
        for (const char ch : s) {
            if (static_cast<unsigned char>(ch) >= 0x80) {
                out_ += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
                return;
            }
        }
        out_ += '"';
        for (const char ch : s) {
            switch (ch) {
                case '"': out_ += "\\\""; break;
                case '\\': out_ += "\\\\"; break;
                case '\b': out_ += "\\b"; break;
                case '\f': out_ += "\\f"; break;
                case '\n': out_ += "\\n"; break;
                case '\r': out_ += "\\r"; break;
                case '\t': out_ += "\\t"; break;
                default:
                    if (static_cast<unsigned char>(ch) < 0x20) {
                        char buf[8];
                        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(ch)));
                        out_ += buf;
                    } else {
                        out_ += ch;
                    }
            }
        }
        out_ += '"';
    }
    void key(std::string_view k) {
        comma();
        out_ += '"';
        out_ += k;  // the writer's own keys: plain ASCII
        out_ += "\":";
        fresh_ = true;  // the value follows without a comma
    }
    // Values: after a key(), or after element() in an array.
    void number(std::int64_t v) {
        out_ += std::to_string(v);
        fresh_ = false;
    }
    void boolean(bool v) {
        out_ += v ? "true" : "false";
        fresh_ = false;
    }
    void tree(const json& j) {
        out_ += j.dump(-1, ' ', false, json::error_handler_t::replace);
        fresh_ = false;
    }
    void raw(std::string_view text) {
        out_ += text;
        fresh_ = false;
    }
    void open(char c) {
        comma();
        out_ += c;
        fresh_ = true;
    }
    void close(char c) {
        out_ += c;
        fresh_ = false;
    }
    // Before an element of an array.
    void element() { comma(); }

private:
    void comma() {
        if (!fresh_) out_ += ',';
        fresh_ = false;
    }
    std::string& out_;
    bool fresh_ = true;
};

void write_result(json_text& w, const change_result& r) {
    w.open('{');
    w.key("change_id");
    w.string(r.change_id);
    if (r.conflict_id) {
        w.key("conflict_id");
        w.string(*r.conflict_id);
    }
    if (r.err) {
        w.key("error");
        w.tree(json{{"code", errc_name(r.err->code)}, {"message", r.err->message}});
    }
    w.key("status");
    w.string(status_name(r.status));
    w.key("version");
    w.number(r.version);
    w.close('}');
}

void write_pulled(json_text& w, const pulled_change& p) {
    w.open('{');
    if (p.diff_base) {
        w.key("base");
        w.number(*p.diff_base);
    }
    w.key("collection");
    w.string(p.collection);
    if (!p.diff_base) {
        w.key("data");
        if (p.deleted)
            w.raw("null");
        else if (!p.data_json.empty())
            w.raw(p.data_json);
        else
            w.tree(p.data);
    }
    w.key("deleted");
    w.boolean(p.diff_base ? false : p.deleted);
    if (p.diff_base) {
        w.key("diff");
        w.tree(p.data);
    }
    w.key("id");
    w.string(p.id);
    w.key("unit_id");
    w.string(p.unit_id);
    w.key("version");
    w.number(p.version);
    w.close('}');
}

}  // namespace

std::string encode_json(const change_result& r) {
    std::string out;
    out.reserve(96);
    json_text w(out);
    write_result(w, r);
    return out;
}

std::string encode_json(const sync_response& r) {
    std::string out;
    std::size_t guess = 128 + r.results.size() * 96;
    for (const auto& c : r.changes) guess += 160 + c.data_json.size();
    out.reserve(guess);
    json_text w(out);
    w.open('{');
    w.key("changes");
    w.open('[');
    for (const auto& c : r.changes) write_pulled(w, c);
    w.close(']');
    w.key("cursor");
    w.string(r.cursor);
    if (!r.dropped.empty()) {
        w.key("dropped");
        w.open('[');
        for (const auto& d : r.dropped) {
            w.open('{');
            w.key("collection");
            w.string(d.collection);
            w.key("id");
            w.string(d.id);
            w.close('}');
        }
        w.close(']');
    }
    if (!r.incarnation.empty()) {
        w.key("incarnation");
        w.string(r.incarnation);
    }
    w.key("more");
    w.boolean(r.more);
    if (r.reset) {
        w.key("reset");
        w.boolean(true);
    }
    if (!r.resolutions.empty()) {
        w.key("resolutions");
        w.open('[');
        for (const auto& n : r.resolutions) {
            w.element();
            w.tree(encode(n));
        }
        w.close(']');
    }
    w.key("results");
    w.open('[');
    for (const auto& x : r.results) write_result(w, x);
    w.close(']');
    if (r.server_hlc) {
        w.key("server_hlc");
        w.string(r.server_hlc->to_string());
    }
    if (r.upgrade) {
        w.key("upgrade");
        w.tree(encode(*r.upgrade));
    }
    w.close('}');
    return out;
}

json encode(const sync_response& r) {
    json results = json::array();
    for (const auto& x : r.results) results.push_back(encode(x));
    json changes = json::array();
    for (const auto& x : r.changes) changes.push_back(encode(x));
    json j = {{"results", std::move(results)}, {"changes", std::move(changes)}, {"cursor", r.cursor}, {"more", r.more}};
    if (!r.dropped.empty()) {
        json dropped = json::array();
        for (const auto& d : r.dropped) dropped.push_back({{"collection", d.collection}, {"id", d.id}});
        j["dropped"] = std::move(dropped);
    }
    if (r.reset) j["reset"] = true;
    if (r.server_hlc) j["server_hlc"] = r.server_hlc->to_string();
    if (r.upgrade) j["upgrade"] = encode(*r.upgrade);
    if (!r.incarnation.empty()) j["incarnation"] = r.incarnation;
    if (!r.resolutions.empty()) {
        json notices = json::array();
        for (const auto& n : r.resolutions) notices.push_back(encode(n));
        j["resolutions"] = std::move(notices);
    }
    return j;
}

std::optional<error> decode_error(const json& j) {
    if (!j.is_object()) return std::nullopt;
    const auto e = j.find("error");
    if (e == j.end() || !e->is_object()) return std::nullopt;
    const auto code = e->find("code");
    const auto msg = e->find("message");
    if (code == e->end() || !code->is_string()) return std::nullopt;
    return error{errc_from_name(code->get<std::string>()),
                 msg != e->end() && msg->is_string() ? msg->get<std::string>() : std::string()};
}

namespace {

std::optional<std::string> str(const json& j, const char* field) {
    const auto it = j.find(field);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

}  // namespace

expected<change_result> decode_change_result(const json& j) {
    if (!j.is_object()) return bad(errc::bad_request, "a result must be an object");
    change_result r;
    auto id = str(j, "change_id");
    auto status = str(j, "status");
    if (!id || !status) return bad(errc::bad_request, "a result needs 'change_id' and 'status'");
    r.change_id = *id;
    if (*status == "applied")
        r.status = change_status::applied;
    else if (*status == "merged")
        r.status = change_status::merged;
    else if (*status == "conflict")
        r.status = change_status::conflict;
    else if (*status == "rejected")
        r.status = change_status::rejected;
    else if (*status == "queued")
        r.status = change_status::queued;
    else
        return bad(errc::bad_request, "unknown status '" + *status + "'");
    if (const auto v = j.find("version"); v != j.end()) r.version = as_int64(*v, 0).value_or(0);
    if (auto c = str(j, "conflict_id")) r.conflict_id = *c;
    if (const auto e = j.find("error"); e != j.end() && e->is_object())
        r.err = decode_error(json{{"error", *e}});
    return r;
}

expected<pulled_change> decode_pulled_change(const json& j) {
    if (!j.is_object()) return bad(errc::bad_request, "a pulled change must be an object");
    pulled_change p;
    auto coll = str(j, "collection");
    auto id = str(j, "id");
    auto unit = str(j, "unit_id");
    const auto v = j.find("version");
    if (!coll || !id || !unit || v == j.end() || !as_int64(*v, 1))
        return bad(errc::bad_request, "a pulled change needs collection, id, unit_id and version");
    p.collection = *coll;
    p.id = *id;
    p.unit_id = *unit;
    p.version = *as_int64(*v, 1);
    if (const auto d = j.find("deleted"); d != j.end() && d->is_boolean()) p.deleted = d->get<bool>();
    if (const auto d = j.find("data"); d != j.end()) p.data = *d;
    if (const auto d = j.find("diff"); d != j.end()) {
        const auto b = j.find("base");
        const std::int64_t base = b == j.end() ? 0 : as_int64(*b, 1).value_or(0);
        if (!d->is_object() || base < 1 || base >= p.version || p.deleted)
            return bad(errc::bad_request, "a pulled diff needs an object 'diff' and a 'base' below its version");
        p.diff_base = base;
        p.data = *d;
    }
    return p;
}

expected<resolution_notice> decode_resolution_notice(const json& j) {
    if (!j.is_object()) return bad(errc::bad_request, "a resolution must be an object");
    resolution_notice n;
    auto id = str(j, "conflict_id");
    auto status = str(j, "status");
    if (!id || !status || (*status != "resolved" && *status != "dismissed" && *status != "unknown"))
        return bad(errc::bad_request, "a resolution needs 'conflict_id' and a 'status' of resolved, dismissed or unknown");
    n.conflict_id = *id;
    n.status = *status;
    n.choice = str(j, "choice").value_or("");
    n.note = str(j, "note").value_or("");
    if (const auto v = j.find("version"); v != j.end()) n.version = as_int64(*v, 0).value_or(0);
    if (const auto v = j.find("closed_ms"); v != j.end()) n.closed_ms = as_int64(*v, 0).value_or(0);
    if (const auto r = j.find("reviewer"); r != j.end() && r->is_object()) {
        n.reviewer_unit_id = str(*r, "unit_id").value_or("");
        n.reviewer_unit_name = str(*r, "unit_name").value_or("");
    }
    return n;
}

expected<sync_response> decode_sync_response(const json& j) {
    if (!j.is_object()) return bad(errc::bad_request, "a sync response must be an object");
    sync_response r;
    if (const auto res = j.find("results"); res != j.end() && res->is_array()) {
        for (const auto& x : *res) {
            auto d = decode_change_result(x);
            if (!d) return std::move(d).err();
            r.results.push_back(std::move(*d));
        }
    }
    if (const auto ch = j.find("changes"); ch != j.end() && ch->is_array()) {
        for (const auto& x : *ch) {
            auto d = decode_pulled_change(x);
            if (!d) return std::move(d).err();
            r.changes.push_back(std::move(*d));
        }
    }
    if (const auto dr = j.find("dropped"); dr != j.end() && dr->is_array()) {
        for (const auto& x : *dr) {
            auto coll = x.is_object() ? str(x, "collection") : std::nullopt;
            auto id = x.is_object() ? str(x, "id") : std::nullopt;
            if (!coll || !id) return bad(errc::bad_request, "a dropped record needs 'collection' and 'id'");
            r.dropped.push_back({*coll, *id});
        }
    }
    if (const auto rs = j.find("reset"); rs != j.end() && rs->is_boolean()) r.reset = rs->get<bool>();
    r.cursor = str(j, "cursor").value_or("");
    if (const auto m = j.find("more"); m != j.end() && m->is_boolean()) r.more = m->get<bool>();
    if (auto h = str(j, "server_hlc")) {
        if (auto parsed = hlc::parse(*h)) r.server_hlc = *parsed;
    }
    if (const auto u = j.find("upgrade"); u != j.end()) {
        r.upgrade = decode_upgrade_notice(*u);
        if (!r.upgrade) return bad(errc::bad_request, "'upgrade' must hold required, protocol, min_protocol, schema, min_schema");
    }
    r.incarnation = str(j, "incarnation").value_or("");
    if (const auto rs = j.find("resolutions"); rs != j.end() && rs->is_array()) {
        for (const auto& x : *rs) {
            auto n = decode_resolution_notice(x);
            if (!n) return std::move(n).err();
            r.resolutions.push_back(std::move(*n));
        }
    }
    return r;
}

}  // namespace fieldsync::protocol
