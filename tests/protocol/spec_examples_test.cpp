// The worked examples of protocol/SPEC.md are replayed through the codecs, the schema and the
// merge rule, so the contract a phone team reads cannot drift from what the code does.
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/merge.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fp = fieldsync::protocol;
using fp::json;

namespace {

struct block {
    std::string lang;  // "json" or "http"
    std::string text;  // for http: the body after the blank line
};

std::vector<block> spec_blocks() {
    std::ifstream in(FIELDSYNC_SOURCE_DIR "/protocol/SPEC.md", std::ios::binary);
    REQUIRE(in);
    std::vector<block> out;
    std::string line;
    block* open = nullptr;
    bool in_body = false;
    while (std::getline(in, line)) {
        if (!open) {
            if (line == "```json" || line == "```http") {
                out.push_back({line.substr(3), ""});
                open = &out.back();
                in_body = open->lang == "json";
            }
            continue;
        }
        if (line == "```") {
            open = nullptr;
            continue;
        }
        if (!in_body) {
            in_body = line.empty();  // http: headers end at the blank line
            continue;
        }
        open->text += line + "\n";
    }
    REQUIRE(open == nullptr);
    return out;
}

json parse(const std::string& text) {
    const auto j = fp::parse_json(text, fp::tuning::max_json_depth);
    INFO(text);
    REQUIRE(j);
    return *j;
}

// One record's versions as the server would keep them.
struct record_state {
    std::map<std::int64_t, fp::version_state> history;
    fp::head_state head;
};

// Decides every change of `request` against `records` as the store does (stamp, decide,
// validate, write) and checks each against the result shown in `response`.
void replay(const json& request, const json& response, std::map<std::string, record_state>& records,
            const std::string& device) {
    const auto cs = fp::decode_change_set(request);
    REQUIRE(cs);
    const auto expected = fp::decode_sync_response(response);
    REQUIRE(expected);
    REQUIRE(expected->results.size() == cs->changes.size());
    const auto& schema = fp::schema::default_schema();
    for (std::size_t k = 0; k < cs->changes.size(); ++k) {
        const auto& entry = cs->changes[k];
        REQUIRE_FALSE(entry.rejected);
        const auto& c = entry.c;
        const auto& want = expected->results[k];
        INFO("change " << c.change_id);
        CHECK(want.change_id == c.change_id);
        const auto* coll = schema.find(c.collection);
        REQUIRE(coll);

        auto& rec = records[c.collection + "/" + c.id];
        std::optional<fp::head_state> head;
        if (rec.head.version > 0) head = rec.head;
        std::optional<fp::version_state> base;
        if (const auto it = rec.history.find(c.base_version); it != rec.history.end()) base = it->second;
        fp::incoming_change in;
        in.op = c.op;
        in.base_version = c.base_version;
        in.data = &c.data;
        in.stamp = c.stamp.value_or(fp::hlc{});
        in.writer = device;
        auto o = fp::decide(head, base, in, coll->policy);
        if (o.kind != fp::merge_kind::rejected && !o.incoming.deleted) {
            if (auto bad = schema.validate(*coll, o.incoming.data)) {
                o.kind = fp::merge_kind::rejected;
                o.err = *bad;
            }
        }
        const auto status = fp::to_status(o.kind);
        CHECK(fp::status_name(status) == fp::status_name(want.status));
        if (status == fp::change_status::rejected) {
            REQUIRE(o.err);
            REQUIRE(want.err);
            CHECK(o.err->code == want.err->code);
            CHECK(o.err->message == want.err->message);
            CHECK(want.version == rec.head.version);
            continue;
        }
        if (status == fp::change_status::conflict) {
            CHECK(want.conflict_id);
            CHECK(want.version == rec.head.version);
            continue;
        }
        if (o.kind == fp::merge_kind::fast_forward || o.kind == fp::merge_kind::merged) {
            rec.head.version += 1;
            rec.head.state = o.result;
            rec.head.stamp = in.stamp;
            rec.head.writer = device;
            rec.history[rec.head.version] = o.result;
        }
        CHECK(want.version == rec.head.version);
    }
    // Every pulled record of the response shows the state the replay reached.
    for (const auto& p : expected->changes) {
        INFO("pulled " << p.collection << "/" << p.id);
        const auto it = records.find(p.collection + "/" + p.id);
        REQUIRE(it != records.end());
        CHECK(p.version == it->second.head.version);
        CHECK(p.deleted == it->second.head.state.deleted);
        CHECK(p.data == it->second.head.state.data);
    }
}

}  // namespace

TEST_CASE("SPEC.md: every JSON example is valid JSON", "[protocol][spec]") {
    const auto blocks = spec_blocks();
    REQUIRE(blocks.size() >= 12);
    for (const auto& b : blocks) {
        INFO(b.text);
        CHECK(fp::parse_json(b.text, fp::tuning::max_json_depth));
    }
}

TEST_CASE("SPEC.md: the worked examples follow the merge rule", "[protocol][spec][merge]") {
    const auto blocks = spec_blocks();
    // The examples in the order SPEC.md gives them.
    const json v1 = parse(blocks.at(0).text);
    const json applied_req = parse(blocks.at(1).text);
    const json applied_res = parse(blocks.at(2).text);
    const json merged_req = parse(blocks.at(3).text);
    const json merged_res = parse(blocks.at(4).text);
    const json conflict_req = parse(blocks.at(5).text);
    const json conflict_res = parse(blocks.at(6).text);
    const json rejected_req = parse(blocks.at(7).text);
    const json rejected_res = parse(blocks.at(8).text);
    const auto refused = fp::decode_error(parse(blocks.at(9).text));
    REQUIRE(refused);
    CHECK(refused->code == fp::errc::duplicate_change_id);

    std::map<std::string, record_state> records;
    const auto pulled = fp::decode_pulled_change(v1);
    REQUIRE(pulled);
    REQUIRE_FALSE(fp::schema::default_schema().validate(*fp::schema::default_schema().find(pulled->collection),
                                                        pulled->data));
    auto& reg = records[pulled->collection + "/" + pulled->id];
    reg.head.version = 1;
    reg.head.state = {false, pulled->data};
    reg.history[1] = reg.head.state;

    replay(applied_req, applied_res, records, "dev-dt-an");
    CHECK(applied_res["results"][0]["status"] == "applied");
    replay(merged_req, merged_res, records, "dev-lt-bithu-ap3");
    CHECK(merged_res["results"][0]["status"] == "merged");

    // The secretary's own edit of notes from version 3, which the text says came first.
    json patch = json::object();
    patch["change_id"] = "c-secretary";
    patch["collection"] = pulled->collection;
    patch["id"] = pulled->id;
    patch["unit_id"] = pulled->unit_id;
    patch["op"] = "patch";
    patch["base_version"] = 3;
    patch["data"] = json{{"notes", conflict_res["changes"][0]["data"]["notes"]}};
    const json secretary = {{"batch_id", "b-secretary"}, {"changes", json::array({patch})}};
    json answer = json::object();
    answer["results"] = json::array({json{{"change_id", "c-secretary"}, {"status", "applied"}, {"version", 4}}});
    answer["changes"] = json::array();
    answer["cursor"] = "44";
    answer["more"] = false;
    replay(secretary, answer,
           records, "dev-lt-bithu-ap3");

    replay(conflict_req, conflict_res, records, "dev-dt-an");
    CHECK(conflict_res["results"][0]["status"] == "conflict");
    replay(rejected_req, rejected_res, records, "dev-to-chuc-hung-le");
    CHECK(rejected_res["results"][1]["status"] == "rejected");
}

TEST_CASE("SPEC.md: the schema examples are valid schema documents", "[protocol][spec][schema]") {
    const auto blocks = spec_blocks();
    // Every block naming "collections" is a schema document (the format, then the keys of
    // forms); the first block after them naming "error" is the example of a refused one.
    std::size_t schemas = 0, at = 0;
    for (std::size_t k = 0; k < blocks.size(); ++k) {
        if (blocks[k].text.find("\"collections\"") == std::string::npos) continue;
        INFO(blocks[k].text);
        const auto s = fp::schema::from_json(parse(blocks[k].text));
        REQUIRE(s);
        CHECK(s->find("registrations"));
        ++schemas;
        at = k;
    }
    CHECK(schemas == 2);
    while (at < blocks.size() && blocks[at].text.find("\"error\"") == std::string::npos) ++at;
    const auto e = fp::decode_error(parse(blocks.at(at).text));
    REQUIRE(e);
    CHECK(e->code == fp::errc::bad_json);
}

TEST_CASE("SPEC.md's table of the default schema lists every field as default.json has it", "[spec][schema]") {
    std::ifstream in(FIELDSYNC_SOURCE_DIR "/protocol/SPEC.md", std::ios::binary);
    REQUIRE(in);
    std::map<std::string, std::string> rows;  // "collection/field" -> "type | required"
    std::string line;
    bool in_table = false;
    while (std::getline(in, line)) {
        if (line.rfind("| collection | field | type | required | limits |", 0) == 0) {
            in_table = true;
            continue;
        }
        if (!in_table) continue;
        if (line.empty()) break;
        if (line.rfind("|---", 0) == 0) continue;
        std::vector<std::string> cells;
        std::stringstream cols(line.substr(1));
        std::string cell;
        while (std::getline(cols, cell, '|')) {
            const auto b = cell.find_first_not_of(" `"), e = cell.find_last_not_of(" `");
            cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
        }
        REQUIRE(cells.size() >= 4);
        rows[cells[0] + "/" + cells[1]] = cells[2] + " | " + cells[3];
    }
    const auto doc = json::parse(fp::schema::default_schema_text());
    std::size_t fields = 0;
    for (const auto& [name, coll] : doc["collections"].items()) {
        for (const auto& [field, spec] : coll["fields"].items()) {
            ++fields;
            std::string type = spec["type"].get<std::string>();
            if (spec.contains("items")) type += " of " + spec["items"].get<std::string>();
            const std::string required = spec.value("required", false) ? "yes" : "no";
            INFO(name << "/" << field);
            REQUIRE(rows.count(name + "/" + field) == 1);
            CHECK(rows[name + "/" + field] == type + " | " + required);
        }
    }
    CHECK(rows.size() == fields);  // and no field the schema lacks
}

TEST_CASE("SPEC.md: the GET /v1/me example has the fields the server sends", "[protocol][spec]") {
    bool seen = false;
    for (const auto& b : spec_blocks()) {
        if (b.text.find("\"units\"") == std::string::npos || b.text.find("\"device\"") == std::string::npos) continue;
        const auto me = parse(b.text);
        for (const char* k : {"id", "name", "role", "unit_id"}) CHECK(me["device"].contains(k));
        for (const char* k : {"id", "parent", "name", "kind"}) CHECK(me["unit"].contains(k));
        CHECK(me["units"].is_array());
        seen = true;
    }
    CHECK(seen);
}
