// libFuzzer target: schema::from_json on a document from the input, then validate() of
// records from the input against every collection of that schema and of the default schema.
// Input: a JSON array [schema document, record...] or any JSON value (then it is both the
// schema document and the record). Nothing may throw; validate's verdict must not depend on
// member order, and a record that validates must still validate after a dump/parse round trip.
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/schema.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace fp = fieldsync::protocol;

namespace {
[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_schema: %s\n", what);
    std::abort();
}

void check_records(const fp::schema& s, const std::vector<const fp::json*>& records) {
    for (const auto& [name, c] : s.collections()) {
        for (const auto* r : records) {
            const auto verdict = s.validate(c, *r);
            if (verdict) {
                (void)verdict->message.size();
                continue;
            }
            auto again = fp::parse_json(r->dump(), fp::tuning::max_json_depth + 2);
            if (!again) fail("a valid record dumps to text parse_json refuses");
            if (s.validate(c, *again)) fail("a valid record is invalid after a round trip");
        }
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto doc = fp::parse_json(text, fp::tuning::max_json_depth);
    if (!doc) return 0;
    const fp::json* schema_doc = &*doc;
    std::vector<const fp::json*> records;
    if (doc->is_array() && !doc->empty()) {
        schema_doc = &(*doc)[0];
        for (std::size_t i = 1; i < doc->size(); ++i) records.push_back(&(*doc)[i]);
    } else {
        records.push_back(&*doc);
    }
    auto parsed = fp::schema::from_json(*schema_doc);
    if (parsed) {
        check_records(*parsed, records);
        // A schema that loads must load again from its own text.
        auto again = fp::parse_json(schema_doc->dump(), fp::tuning::max_json_depth + 2);
        if (!again || !fp::schema::from_json(*again)) fail("a schema that loaded does not load after a round trip");
    } else {
        (void)parsed.err().message.size();
    }
    check_records(fp::schema::default_schema(), records);
    return 0;
}
