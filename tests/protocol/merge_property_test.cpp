// Properties of the three-way merge over many generated records: symmetry between the sides,
// identities, and that no side's change is dropped without a collision. The generator is
// seeded, so a failure names the case that replays it.
#include <fieldsync/protocol/merge.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace fp = fieldsync::protocol;
using fp::json;

namespace {

// Small alphabets so that generated sides often agree, differ, add and remove the same keys.
const char* const k_keys[] = {"notes", "status", "a/b", "m~n", "ấp"};
const json k_values[] = {json(1), json(2), json("Giồng Trôm"), json("Gio\xCC\x82\xCC\x80ng Tro\xCC\x82m"),
                         json(nullptr), json::array({1, 2}), json::array({2, 1}), json(true)};

json random_object(std::mt19937& rng, int depth) {
    json o = json::object();
    std::uniform_int_distribution<int> pick(0, 9);
    for (const char* k : k_keys) {
        const int p = pick(rng);
        if (p < 3) continue;  // absent
        if (p < 5 && depth > 0)
            o[k] = random_object(rng, depth - 1);
        else
            o[k] = k_values[std::uniform_int_distribution<std::size_t>(0, std::size(k_values) - 1)(rng)];
    }
    return o;
}

// Mutates some fields of `base`: change, remove, add, recurse.
json edit(std::mt19937& rng, const json& base, int depth) {
    json out = base;
    std::uniform_int_distribution<int> pick(0, 9);
    for (const char* k : k_keys) {
        const int p = pick(rng);
        if (p < 5) continue;  // untouched
        if (p == 5) {
            out.erase(k);
        } else if (p == 6 && depth > 0 && out.contains(k) && out[k].is_object()) {
            out[k] = edit(rng, out[k], depth - 1);
        } else if (p == 7 && depth > 0) {
            out[k] = random_object(rng, depth - 1);
        } else {
            out[k] = k_values[std::uniform_int_distribution<std::size_t>(0, std::size(k_values) - 1)(rng)];
        }
    }
    return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

}  // namespace

TEST_CASE("merge3 properties over generated records", "[protocol][merge][property]") {
    constexpr int k_cases = 3000;
    int with_collisions = 0;
    for (int seed = 1; seed <= k_cases; ++seed) {
        std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));
        const json base = random_object(rng, 2);
        const json head = edit(rng, base, 2);
        const json incoming = edit(rng, base, 2);
        INFO("seed " << seed << "\nbase " << base.dump() << "\nhead " << head.dump() << "\nincoming "
                     << incoming.dump());

        std::vector<std::string> c1, c2;
        const json m1 = fp::merge3(base, head, incoming, fp::prefer::head, c1);
        const json m2 = fp::merge3(base, incoming, head, fp::prefer::incoming, c2);
        // Symmetry: swapping the sides and the preference gives the same record and collisions.
        REQUIRE(m1 == m2);
        REQUIRE(sorted(c1) == sorted(c2));
        if (!c1.empty()) ++with_collisions;

        // Every collision names a field that at least one side holds and the sides disagree on.
        for (const auto& p : c1) {
            const json::json_pointer ptr(p);
            const bool in_h = head.contains(ptr);
            const bool in_i = incoming.contains(ptr);
            REQUIRE((in_h || in_i));
            if (in_h && in_i) REQUIRE(head.at(ptr) != incoming.at(ptr));
        }

        // Preferring the other side changes only the colliding fields.
        std::vector<std::string> c3;
        json m3 = fp::merge3(base, head, incoming, fp::prefer::incoming, c3);
        REQUIRE(sorted(c3) == sorted(c1));
        json m1_patched = m1;
        for (const auto& p : c1) {
            const json::json_pointer ptr(p);
            if (incoming.contains(ptr))
                m1_patched[ptr] = incoming.at(ptr);
            else
                m1_patched.at(ptr.parent_pointer()).erase(ptr.back());
        }
        REQUIRE(m1_patched == m3);

        // Without collisions, each side's top-level change survives.
        if (c1.empty()) {
            for (const char* k : k_keys) {
                const bool b = base.contains(k), h = head.contains(k), i = incoming.contains(k);
                const bool head_changed = h != b || (h && head[k] != base[k]);
                const bool incoming_changed = i != b || (i && incoming[k] != base[k]);
                if (head_changed && !incoming_changed) {
                    REQUIRE(m1.contains(k) == h);
                    if (h) REQUIRE(m1[k] == head[k]);
                }
                if (incoming_changed && !head_changed) {
                    REQUIRE(m1.contains(k) == i);
                    if (i) REQUIRE(m1[k] == incoming[k]);
                }
            }
        }

        // Identities.
        std::vector<std::string> none;
        REQUIRE(fp::merge3(base, base, incoming, fp::prefer::head, none) == incoming);
        REQUIRE(fp::merge3(base, head, base, fp::prefer::head, none) == head);
        REQUIRE(fp::merge3(base, head, head, fp::prefer::incoming, none) == head);
        REQUIRE(none.empty());
    }
    // The generator must exercise both outcomes, or the properties above prove little.
    CHECK(with_collisions > k_cases / 10);
    CHECK(with_collisions < k_cases * 9 / 10);
}

TEST_CASE("decide under review never writes when fields collide, and lww always does", "[protocol][merge][property]") {
    for (int seed = 1; seed <= 1000; ++seed) {
        std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));
        const json base = random_object(rng, 1);
        const json head_data = edit(rng, base, 1);
        const json incoming = edit(rng, base, 1);
        INFO("seed " << seed);
        fp::head_state head;
        head.version = 5;
        head.state = {false, head_data};
        head.stamp = {100, static_cast<std::uint32_t>(seed % 3)};
        head.writer = "dev-a";
        fp::incoming_change in;
        in.op = fp::op_kind::put;
        in.base_version = 3;
        in.data = &incoming;
        in.stamp = {100, 1};
        in.writer = "dev-b";

        const auto review = fp::decide(head, fp::version_state{false, base}, in, fp::merge_policy::review);
        const auto lww = fp::decide(head, fp::version_state{false, base}, in, fp::merge_policy::lww);
        REQUIRE(review.collisions == lww.collisions);
        if (review.collisions.empty()) {
            REQUIRE(review.kind != fp::merge_kind::conflict);
            REQUIRE(review.result.data == lww.result.data);
            REQUIRE(review.kind == lww.kind);
            REQUIRE((review.kind == fp::merge_kind::unchanged) == (review.result.data == head_data));
        } else {
            REQUIRE(review.kind == fp::merge_kind::conflict);
            REQUIRE(review.result.data == head_data);
            REQUIRE(lww.kind == fp::merge_kind::merged);
            REQUIRE(lww.lost.size() == lww.collisions.size());
        }
    }
}
