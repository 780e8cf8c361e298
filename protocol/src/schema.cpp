#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/protocol/attachment.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <algorithm>
#include <set>
#include <cstdlib>

namespace fieldsync::protocol {
namespace detail {
extern const std::string_view k_default_schema_text;
}

std::string_view merge_policy_name(merge_policy p) noexcept { return p == merge_policy::lww ? "lww" : "review"; }

namespace {

std::optional<field_type> parse_type(std::string_view s) {
    if (s == "string") return field_type::string;
    if (s == "integer") return field_type::integer;
    if (s == "number") return field_type::number;
    if (s == "boolean") return field_type::boolean;
    if (s == "object") return field_type::object;
    if (s == "array") return field_type::array;
    if (s == "date") return field_type::date;
    if (s == "attachment") return field_type::attachment;
    if (s == "any") return field_type::any;
    return std::nullopt;
}

std::string_view type_name(field_type t) {
    switch (t) {
        case field_type::string: return "a string";
        case field_type::integer: return "an integer";
        case field_type::number: return "a number";
        case field_type::boolean: return "true or false";
        case field_type::object: return "an object";
        case field_type::array: return "an array";
        case field_type::date: return "a date \"YYYY-MM-DD\"";
        case field_type::attachment: return "an attachment {sha256, size, content_type, name}";
        case field_type::any: return "any value";
    }
    return "any value";
}

bool is_date(const std::string& s) {
    // YYYY-MM-DD with a real month and a day that month can have.
    if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
    for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
        if (s[i] < '0' || s[i] > '9') return false;
    const int y = std::atoi(s.substr(0, 4).c_str());
    const int m = std::atoi(s.substr(5, 2).c_str());
    const int d = std::atoi(s.substr(8, 2).c_str());
    if (m < 1 || m > 12 || d < 1) return false;
    static constexpr int k_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= k_days[m - 1] + (m == 2 && leap ? 1 : 0);
}

bool has_type(const json& v, field_type t) {
    switch (t) {
        case field_type::string: return v.is_string();
        case field_type::integer: return v.is_number_integer();
        case field_type::number: return v.is_number();
        case field_type::boolean: return v.is_boolean();
        case field_type::object: return v.is_object();
        case field_type::array: return v.is_array();
        case field_type::date: return v.is_string() && is_date(v.get_ref<const std::string&>());
        case field_type::attachment: return parse_attachment(v).has_value();
        case field_type::any: return true;
    }
    return false;
}

error bad_schema(std::string where, std::string what) {
    return error{errc::bad_request, "schema: " + where + ": " + what};
}

// A misspelt key ("requird") would otherwise be ignored and the rule it meant silently lost.
std::optional<error> unknown_keys(const json& obj, std::initializer_list<std::string_view> known,
                                  const std::string& where) {
    for (const auto& [key, _] : obj.items()) {
        if (std::find(known.begin(), known.end(), key) == known.end())
            return bad_schema(where + "." + key, "unknown key (known: " + [&] {
                std::string list;
                for (const auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
                return list;
            }() + ")");
    }
    return std::nullopt;
}

// ---- The keys of forms (SPEC.md, "Forms from the schema") ----
// Neither the server nor the replica uses them; an app builds its forms from them. They are
// checked here all the same, so that a misspelt or misshapen one is refused when the schema
// is loaded instead of silently missing from a phone's form.

// {"vi": "…", "en": "…"}: a text in one language or more (BCP 47-like tags).
std::optional<error> check_text(const json& t, const std::string& where) {
    if (!t.is_object() || t.empty()) return bad_schema(where, "must be an object of texts by language, e.g. {\"vi\": \"…\"}");
    for (const auto& [lang, text] : t.items()) {
        const bool tag = lang.size() >= 2 && lang.size() <= 8 &&
                         std::all_of(lang.begin(), lang.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '-'; });
        if (!tag) return bad_schema(where + "." + lang, "must be a language tag such as vi or en");
        if (!text.is_string() || text.get_ref<const std::string&>().empty())
            return bad_schema(where + "." + lang, "must be a non-empty string");
    }
    return std::nullopt;
}

// A field's default: {"value": V} (V of the field's type), {"now": "date"} (today, date
// fields), {"now": "year"} (this year, integer fields) or {"device": "unit"} (the device's
// unit id, string fields).
std::optional<error> check_default(const json& d, const field_spec& f, const std::string& where) {
    const char* const shape = "must be {\"value\": V}, {\"now\": \"date\"}, {\"now\": \"year\"} or {\"device\": \"unit\"}";
    if (!d.is_object() || d.size() != 1) return bad_schema(where, shape);
    const auto word = [&](const char* key) {
        const auto it = d.find(key);
        return it != d.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (const auto v = d.find("value"); v != d.end())
        return has_type(*v, f.type) ? std::nullopt : std::optional<error>(bad_schema(where, "the value is not of the field's type"));
    if (word("now") == "date")
        return f.type == field_type::date ? std::nullopt : std::optional<error>(bad_schema(where, "now: date needs a date field"));
    if (word("now") == "year")
        return f.type == field_type::integer ? std::nullopt
                                             : std::optional<error>(bad_schema(where, "now: year needs an integer field"));
    if (word("device") == "unit")
        return f.type == field_type::string ? std::nullopt
                                            : std::optional<error>(bad_schema(where, "device: unit needs a string field"));
    return bad_schema(where, shape);
}

// label, help, choices (a label for each value of one_of) and default of one field; ref is
// checked once every collection is known (check_references).
std::optional<error> check_field_form(const json& fdef, const field_spec& f, const std::string& where) {
    for (const char* key : {"label", "help"})
        if (const auto t = fdef.find(key); t != fdef.end())
            if (auto e = check_text(*t, where + "." + key)) return e;
    if (const auto c = fdef.find("choices"); c != fdef.end()) {
        if (!c->is_object() || f.one_of.empty()) return bad_schema(where + ".choices", "labels the values of one_of: an object");
        for (const auto& [value, text] : c->items()) {
            if (std::find(f.one_of.begin(), f.one_of.end(), value) == f.one_of.end())
                return bad_schema(where + ".choices." + value, "is not a value of one_of");
            if (auto e = check_text(text, where + ".choices." + value)) return e;
        }
    }
    if (const auto r = fdef.find("ref"); r != fdef.end() && (!r->is_string() || f.type != field_type::string))
        return bad_schema(where + ".ref", "names a collection, on a string field (it holds a record's id)");
    if (const auto d = fdef.find("default"); d != fdef.end())
        if (auto e = check_default(*d, f, where + ".default")) return e;
    return std::nullopt;
}

// A collection's title: a field name or an array of 1 to 3 distinct ones, each a string,
// integer or date field of the collection (the values that name a record in lists).
std::optional<error> parse_title(const json& t, collection_schema& c, const std::string& where) {
    const char* const shape = "must name a string, integer or date field of the collection, or be an array of 1 to 3 of them";
    std::vector<std::string> names;
    if (t.is_string()) {
        names.push_back(t.get<std::string>());
    } else if (t.is_array() && !t.empty() && t.size() <= 3) {
        for (const auto& n : t) {
            if (!n.is_string()) return bad_schema(where, shape);
            if (std::find(names.begin(), names.end(), n.get<std::string>()) != names.end())
                return bad_schema(where, "names a field twice");
            names.push_back(n.get<std::string>());
        }
    } else {
        return bad_schema(where, shape);
    }
    for (const auto& n : names) {
        const auto f = c.fields.find(n);
        if (f == c.fields.end() || (f->second.type != field_type::string && f->second.type != field_type::integer &&
                                    f->second.type != field_type::date))
            return bad_schema(where, shape + std::string(" ('") + n + "' is not)");
    }
    c.title = std::move(names);
    return std::nullopt;
}

// A collection's label and help, and every field's ref (a collection of this document).
std::optional<error> check_references(const json& colls, const std::map<std::string, collection_schema, std::less<>>& parsed) {
    for (const auto& [name, def] : colls.items()) {
        const std::string where = "collections." + name;
        for (const char* key : {"label", "help"})
            if (const auto t = def.find(key); t != def.end())
                if (auto e = check_text(*t, where + "." + key)) return e;
        const auto& c = parsed.at(name);
        if (const auto o = def.find("order"); o != def.end()) {
            // The order of the fields in a form (a JSON object's keys have none once parsed).
            std::set<std::string> seen;
            if (!o->is_array()) return bad_schema(where + ".order", "must be an array of the collection's field names");
            for (const auto& f : *o)
                if (!f.is_string() || !c.fields.contains(f.get<std::string>()) || !seen.insert(f.get<std::string>()).second)
                    return bad_schema(where + ".order", "must name fields of the collection, each once");
        }
        if (const auto fields = def.find("fields"); fields != def.end())
            for (const auto& [fname, fdef] : fields->items())
                if (const auto r = fdef.find("ref"); r != fdef.end() && !parsed.contains(r->get<std::string>()))
                    return bad_schema(where + ".fields." + fname + ".ref", "names no collection of this schema");
    }
    return std::nullopt;
}

}  // namespace

expected<schema> schema::from_json(const json& doc) {
    if (!doc.is_object()) return bad_schema("document", "must be a JSON object");
    if (auto e = unknown_keys(doc, {"version", "min_client_schema", "collections"}, "document")) return *e;
    schema s;
    if (const auto v = doc.find("version"); v != doc.end()) {
        const auto n = as_int64(*v, 1);
        if (!n) return bad_schema("version", "must be a positive integer");
        s.version_ = *n;
    }
    if (const auto v = doc.find("min_client_schema"); v != doc.end()) {
        const auto n = as_int64(*v, 1);
        if (!n || *n > s.version_) return bad_schema("min_client_schema", "must be an integer from 1 to the version");
        s.min_client_version_ = *n;
    }
    const auto colls = doc.find("collections");
    if (colls == doc.end() || !colls->is_object() || colls->empty())
        return bad_schema("collections", "must be a non-empty object");
    for (const auto& [name, def] : colls->items()) {
        const std::string where = "collections." + name;
        if (name.empty() || name.size() > tuning::max_collection_bytes)
            return bad_schema(where, "a collection name must be 1 to 64 bytes");
        if (!def.is_object()) return bad_schema(where, "must be an object");
        if (auto e = unknown_keys(def, {"policy", "fields", "label", "help", "title", "order"}, where)) return *e;
        collection_schema c;
        c.name = name;
        if (const auto p = def.find("policy"); p != def.end()) {
            if (*p == "review")
                c.policy = merge_policy::review;
            else if (*p == "lww")
                c.policy = merge_policy::lww;
            else
                return bad_schema(where + ".policy", "must be \"review\" or \"lww\"");
        }
        const auto fields = def.find("fields");
        if (fields != def.end()) {
            if (!fields->is_object()) return bad_schema(where + ".fields", "must be an object");
            for (const auto& [fname, fdef] : fields->items()) {
                const std::string fwhere = where + ".fields." + fname;
                if (!fdef.is_object()) return bad_schema(fwhere, "must be an object");
                if (auto e = unknown_keys(fdef, {"type", "required", "max_length", "one_of", "items", "label", "help",
                                                 "choices", "ref", "default"},
                                          fwhere))
                    return *e;
                field_spec f;
                const auto t = fdef.find("type");
                if (t == fdef.end() || !t->is_string() || !parse_type(t->get<std::string>()))
                    return bad_schema(fwhere + ".type",
                                      "must be one of string, integer, number, boolean, object, array, date, attachment, any");
                f.type = *parse_type(t->get<std::string>());
                if (const auto r = fdef.find("required"); r != fdef.end()) {
                    if (!r->is_boolean()) return bad_schema(fwhere + ".required", "must be true or false");
                    f.required = r->get<bool>();
                }
                if (const auto m = fdef.find("max_length"); m != fdef.end()) {
                    const auto n = as_int64(*m, 1);
                    if (!n) return bad_schema(fwhere + ".max_length", "must be a positive integer");
                    f.max_length = static_cast<std::size_t>(*n);
                }
                if (const auto o = fdef.find("one_of"); o != fdef.end()) {
                    if (!o->is_array()) return bad_schema(fwhere + ".one_of", "must be an array of strings");
                    for (const auto& x : *o) {
                        if (!x.is_string()) return bad_schema(fwhere + ".one_of", "must be an array of strings");
                        f.one_of.push_back(x.get<std::string>());
                    }
                }
                if (const auto it = fdef.find("items"); it != fdef.end()) {
                    if (!it->is_string() || !parse_type(it->get<std::string>()))
                        return bad_schema(fwhere + ".items", "must name a type");
                    f.items = parse_type(it->get<std::string>());
                }
                if (auto e = check_field_form(fdef, f, fwhere)) return *e;
                if (const auto r = fdef.find("ref"); r != fdef.end()) f.ref = r->get<std::string>();
                c.fields.emplace(fname, std::move(f));
            }
        }
        if (const auto t = def.find("title"); t != def.end())
            if (auto e = parse_title(*t, c, where + ".title")) return *e;
        s.collections_.emplace(name, std::move(c));
    }
    if (auto e = check_references(*colls, s.collections_)) return *e;
    s.document_ = doc;
    return s;
}

std::string record_title(const collection_schema& c, const json& record, const ref_namer& name_ref) {
    std::string out;
    if (!record.is_object()) return out;
    for (const auto& name : c.title) {
        const auto v = record.find(name);
        if (v == record.end()) continue;
        std::string part;
        const auto f = c.fields.find(name);
        if (v->is_string()) {
            const auto& s = v->get_ref<const std::string&>();
            part = f != c.fields.end() && !f->second.ref.empty() && !s.empty() && name_ref ? name_ref(f->second.ref, s) : s;
        } else if (v->is_number_integer()) {
            part = v->dump();
        }
        if (part.empty()) continue;
        if (!out.empty()) out += ", ";
        out += part;
    }
    return out;
}

const schema& schema::default_schema() {
    static const schema s = [] {
        auto doc = json::parse(detail::k_default_schema_text);
        auto parsed = from_json(doc);
        if (!parsed) std::abort();  // the shipped file is checked by the tests; cannot happen
        return std::move(parsed).value();
    }();
    return s;
}

std::string_view schema::default_schema_text() noexcept { return detail::k_default_schema_text; }

const collection_schema* schema::find(std::string_view collection) const {
    const auto it = collections_.find(collection);
    return it == collections_.end() ? nullptr : &it->second;
}

std::optional<error> schema::validate(const collection_schema& c, const json& record) const {
    if (!record.is_object()) return error{errc::schema_violation, "a record must be a JSON object"};
    for (const auto& [name, f] : c.fields) {
        const auto it = record.find(name);
        if (it == record.end() || it->is_null()) {
            if (f.required)
                return error{errc::schema_violation, c.name + ": field '" + name + "' is required"};
            continue;
        }
        if (!has_type(*it, f.type))
            return error{errc::schema_violation,
                         c.name + ": field '" + name + "' must be " + std::string(type_name(f.type))};
        if (it->is_string()) {
            const auto& s = it->get_ref<const std::string&>();
            if (f.max_length && s.size() > *f.max_length)
                return error{errc::schema_violation, c.name + ": field '" + name + "' is longer than " +
                                                         std::to_string(*f.max_length) + " bytes"};
            if (!f.one_of.empty() && std::find(f.one_of.begin(), f.one_of.end(), s) == f.one_of.end())
                return error{errc::schema_violation, c.name + ": field '" + name + "' has a value not allowed"};
        }
        if (f.items && it->is_array()) {
            std::size_t i = 0;
            for (const auto& x : *it) {
                if (!has_type(x, *f.items))
                    return error{errc::schema_violation, c.name + ": field '" + name + "[" + std::to_string(i) +
                                                             "]' must be " + std::string(type_name(*f.items))};
                ++i;
            }
        }
    }
    return std::nullopt;
}

}  // namespace fieldsync::protocol
