// libFuzzer target: the bytes of a POST /v1/sync body through parse_json and
// decode_change_set, as the server reads them. Whatever decodes must encode again (the client
// library sends what encode() makes), the encoding must be valid JSON text, and decoding that
// text must give the same change-set: same ids, same verdicts.
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/messages.hpp>
#include <fieldsync/protocol/tuning.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string_view>

namespace fp = fieldsync::protocol;

namespace {
[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_change_set: %s\n", what);
    std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    auto doc = fp::parse_json(body, fp::tuning::max_json_depth);
    if (!doc) return 0;
    auto cs = fp::decode_change_set(*doc);
    if (!cs) {
        (void)fp::encode(cs.err()).dump();  // the 400 answer must be writable
        return 0;
    }
    // Only changes the decoder accepted round-trip: a rejected entry is re-encoded from
    // whatever fields it had, which need not decode the same way.
    for (const auto& e : cs->changes) {
        if (e.rejected) {
            (void)fp::encode(*e.rejected).dump();
            continue;
        }
        const std::string text = fp::encode(e.c).dump();
        auto again = fp::parse_json(text, fp::tuning::max_json_depth + 2);
        if (!again) fail("an accepted change encodes to text that parse_json refuses");
        const auto back = fp::decode_change(*again);
        if (back.rejected) fail("an accepted change is rejected after a round trip");
        if (back.c.change_id != e.c.change_id || back.c.collection != e.c.collection || back.c.id != e.c.id ||
            back.c.unit_id != e.c.unit_id || back.c.op != e.c.op || back.c.base_version != e.c.base_version ||
            back.c.data != e.c.data || back.c.stamp != e.c.stamp)
            fail("a change differs after a round trip");
    }
    return 0;
}
