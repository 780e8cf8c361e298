// Devices and their tokens; the organisation tree (units) and moves within it.

#include "store/sql_store.hpp"

#include <fieldsync/server/tuning.hpp>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;

namespace {

// The token names no device; only its SHA-256 is stored, so a copy of the store does not let
// anyone sign in.
std::string new_token() { return "fs1_" + random_hex(32); }

constexpr std::array k_unit_kinds{"district", "commune", "cell", "office"};

// Enrolment codes: 80 random bits as 16 characters of Crockford's base32, which has no I, L, O
// or U, so a code read aloud or copied from paper survives (SPEC.md, "Enrolment").
constexpr std::string_view k_code_alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::size_t k_code_length = 16;

std::string new_enrolment_code() {
    std::array<unsigned char, 10> bits{};
    if (RAND_bytes(bits.data(), static_cast<int>(bits.size())) != 1)
        throw std::runtime_error("no randomness from the system");
    std::string code;
    unsigned buffer = 0;
    int held = 0;
    for (const unsigned char b : bits) {
        buffer = (buffer << 8) | b;
        held += 8;
        while (held >= 5) {
            held -= 5;
            code.push_back(k_code_alphabet[(buffer >> held) & 31]);
        }
    }
    for (std::size_t at = 12; at > 0; at -= 4) code.insert(at, "-");
    return code;
}

// A code as typed: case, dashes and spaces ignored, O read as 0, I and L as 1. nullopt when
// what is left is not 16 characters of the alphabet.
std::optional<std::string> plain_code(std::string_view typed) {
    std::string out;
    for (char c : typed) {
        if (c == '-' || c == ' ') continue;
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (c == 'O') c = '0';
        if (c == 'I' || c == 'L') c = '1';
        if (k_code_alphabet.find(c) == std::string_view::npos || out.size() == k_code_length) return std::nullopt;
        out.push_back(c);
    }
    if (out.size() != k_code_length) return std::nullopt;
    return out;
}

// The form of every token: new_token()'s, and what an enrolling client must make.
bool token_form(std::string_view t) {
    if (t.size() != 68 || !t.starts_with("fs1_")) return false;
    return std::all_of(t.begin() + 4, t.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool same_hash(const std::string& a, const std::string& b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string sql_store::path_of(sql::db& db, const std::string& unit_id) {
    auto s = db.cached("SELECT path FROM units WHERE id = ?");
    s.bind(1, unit_id);
    std::string path = s.step() ? s.text(0) : "/" + unit_id + "/";
    return path;
}

std::int64_t sql_store::load_seq(sql::db& db) {
    const std::string line = db.timeline();
    if (line.empty()) {
        auto s = db.cached("SELECT value FROM meta WHERE key = 'seq'");
        const std::int64_t seq = s.step() ? s.int64(0) : 0;
        return seq;
    }
    // PostgreSQL: the seq and the timeline the last write saw, in one round trip.
    std::int64_t seq = 0;
    std::string known;
    std::string lost;
    {
        auto s = db.cached("SELECT key, value FROM meta WHERE key IN ('seq', 'timeline', 'lost_seqs')");
        while (s.step()) {
            const auto key = s.text(0);
            if (key == "seq")
                seq = s.int64(1);
            else if (key == "timeline")
                known = s.text(1);
            else
                lost = s.text(1);
        }
    }
    if (known == line) return seq;
    // ARCHITECTURE.md, "Failover": the first write after a promotion. This node's feed ends at
    // `seq`; the old primary may have shown seqs past it that never reached this node, and
    // cursors holding them must not name positions of this line. Those seqs are written off
    // (cursors in them start over, as after a restore) and this line goes on past them.
    if (!known.empty()) {
        if (!lost.empty()) lost += ',';
        lost += std::to_string(seq) + "-" + std::to_string(seq + k_lost_seqs);
        seq += k_lost_seqs;
        db.cached("INSERT INTO meta(key, value) VALUES ('lost_seqs', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(1, lost)
            .run();
        store_seq(db, seq);
    }
    db.cached("INSERT INTO meta(key, value) VALUES ('timeline', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .bind(1, line)
        .run();
    return seq;
}

bool sql_store::in_lost_seqs(std::string_view lost, std::int64_t seq) {
    // "after-upto,after-upto": seqs after..upto, the first exclusive, the second inclusive.
    while (!lost.empty()) {
        const auto comma = lost.find(',');
        const auto range = lost.substr(0, comma);
        lost = comma == std::string_view::npos ? std::string_view() : lost.substr(comma + 1);
        const auto dash = range.find('-');
        if (dash == std::string_view::npos) continue;
        std::int64_t after = 0, upto = 0;
        std::from_chars(range.data(), range.data() + dash, after);
        std::from_chars(range.data() + dash + 1, range.data() + range.size(), upto);
        if (seq > after && seq <= upto) return true;
    }
    return false;
}

void sql_store::store_seq(sql::db& db, std::int64_t seq) {
    db.cached("INSERT INTO meta(key, value) VALUES ('seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").bind(1, seq).run();
}

proto::expected<std::pair<device, std::string>> sql_store::add_device(const std::string& name,
                                                                         const std::string& unit_id,
                                                                         device_role role) {
    if (!proto::valid_id(unit_id)) return error{errc::bad_request, "'" + unit_id + "' is not a valid unit id"};
    return admin_write([&](sql::db& db) {
        device d;
        d.id = random_uuid();
        d.name = name;
        d.unit_id = unit_id;
        d.role = role;
        d.created_ms = wall_();
        d.unit_path = path_of(db, unit_id);
        std::string token = new_token();
        const std::string hash = sha256(token);
        auto s = db.cached(
            "INSERT INTO devices(id, name, unit_id, role, token_hash, created_ms) VALUES (?, ?, ?, ?, ?, ?)");
        s.bind(1, d.id).bind(2, d.name).bind(3, d.unit_id).bind(4, role_name(role));
        s.bind_blob(5, hash.data(), hash.size()).bind(6, d.created_ms);
        s.run();
        return std::pair{std::move(d), std::move(token)};
    });
}

proto::expected<std::optional<device>> sql_store::authenticate(const std::string& token) {
    const std::string hash = sha256(token);
    return read([&](sql::db& db) -> std::optional<device> {
        static const std::string sql = std::string("SELECT ") + k_device_columns +
                                       ", d.token_hash FROM devices d LEFT JOIN units u ON u.id = d.unit_id "
                                       "WHERE d.token_hash = ? AND d.revoked_ms IS NULL";
        auto s = db.cached(sql.c_str());
        s.bind_blob(1, hash.data(), hash.size());
        if (!s.step()) return std::nullopt;
        // The index found the row by hash; compare the whole hash again in constant time so
        // no comparison in this process depends on how much of a guessed token is right.
        const std::string stored = s.text(k_device_column_count);
        const bool same = stored.size() == hash.size() && CRYPTO_memcmp(stored.data(), hash.data(), hash.size()) == 0;
        auto d = read_device(s);
        s.reset();
        if (!same) return std::nullopt;
        return d;
    });
}

proto::expected<std::vector<device>> sql_store::devices() {
    return read([&](sql::db& db) {
        std::vector<device> out;
        static const std::string sql = std::string("SELECT ") + k_device_columns +
                                       " FROM devices d LEFT JOIN units u ON u.id = d.unit_id ORDER BY d.created_ms";
        auto s = db.cached(sql.c_str());
        while (s.step()) out.push_back(read_device(s));
        return out;
    });
}

proto::expected<void> sql_store::revoke_device(const std::string& device_id) {
    auto r = admin_write([&](sql::db& db) {
        db.cached("UPDATE devices SET revoked_ms = coalesce(revoked_ms, ?) WHERE id = ?")
            .bind(1, wall_())
            .bind(2, device_id)
            .run();
        if (db.changes() == 0) throw admin_refusal{{errc::not_found, "no device '" + device_id + "'"}};
        return true;
    });
    if (!r) return std::move(r).err();
    return {};
}

proto::expected<std::string> sql_store::rotate_device(const std::string& device_id) {
    return admin_write([&](sql::db& db) {
        std::string token = new_token();
        const std::string hash = sha256(token);
        db.cached("UPDATE devices SET token_hash = ? WHERE id = ? AND revoked_ms IS NULL")
            .bind_blob(1, hash.data(), hash.size())
            .bind(2, device_id)
            .run();
        if (db.changes() == 0)
            throw admin_refusal{{errc::not_found, "no active device '" + device_id + "'"}};
        return token;
    });
}

proto::expected<void> sql_store::move_device(const std::string& device_id, const std::string& unit_id) {
    if (!proto::valid_id(unit_id)) return error{errc::bad_request, "'" + unit_id + "' is not a valid unit id"};
    auto r = admin_write([&](sql::db& db) {
        // A new epoch makes the device's next pull start over in its new scope.
        db.cached("UPDATE devices SET unit_id = ?, scope_epoch = scope_epoch + 1 WHERE id = ?")
            .bind(1, unit_id)
            .bind(2, device_id)
            .run();
        if (db.changes() == 0) throw admin_refusal{{errc::not_found, "no device '" + device_id + "'"}};
        return true;
    });
    if (!r) return std::move(r).err();
    return {};
}

proto::expected<enrolment> sql_store::enrol_device(const std::string& device_id,
                                                      std::chrono::milliseconds valid_for) {
    using namespace std::chrono_literals;
    if (valid_for < 1min || valid_for > 24h * 30)
        return error{errc::bad_request, "an enrolment code is valid for 1 minute to 30 days"};
    return admin_write([&](sql::db& db) {
        {
            auto d = db.cached("SELECT 1 FROM devices WHERE id = ? AND revoked_ms IS NULL");
            d.bind(1, device_id);
            if (!d.step()) throw admin_refusal{{errc::not_found, "no active device '" + device_id + "'"}};
        }
        db.cached("DELETE FROM enrolments WHERE device_id = ? AND used_ms IS NULL").bind(1, device_id).run();
        enrolment out{new_enrolment_code(), device_id, wall_() + valid_for.count()};
        const std::string hash = sha256(*plain_code(out.code));
        db.cached("INSERT INTO enrolments(code_hash, device_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)")
            .bind_blob(1, hash.data(), hash.size())
            .bind(2, device_id)
            .bind(3, wall_())
            .bind(4, out.expires_ms)
            .run();
        return out;
    });
}

proto::expected<device> sql_store::redeem_enrolment(const std::string& code, const std::string& token) {
    const auto plain = plain_code(code);
    if (!plain)
        return error{errc::bad_request, "an enrolment code is 16 letters and digits (dashes and spaces aside)"};
    if (!token_form(token)) return error{errc::bad_request, "token must be 'fs1_' and 64 lowercase hex digits"};
    const std::string code_hash = sha256(*plain);
    const std::string token_hash = sha256(token);
    return admin_write([&](sql::db& db) {
        std::string device_id, used_hash;
        std::int64_t expires_ms = 0;
        bool used = false;
        {
            auto e = db.cached(
                "SELECT device_id, expires_ms, used_ms IS NOT NULL, used_token_hash "
                "FROM enrolments WHERE code_hash = ?");
            e.bind_blob(1, code_hash.data(), code_hash.size());
            if (!e.step()) throw admin_refusal{{errc::not_found, "no such enrolment code"}};
            device_id = e.text(0);
            expires_ms = e.int64(1);
            used = e.int64(2) != 0;
            used_hash = e.is_null(3) ? std::string() : e.text(3);
        }
        device dev;
        std::string current_hash;
        {
            static const std::string sql = std::string("SELECT ") + k_device_columns +
                                           ", d.token_hash FROM devices d LEFT JOIN units u ON u.id = d.unit_id "
                                           "WHERE d.id = ?";
            auto d = db.cached(sql.c_str());
            d.bind(1, device_id);
            if (!d.step()) throw admin_refusal{{errc::enrolment_expired, "the device of this code no longer exists"}};
            dev = read_device(d);
            current_hash = d.text(k_device_column_count);
        }
        if (dev.revoked_ms) throw admin_refusal{{errc::enrolment_expired, "the device of this code has been revoked"}};
        if (used) {
            // The same exchange again (its answer was lost): answered as the first was.
            if (same_hash(used_hash, token_hash) && same_hash(current_hash, token_hash)) return dev;
            throw admin_refusal{{errc::enrolment_used, "this enrolment code has been used already"}};
        }
        if (wall_() >= expires_ms) throw admin_refusal{{errc::enrolment_expired, "this enrolment code has expired"}};
        {
            auto taken = db.cached("SELECT 1 FROM devices WHERE token_hash = ?");
            taken.bind_blob(1, token_hash.data(), token_hash.size());
            if (taken.step()) throw admin_refusal{{errc::bad_request, "that token is taken: make another"}};
        }
        db.cached("UPDATE devices SET token_hash = ? WHERE id = ?")
            .bind_blob(1, token_hash.data(), token_hash.size())
            .bind(2, device_id)
            .run();
        db.cached("UPDATE enrolments SET used_ms = ?, used_token_hash = ? WHERE code_hash = ?")
            .bind(1, wall_())
            .bind_blob(2, token_hash.data(), token_hash.size())
            .bind_blob(3, code_hash.data(), code_hash.size())
            .run();
        return dev;
    });
}

proto::expected<std::vector<unit>> sql_store::units() {
    return read([&](sql::db& db) {
        std::vector<unit> out;
        auto s = db.cached("SELECT id, parent, name, kind, path FROM units ORDER BY path");
        while (s.step()) out.push_back(unit{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4)});
        return out;
    });
}

proto::expected<unit> sql_store::put_unit(const unit& in) {
    if (!proto::valid_id(in.id)) return error{errc::bad_request, "unit id '" + in.id + "' is not a valid id"};
    if (!in.parent.empty() && !proto::valid_id(in.parent))
        return error{errc::bad_request, "parent '" + in.parent + "' is not a valid id"};
    if (in.name.empty() || !proto::is_valid_utf8(in.name))
        return error{errc::bad_request, "unit '" + in.id + "' needs a name in UTF-8"};
    if (std::find(k_unit_kinds.begin(), k_unit_kinds.end(), in.kind) == k_unit_kinds.end())
        return error{errc::bad_request, "unit kind must be district, commune, cell or office, not '" + in.kind + "'"};

    return admin_write([&](sql::db& db) {
        const std::string old_path = path_of(db, in.id);
        std::string parent_path = "/";
        if (!in.parent.empty()) {
            auto p = db.cached("SELECT path FROM units WHERE id = ?");
            p.bind(1, in.parent);
            if (!p.step()) throw admin_refusal{{errc::bad_request, "unknown parent unit '" + in.parent + "'"}};
            parent_path = p.text(0);
            p.reset();
            if (parent_path.starts_with(old_path))
                throw admin_refusal{{errc::bad_request, "unit '" + in.parent + "' lies inside '" + in.id +
                                                            "': a unit cannot move under itself"}};
        }
        unit out = in;
        out.path = parent_path + in.id + "/";
        const auto now = wall_();
        db.cached(
              "INSERT INTO units(id, parent, name, kind, path, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
              "ON CONFLICT(id) DO UPDATE SET parent = ?2, name = ?3, kind = ?4, path = ?5, updated_ms = ?6")
            .bind(1, out.id)
            .bind(2, out.parent)
            .bind(3, out.name)
            .bind(4, out.kind)
            .bind(5, out.path)
            .bind(6, now)
            .run();
        if (out.path == old_path) return out;

        // The subtree moves: units below, conflicts, and every record, each record with a new
        // seq (so devices that now see it receive it) and a drop notice at its old path (so
        // devices that no longer see it let it go).
        const std::string end = subtree_end(old_path);
        const auto old_len = static_cast<std::int64_t>(old_path.size());
        db.cached("UPDATE units SET path = ?1 || substr(path, ?2 + 1) WHERE path >= ?3 AND path < ?4 AND id != ?5")
            .bind(1, out.path)
            .bind(2, old_len)
            .bind(3, old_path)
            .bind(4, end)
            .bind(5, out.id)
            .run();
        db.cached("UPDATE conflicts SET path = ?1 || substr(path, ?2 + 1) WHERE path >= ?3 AND path < ?4")
            .bind(1, out.path)
            .bind(2, old_len)
            .bind(3, old_path)
            .bind(4, end)
            .run();
        std::int64_t seq = load_seq(db);
        std::vector<std::tuple<std::string, std::string, std::string>> moved;
        {
            auto s = db.cached("SELECT collection, id, path FROM heads WHERE path >= ? AND path < ?");
            s.bind(1, old_path).bind(2, end);
            while (s.step()) moved.emplace_back(s.text(0), s.text(1), s.text(2));
        }
        for (const auto& [collection, id, path] : moved) {
            ++seq;
            db.cached("INSERT INTO drops(seq, collection, id, path) VALUES (?, ?, ?, ?)")
                .bind(1, seq)
                .bind(2, collection)
                .bind(3, id)
                .bind(4, path)
                .run();
            db.cached("UPDATE heads SET path = ?, seq = ? WHERE collection = ? AND id = ?")
                .bind(1, out.path + path.substr(old_path.size()))
                .bind(2, seq)
                .bind(3, collection)
                .bind(4, id)
                .run();
        }
        store_seq(db, seq);
        return out;
    });
}

}  // namespace fieldsync::server
