// The schema of collections: the shipped default (the collections of domain.md), validation
// messages that name the field, and clear errors for a bad schema document.
#include <fieldsync/protocol/schema.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace fp = fieldsync::protocol;
using fp::json;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const fp::collection_schema& coll(const char* name) {
    const auto* c = fp::schema::default_schema().find(name);
    INFO(name);
    REQUIRE(c);
    return *c;
}

std::optional<fp::error> check(const char* collection, const json& record) {
    return fp::schema::default_schema().validate(coll(collection), record);
}

void check_violation(const char* collection, const json& record, const std::string& names) {
    INFO(collection << " " << record.dump());
    const auto err = check(collection, record);
    REQUIRE(err);
    CHECK(err->code == fp::errc::schema_violation);
    CHECK_THAT(err->message, Contains(names));
}

// `base` with the members of `changes` replaced.
json with(json base, const json& changes) {
    base.update(changes);
    return base;
}

json registration() {
    return {{"member", "mem-tran-thi-mai"},
            {"year", 2014},
            {"theme", "Nêu cao tinh thần trách nhiệm, chống chủ nghĩa cá nhân, nói đi đôi với làm"},
            {"commitments", {"Rời khỏi phòng thì tắt quạt máy, tắt đèn", "Không sử dụng máy in cho việc riêng"}},
            {"status", "submitted"}};
}

json study_session() {
    return {{"unit", "phong-giao-duc"}, {"date", "2014-05-15"}, {"audience", "giáo viên"},
            {"invited", 1000},         {"attended", 974}};
}

std::string bad_schema_message(const json& doc) {
    const auto s = fp::schema::from_json(doc);
    REQUIRE_FALSE(s);
    CHECK(s.err().code == fp::errc::bad_request);
    return s.err().message;
}

}  // namespace

TEST_CASE("the default schema holds the eight collections of domain.md", "[protocol][schema]") {
    const auto& s = fp::schema::default_schema();
    CHECK(s.version() == 1);
    std::vector<std::string> names;
    for (const auto& [name, c] : s.collections()) {
        names.push_back(name);
        CHECK(c.name == name);
        CHECK(c.policy == fp::merge_policy::review);
        CHECK_FALSE(c.fields.empty());
    }
    CHECK(names == std::vector<std::string>{"conclusions", "inspections", "members", "registrations", "reviews",
                                            "standards", "study_sessions", "units"});
    CHECK(s.find("attendance") == nullptr);
    CHECK(s.find("") == nullptr);

    const auto& reg = coll("registrations");
    const auto& commitments = reg.fields.at("commitments");
    CHECK(commitments.type == fp::field_type::array);
    CHECK(commitments.required);
    REQUIRE(commitments.items);
    CHECK(*commitments.items == fp::field_type::string);
    CHECK(reg.fields.at("status").one_of == std::vector<std::string>{"draft", "submitted", "reviewed", "vague"});
    CHECK(coll("units").fields.at("kind").one_of ==
          std::vector<std::string>{"district", "commune", "cell", "office"});
    CHECK(coll("study_sessions").fields.at("date").type == fp::field_type::date);
    CHECK(coll("reviews").fields.at("vague").type == fp::field_type::boolean);
    CHECK(coll("members").fields.at("name").max_length == std::size_t{200});
}

TEST_CASE("the compiled-in schema is protocol/schema/default.json", "[protocol][schema]") {
    std::ifstream in(FIELDSYNC_SOURCE_DIR "/protocol/schema/default.json", std::ios::binary);
    REQUIRE(in);
    std::ostringstream text;
    text << in.rdbuf();
    CHECK(fp::schema::default_schema_text() == text.str());
    const auto reparsed = fp::schema::from_json(json::parse(fp::schema::default_schema_text()));
    REQUIRE(reparsed);
    CHECK(reparsed->collections().size() == 8);
}

TEST_CASE("valid records of the default schema pass", "[protocol][schema]") {
    CHECK_FALSE(check("registrations", registration()));
    CHECK_FALSE(check("study_sessions", study_session()));
    CHECK_FALSE(check("units", json{{"name", "Đảng bộ xã Châu Bình"}, {"kind", "commune"}, {"parent", "huyen"}}));
    CHECK_FALSE(check("members", json{{"name", "Võ Thành Phúc"}, {"cell", "chi-bo-ap-2"}, {"joined", "1999-02-03"}}));
    CHECK_FALSE(check("standards", json{{"cell", "chi-bo-toa-an"},
                                        {"year", 2014},
                                        {"items", {"Việc hôm nay, không để ngày mai"}}}));
    CHECK_FALSE(check("reviews", json{{"registration", "reg-1"},
                                      {"member", "mem-1"},
                                      {"period", "6 tháng đầu năm 2014"},
                                      {"assessment", "Nội dung đăng ký còn chung chung, chưa cụ thể"},
                                      {"vague", true}}));
    CHECK_FALSE(check("inspections", json{{"unit", "xa-luong-phu"}, {"date", "2014-07-10"}, {"team", json::array()}}));
    CHECK_FALSE(check("conclusions", json{{"inspection", "insp-1"}, {"unit", "xa-luong-phu"}, {"date", "2014-07-30"}}));
}

TEST_CASE("fields not named in the schema are kept and allowed", "[protocol][schema]") {
    json r = registration();
    r["app_version"] = "2.1";
    r["extra"] = {{"nested", {1, 2, 3}}};
    CHECK_FALSE(check("registrations", r));
}

TEST_CASE("a required field: missing or null", "[protocol][schema]") {
    json r = registration();
    r.erase("year");
    check_violation("registrations", r, "'year'");
    check_violation("registrations", r, "required");
    r = registration();
    r["member"] = nullptr;
    check_violation("registrations", r, "'member'");
    // An optional field may be null or absent.
    r = registration();
    r["theme"] = nullptr;
    r.erase("status");
    CHECK_FALSE(check("registrations", r));
}

TEST_CASE("a field of the wrong type", "[protocol][schema]") {
    check_violation("registrations", with(registration(), json{{"year", "2014"}}), "'year' must be an integer");
    check_violation("registrations", with(registration(), json{{"year", 2014.5}}), "'year'");
    check_violation("registrations", with(registration(), json{{"commitments", "tắt đèn"}}),
                    "'commitments' must be an array");
    check_violation("reviews",
                    json{{"registration", "r"}, {"member", "m"}, {"period", "p"}, {"assessment", "a"}, {"vague", 1}},
                    "'vague' must be true or false");
    check_violation("study_sessions", with(study_session(), json{{"attended", "974"}}), "'attended'");
    check_violation("units", json{{"name", 5}, {"kind", "cell"}}, "'name' must be a string");
    // integer fields accept any JSON integer, number fields any number.
    const auto doc = json::parse(R"({"collections":{"c":{"fields":{"n":{"type":"number"},"o":{"type":"object"},
        "a":{"type":"any"}}}}})");
    const auto s = fp::schema::from_json(doc);
    REQUIRE(s);
    const auto* c = s->find("c");
    CHECK_FALSE(s->validate(*c, json{{"n", 1.5}, {"o", json::object()}, {"a", json::array()}}));
    CHECK_FALSE(s->validate(*c, json{{"n", 2}, {"a", "x"}}));
    CHECK(s->validate(*c, json{{"o", json::array()}}));
    CHECK(s->validate(*c, json{{"n", "1"}}));
}

TEST_CASE("dates are real YYYY-MM-DD days", "[protocol][schema]") {
    for (const char* ok : {"2014-07-30", "2014-02-28", "2016-02-29", "2000-02-29", "2014-12-31", "2014-01-01"}) {
        INFO(ok);
        CHECK_FALSE(check("study_sessions", with(study_session(), json{{"date", ok}})));
    }
    for (const char* bad : {"30/07/2014", "2014-7-30", "2014-07-30T08:00:00Z", "2014-02-29", "1900-02-29",
                            "2014-13-01", "2014-00-10", "2014-04-31", "2014-07-00", "2014-07-32", "20140730", "",
                            "2014-07-3a", "2014/07/30"}) {
        INFO(bad);
        check_violation("study_sessions", with(study_session(), json{{"date", bad}}), "'date' must be a date");
    }
    check_violation("study_sessions", with(study_session(), json{{"date", 20140730}}), "'date'");
}

TEST_CASE("max_length, one_of and array items name the field", "[protocol][schema]") {
    check_violation("units", json{{"name", std::string(301, 'x')}, {"kind", "cell"}}, "'name' is longer than 300");
    CHECK_FALSE(check("units", json{{"name", std::string(300, 'x')}, {"kind", "cell"}}));
    check_violation("units", json{{"name", "Chi bộ ấp 1"}, {"kind", "hamlet"}}, "'kind'");
    check_violation("registrations", with(registration(), json{{"status", "Submitted"}}), "'status'");
    check_violation("registrations",
                    with(registration(), json{{"commitments", {"Tiết kiệm giấy, mực in, điện", 3}}}),
                    "'commitments[1]' must be a string");
    check_violation("inspections", json{{"unit", "u"}, {"date", "2014-07-10"}, {"findings", {"ok", nullptr}}},
                    "'findings[1]'");
}

TEST_CASE("a record must be an object", "[protocol][schema]") {
    check_violation("units", json::array(), "object");
    check_violation("units", "text", "object");
    check_violation("units", nullptr, "object");
}

TEST_CASE("a schema document with lww policy and every field option loads", "[protocol][schema]") {
    const auto doc = json::parse(R"({
      "version": 3,
      "collections": {
        "attendance": {
          "policy": "lww",
          "fields": {
            "session":  {"type": "string", "required": true, "max_length": 128},
            "present":  {"type": "array", "items": "string"},
            "status":   {"type": "string", "one_of": ["open", "closed"]},
            "day":      {"type": "date"}
          }
        },
        "notes": {}
      }
    })");
    const auto s = fp::schema::from_json(doc);
    REQUIRE(s);
    CHECK(s->version() == 3);
    const auto* a = s->find("attendance");
    REQUIRE(a);
    CHECK(a->policy == fp::merge_policy::lww);
    CHECK(a->fields.at("session").required);
    CHECK(a->fields.at("session").max_length == std::size_t{128});
    CHECK(a->fields.at("present").items == fp::field_type::string);
    CHECK(a->fields.at("status").one_of.size() == 2);
    const auto* n = s->find("notes");
    REQUIRE(n);
    CHECK(n->policy == fp::merge_policy::review);
    CHECK(n->fields.empty());
    CHECK_FALSE(s->validate(*n, json{{"anything", 1}}));
    CHECK(fp::merge_policy_name(fp::merge_policy::lww) == "lww");
    CHECK(fp::merge_policy_name(fp::merge_policy::review) == "review");
}

TEST_CASE("a bad schema document is an error naming where", "[protocol][schema]") {
    CHECK_THAT(bad_schema_message(json::array()), Contains("document"));
    CHECK_THAT(bad_schema_message(json::object()), Contains("collections"));
    CHECK_THAT(bad_schema_message(json{{"collections", json::object()}}), Contains("collections"));
    CHECK_THAT(bad_schema_message(json{{"collections", json::array()}}), Contains("collections"));
    CHECK_THAT(bad_schema_message(json{{"version", 0}, {"collections", {{"c", json::object()}}}}), Contains("version"));
    CHECK_THAT(bad_schema_message(json{{"version", "1"}, {"collections", {{"c", json::object()}}}}), Contains("version"));
    CHECK_THAT(bad_schema_message(json{{"collections", {{"c", 5}}}}), Contains("collections.c"));
    CHECK_THAT(bad_schema_message(json{{"collections", {{std::string(65, 'c'), json::object()}}}}),
               Contains("1 to 64"));
    CHECK_THAT(bad_schema_message(json{{"collections", {{"c", {{"policy", "first_wins"}}}}}}),
               Contains("collections.c.policy"));
    CHECK_THAT(bad_schema_message(json{{"collections", {{"c", {{"policy", 1}}}}}}), Contains("collections.c.policy"));
    CHECK_THAT(bad_schema_message(json{{"collections", {{"c", {{"fields", json::array()}}}}}}),
               Contains("collections.c.fields"));
    const auto field = [](json def) { return json{{"collections", {{"c", {{"fields", {{"f", std::move(def)}}}}}}}}; };
    CHECK_THAT(bad_schema_message(field("string")), Contains("collections.c.fields.f"));
    CHECK_THAT(bad_schema_message(field(json::object())), Contains("collections.c.fields.f.type"));
    CHECK_THAT(bad_schema_message(field({{"type", "text"}})), Contains("collections.c.fields.f.type"));
    CHECK_THAT(bad_schema_message(field({{"type", "string"}, {"required", "yes"}})),
               Contains("collections.c.fields.f.required"));
    CHECK_THAT(bad_schema_message(field({{"type", "string"}, {"max_length", 0}})),
               Contains("collections.c.fields.f.max_length"));
    CHECK_THAT(bad_schema_message(field({{"type", "string"}, {"max_length", 2.5}})),
               Contains("collections.c.fields.f.max_length"));
    CHECK_THAT(bad_schema_message(field({{"type", "string"}, {"one_of", "a"}})),
               Contains("collections.c.fields.f.one_of"));
    CHECK_THAT(bad_schema_message(field({{"type", "string"}, {"one_of", {"a", 1}}})),
               Contains("collections.c.fields.f.one_of"));
    CHECK_THAT(bad_schema_message(field({{"type", "array"}, {"items", "strings"}})),
               Contains("collections.c.fields.f.items"));
    CHECK_THAT(bad_schema_message(field({{"type", "array"}, {"items", 1}})), Contains("collections.c.fields.f.items"));
    CHECK_THAT(bad_schema_message(field({{"type", "text"}})), StartsWith("schema: "));
    // A misspelt key is refused, not ignored: the rule it meant would silently be lost.
    CHECK_THAT(bad_schema_message(field({{"type", "string"}, {"requird", true}})),
               Contains("collections.c.fields.f.requird"));
    CHECK_THAT(bad_schema_message(json{{"collections", {{"c", {{"polcy", "lww"}}}}}}),
               Contains("collections.c.polcy"));
    CHECK_THAT(bad_schema_message(json{{"colections", json::object()}, {"collections", {{"c", json::object()}}}}),
               Contains("document.colections"));
}

// SPEC.md, "Forms from the schema": labels, help, title, choices, ref and default.
TEST_CASE("the default schema names every collection and field for a form, in Vietnamese and English",
          "[protocol][schema][forms]") {
    const json doc = fp::schema::default_schema().document();  // a copy: at() throws, [] would not
    for (const auto& [name, c] : doc.at("collections").items()) {
        INFO(name);
        CHECK(c.at("label").at("vi").is_string());
        CHECK(c.at("label").at("en").is_string());
        for (const auto& [field, spec] : c.at("fields").items()) {
            INFO(field);
            CHECK(spec.at("label").at("vi").is_string());
            CHECK(spec.at("label").at("en").is_string());
            if (spec.contains("one_of")) CHECK(spec.at("choices").size() == spec.at("one_of").size());
        }
    }
    const auto& colls = doc.at("collections");
    CHECK(colls.at("registrations").at("fields").at("member").at("ref") == "members");
    CHECK(colls.at("registrations").at("fields").at("year").at("default") == json{{"now", "year"}});
    CHECK(colls.at("members").at("title") == "name");
    CHECK(colls.at("registrations").at("title") == json{"member", "year"});
    // Every collection names its records, so a list or a reviewer never shows a bare id.
    for (const auto& [name, c] : fp::schema::default_schema().collections()) {
        INFO(name);
        CHECK_FALSE(c.title.empty());
    }
    CHECK(colls.at("registrations").at("order") ==
          json{"member", "year", "theme", "commitments", "status", "scans", "notes"});
    CHECK(colls.at("members").at("fields").at("cell").at("default") == json{{"device", "unit"}});
}

TEST_CASE("a schema without the keys of forms still loads, and one with them validates as before",
          "[protocol][schema][forms]") {
    const json plain = {{"collections", {{"members", {{"fields", {{"name", {{"type", "string"}, {"required", true}}}}}}}}}};
    REQUIRE(fp::schema::from_json(plain));
    json labelled = plain;
    labelled["collections"]["members"]["label"] = {{"vi", "Đảng viên"}};
    labelled["collections"]["members"]["title"] = "name";
    labelled["collections"]["members"]["fields"]["name"]["label"] = {{"vi", "Họ và tên"}, {"en", "Full name"}};
    labelled["collections"]["members"]["fields"]["name"]["help"] = {{"vi", "Viết đủ dấu"}};
    labelled["collections"]["members"]["fields"]["name"]["default"] = {{"value", "Chưa rõ"}};
    const auto s = fp::schema::from_json(labelled);
    REQUIRE(s);
    CHECK(s->validate(*s->find("members"), json{{"name", "Nguyễn Thị Lụa"}}) == std::nullopt);
    CHECK(s->validate(*s->find("members"), json::object()).has_value());
}

TEST_CASE("misshapen keys of forms are refused, naming where", "[protocol][schema][forms]") {
    const json base = {{"collections",
                        {{"members", {{"fields", {{"name", {{"type", "string"}}}, {"joined", {{"type", "date"}}},
                                                  {"count", {{"type", "integer"}}},
                                                  {"alive", {{"type", "boolean"}}},
                                                  {"tags", {{"type", "array"}, {"items", "string"}}},
                                                  {"kind", {{"type", "string"}, {"one_of", {"a", "b"}}}}}}}},
                         {"registrations", {{"fields", {{"member", {{"type", "string"}}}}}}}}}};
    REQUIRE(fp::schema::from_json(base));
    const auto refused = [&](const std::string& pointer, const json& value, const std::string& where) {
        json doc = base;
        doc[json::json_pointer(pointer)] = value;
        INFO(pointer << " = " << value.dump());
        CHECK_THAT(bad_schema_message(doc), Contains(where));
    };
    refused("/collections/members/label", "Đảng viên", "collections.members.label");
    refused("/collections/members/label", json::object(), "collections.members.label");
    refused("/collections/members/label", {{"Tiếng Việt", "Đảng viên"}}, "collections.members.label.Tiếng Việt");
    refused("/collections/members/label", {{"vi", ""}}, "collections.members.label.vi");
    refused("/collections/members/order", "name", "collections.members.order");
    refused("/collections/members/order", {"name", "nobody"}, "collections.members.order");
    refused("/collections/members/order", {"name", "name"}, "collections.members.order");
    refused("/collections/members/title", "alive", "collections.members.title");
    refused("/collections/members/title", "tags", "collections.members.title");
    refused("/collections/members/title", "nobody", "collections.members.title");
    refused("/collections/members/title", 3, "collections.members.title");
    refused("/collections/members/title", json::array(), "collections.members.title");
    refused("/collections/members/title", {"name", "joined", "count", "kind"}, "collections.members.title");
    refused("/collections/members/title", {"name", "name"}, "collections.members.title");
    refused("/collections/members/title", {"name", 1}, "collections.members.title");
    refused("/collections/members/title", {"name", "nobody"}, "collections.members.title");
    refused("/collections/members/title", {"name", "alive"}, "collections.members.title");
    refused("/collections/members/fields/name/help", {{"vi", 3}}, "collections.members.fields.name.help.vi");
    refused("/collections/members/fields/kind/choices", {{"c", {{"vi", "Ba"}}}}, "collections.members.fields.kind.choices.c");
    refused("/collections/members/fields/name/choices", {{"a", {{"vi", "A"}}}}, "collections.members.fields.name.choices");
    refused("/collections/registrations/fields/member/ref", "people", "collections.registrations.fields.member.ref");
    refused("/collections/members/fields/count/ref", "members", "collections.members.fields.count.ref");
    refused("/collections/members/fields/count/default", {{"now", "date"}}, "collections.members.fields.count.default");
    refused("/collections/members/fields/joined/default", {{"now", "year"}}, "collections.members.fields.joined.default");
    refused("/collections/members/fields/count/default", {{"value", "hai"}}, "collections.members.fields.count.default");
    refused("/collections/members/fields/count/default", {{"device", "unit"}}, "collections.members.fields.count.default");
    refused("/collections/members/fields/name/default", {{"now", 1}}, "collections.members.fields.name.default");
    refused("/collections/members/fields/name/default", "@unit", "collections.members.fields.name.default");
    refused("/collections/members/fields/name/lable", {{"vi", "Tên"}}, "collections.members.fields.name.lable");

    json good = base;
    good["collections"]["registrations"]["fields"]["member"]["ref"] = "members";
    good["collections"]["members"]["order"] = {"name", "kind"};
    good["collections"]["members"]["fields"]["count"]["default"] = {{"now", "year"}};
    good["collections"]["members"]["fields"]["joined"]["default"] = {{"now", "date"}};
    good["collections"]["members"]["fields"]["name"]["default"] = {{"device", "unit"}};
    good["collections"]["members"]["fields"]["kind"]["choices"] = {{"a", {{"vi", "Một"}, {"en", "One"}}}};
    CHECK(fp::schema::from_json(good));
    for (const json& title : {json("joined"), json("count"), json{"name"}, json{"kind", "joined", "count"}}) {
        INFO(title.dump());
        good["collections"]["members"]["title"] = title;
        const auto s = fp::schema::from_json(good);
        REQUIRE(s);
        CHECK(s->find("members")->title == (title.is_string() ? std::vector<std::string>{title.get<std::string>()}
                                                              : title.get<std::vector<std::string>>()));
    }
}

TEST_CASE("a record's title: the title fields' values, references named, joined with a comma",
          "[protocol][schema][forms]") {
    const auto& s = fp::schema::default_schema();
    std::vector<std::pair<std::string, std::string>> asked;
    const fp::ref_namer namer = [&](const std::string& collection, const std::string& id) -> std::string {
        asked.emplace_back(collection, id);
        if (collection == "members" && id == "dv-00007") return "Nguyễn Văn Bảy";
        if (collection == "units" && id == "binh-hoa-ap-3") return "Chi bộ ấp 3";
        return "";
    };
    CHECK(fp::record_title(*s.find("members"), json{{"name", "Trần Thị Lụa"}, {"cell", "binh-hoa-ap-3"}}, namer) ==
          "Trần Thị Lụa");
    CHECK(asked.empty());  // a member is named by its own field, no reference
    CHECK(fp::record_title(*s.find("registrations"), json{{"member", "dv-00007"}, {"year", 2014}}, namer) ==
          "Nguyễn Văn Bảy, 2014");
    CHECK(asked.back() == std::pair<std::string, std::string>{"members", "dv-00007"});
    CHECK(fp::record_title(*s.find("study_sessions"),
                           json{{"unit", "binh-hoa-ap-3"}, {"date", "2014-05-02"}, {"audience", "đảng viên"}}, namer) ==
          "Chi bộ ấp 3, 2014-05-02, đảng viên");
    // Missing, empty and unknown values are left out; nothing at all is "".
    CHECK(fp::record_title(*s.find("registrations"), json{{"member", "dv-99999"}, {"year", 2015}}, namer) == "2015");
    CHECK(fp::record_title(*s.find("study_sessions"), json{{"unit", ""}, {"audience", "giáo viên"}}, namer) ==
          "giáo viên");
    CHECK(fp::record_title(*s.find("members"), json::object(), namer).empty());
    CHECK(fp::record_title(*s.find("members"), json(nullptr), namer).empty());
    CHECK(fp::record_title(*s.find("members"), json{{"name", 7}}, namer) == "7");
    // Text keeps its bytes: a name typed in NFD stays NFD.
    const std::string nfd = "Tra\xcc\x82\xcc\x80n";
    CHECK(fp::record_title(*s.find("members"), json{{"name", nfd}}, namer) == nfd);
    // A collection that names no title field has none.
    const auto plain = fp::schema::from_json(
        {{"collections", {{"notes", {{"fields", {{"text", {{"type", "string"}}}}}}}}}});
    REQUIRE(plain);
    CHECK(fp::record_title(*plain->find("notes"), json{{"text", "một dòng"}}, namer).empty());
}
