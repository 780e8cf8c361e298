// libFuzzer target: protocol::decide and merge3 with base, head and incoming records built
// from the input, checked against the merge rule (design.md, ARCHITECTURE.md "The merge rule").
//
// Input: either JSON text [base, head, incoming, {"op", "base_version", "head_version",
// "policy", "head_deleted", "base_deleted", "incoming_wins"}] (the seeds, taken from the
// merge tests), or any bytes, from which a FuzzedDataProvider builds a base and two edits of
// it over a small alphabet of keys and values, so that both sides often touch the same field.
#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/protocol/merge.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace fp = fieldsync::protocol;
using fp::json;

namespace {

[[noreturn]] void fail(const char* what, const json& base, const json& head, const json& incoming) {
    std::fprintf(stderr, "fuzz_merge: %s\nbase=%s\nhead=%s\nincoming=%s\n", what, base.dump().c_str(),
                 head.dump().c_str(), incoming.dump().c_str());
    std::abort();
}

const char* const k_keys[] = {"a", "b", "c", "name", "~/x", "0", ""};

json random_value(FuzzedDataProvider& in, int depth);

json random_object(FuzzedDataProvider& in, int depth) {
    json o = json::object();
    const int n = in.ConsumeIntegralInRange(0, 4);
    for (int k = 0; k < n; ++k) o[k_keys[in.ConsumeIntegralInRange<std::size_t>(0, std::size(k_keys) - 1)]] =
        random_value(in, depth + 1);
    return o;
}

json random_value(FuzzedDataProvider& in, int depth) {
    switch (in.ConsumeIntegralInRange(0, depth < 3 ? 6 : 4)) {
        case 0: return nullptr;
        case 1: return in.ConsumeBool();
        case 2: return in.ConsumeIntegralInRange(-2, 2);
        case 3: return std::string(1, static_cast<char>('x' + in.ConsumeIntegralInRange(0, 2)));
        case 4: return 0.5;
        case 5: return json::array({random_value(in, depth + 1)});
        default: return random_object(in, depth);
    }
}

// An edit of `o`: set, remove or descend into a few fields.
json mutate(FuzzedDataProvider& in, json o, int depth) {
    const int n = in.ConsumeIntegralInRange(0, 3);
    for (int k = 0; k < n; ++k) {
        const std::string key = k_keys[in.ConsumeIntegralInRange<std::size_t>(0, std::size(k_keys) - 1)];
        switch (in.ConsumeIntegralInRange(0, 2)) {
            case 0: o[key] = random_value(in, depth + 1); break;
            case 1: o.erase(key); break;
            default:
                if (o.contains(key) && o[key].is_object() && depth < 3) o[key] = mutate(in, o[key], depth + 1);
                else o[key] = random_object(in, depth + 1);
        }
    }
    return o;
}

struct scenario {
    json base, head, incoming;
    fp::op_kind op = fp::op_kind::put;
    std::int64_t base_version = 1;
    std::int64_t head_version = 2;
    fp::merge_policy policy = fp::merge_policy::review;
    bool head_deleted = false;
    bool base_deleted = false;
    bool incoming_wins = false;
    bool have_head = true;
    bool have_base = true;
};

bool from_json_text(const std::uint8_t* data, std::size_t size, scenario& s) {
    if (size == 0 || data[0] != '[') return false;
    auto doc = fp::parse_json({reinterpret_cast<const char*>(data), size}, 32);
    if (!doc || !doc->is_array() || doc->size() < 3) return false;
    for (int k = 0; k < 3; ++k)
        if (!(*doc)[k].is_object()) return false;
    s.base = (*doc)[0];
    s.head = (*doc)[1];
    s.incoming = (*doc)[2];
    if (doc->size() > 3 && (*doc)[3].is_object()) {
        const json& f = (*doc)[3];
        // The flags are the harness's own; a wrong type means the default.
        auto text = [&](const char* k, const char* d) {
            const auto it = f.find(k);
            return it != f.end() && it->is_string() ? it->get<std::string>() : std::string(d);
        };
        auto number = [&](const char* k, std::int64_t d) {
            const auto it = f.find(k);
            return it != f.end() && it->is_number_integer() ? std::clamp<std::int64_t>(it->get<std::int64_t>(), 0, 5) : d;
        };
        auto flag = [&](const char* k) {
            const auto it = f.find(k);
            return it != f.end() && it->is_boolean() && it->get<bool>();
        };
        const std::string op = text("op", "put");
        s.op = op == "patch" ? fp::op_kind::patch : op == "delete" ? fp::op_kind::del : fp::op_kind::put;
        s.base_version = number("base_version", 1);
        s.head_version = number("head_version", 2);
        s.policy = text("policy", "review") == "lww" ? fp::merge_policy::lww : fp::merge_policy::review;
        s.head_deleted = flag("head_deleted");
        s.base_deleted = flag("base_deleted");
        s.incoming_wins = flag("incoming_wins");
    }
    s.have_head = s.head_version > 0;
    return true;
}

void from_bytes(const std::uint8_t* data, std::size_t size, scenario& s) {
    FuzzedDataProvider in(data, size);
    s.op = static_cast<fp::op_kind>(in.ConsumeIntegralInRange(0, 2));
    s.head_version = in.ConsumeIntegralInRange(0, 3);
    s.have_head = s.head_version > 0;  // a stored head has version 1 or more
    s.base_version = in.ConsumeIntegralInRange<std::int64_t>(0, 4);
    s.policy = in.ConsumeBool() ? fp::merge_policy::lww : fp::merge_policy::review;
    s.head_deleted = in.ConsumeProbability<float>() < 0.15f;
    s.base_deleted = in.ConsumeProbability<float>() < 0.1f;
    s.incoming_wins = in.ConsumeBool();
    s.have_base = in.ConsumeProbability<float>() < 0.95f;
    s.base = random_object(in, 0);
    s.head = mutate(in, s.base, 0);
    s.incoming = mutate(in, s.base, 0);
}

// Top-level field k of an object, nullptr when absent.
const json* field(const json& o, const std::string& k) {
    const auto it = o.find(k);
    return it == o.end() ? nullptr : &*it;
}
bool same(const json* x, const json* y) { return (!x && !y) || (x && y && *x == *y); }

void check_merge3(const json& b, const json& h, const json& i) {
    std::vector<std::string> c1, c2, c3;
    const json m1 = fp::merge3(b, h, i, fp::prefer::head, c1);
    const json m2 = fp::merge3(b, i, h, fp::prefer::incoming, c2);
    std::sort(c1.begin(), c1.end());
    std::sort(c2.begin(), c2.end());
    if (c1 != c2) fail("merge3 collisions depend on which side is head", b, h, i);
    if (m1 != m2) fail("merge3 is not symmetric", b, h, i);
    if (fp::merge3(b, h, b, fp::prefer::head, c3) != h || !c3.empty()) fail("merge3(b, h, b) != h", b, h, i);
    if (fp::merge3(b, b, i, fp::prefer::head, c3) != i || !c3.empty()) fail("merge3(b, b, i) != i", b, h, i);
    // Fields only one side changed come from that side; equal changes are no collision.
    for (const auto* side : {&h, &i})
        for (const auto& [k, _] : side->items()) {
            const json* fb = field(b, k);
            const json* fh = field(h, k);
            const json* fi = field(i, k);
            const json* fm = field(m1, k);
            if (same(fh, fb) && !same(fm, fi)) fail("a field only incoming changed is not incoming's", b, h, i);
            if (same(fi, fb) && !same(fm, fh)) fail("a field only head changed is not head's", b, h, i);
            if (same(fh, fi) && !same(fm, fh)) fail("a field both set alike changed", b, h, i);
        }
    for (const auto& p : c1) {
        if (p.empty() || p[0] != '/') fail("a collision pointer that is not a field", b, h, i);
        (void)json::json_pointer(p);  // must be a valid pointer
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    scenario s;
    if (!from_json_text(data, size, s)) from_bytes(data, size, s);

    check_merge3(s.base, s.head, s.incoming);

    std::optional<fp::head_state> head;
    if (s.have_head) {
        fp::head_state h;
        h.version = s.head_version;
        h.state = s.head_deleted ? fp::version_state{true, nullptr} : fp::version_state{false, s.head};
        h.stamp = {1'700'000'000'000, 0};
        h.writer = "dev-head";
        head = h;
    }
    std::optional<fp::version_state> base;
    if (s.have_base)
        base = s.base_deleted ? fp::version_state{true, nullptr} : fp::version_state{false, s.base};
    fp::incoming_change in;
    in.op = s.op;
    in.base_version = s.base_version;
    in.data = s.op == fp::op_kind::del ? nullptr : &s.incoming;
    in.stamp = {1'700'000'000'000 + (s.incoming_wins ? 1 : -1), 0};
    in.writer = "dev-incoming";

    const auto o = fp::decide(head, base, in, s.policy);
    const std::int64_t hv = head ? head->version : 0;
    switch (o.kind) {
        case fp::merge_kind::rejected:
            if (!o.err) fail("rejected without an error", s.base, s.head, s.incoming);
            if (s.base_version <= hv && !(s.base_version > 0 && s.base_version < hv && !base) &&
                !(s.op == fp::op_kind::patch))
                fail("rejected a change with a known base", s.base, s.head, s.incoming);
            break;
        case fp::merge_kind::fast_forward:
            if (s.base_version != hv) fail("fast_forward from a base that is not the head", s.base, s.head, s.incoming);
            if (o.result.deleted != o.incoming.deleted || o.result.data != o.incoming.data)
                fail("fast_forward result is not the incoming record", s.base, s.head, s.incoming);
            break;
        case fp::merge_kind::unchanged:
            if (!head || o.result.deleted != head->state.deleted || o.result.data != head->state.data)
                fail("unchanged, but the result is not the head", s.base, s.head, s.incoming);
            break;
        case fp::merge_kind::conflict:
            if (s.policy != fp::merge_policy::review) fail("conflict under lww", s.base, s.head, s.incoming);
            if (o.collisions.empty()) fail("conflict without collisions", s.base, s.head, s.incoming);
            if (!head || o.result.data != head->state.data) fail("conflict moved the head", s.base, s.head, s.incoming);
            break;
        case fp::merge_kind::merged:
            if (s.policy == fp::merge_policy::review && !o.collisions.empty())
                fail("merged with collisions under review", s.base, s.head, s.incoming);
            if (!o.result.deleted && !o.result.data.is_object())
                fail("a merged record that is not an object", s.base, s.head, s.incoming);
            break;
    }
    if (o.kind != fp::merge_kind::rejected) (void)o.lost.dump();
    return 0;
}
