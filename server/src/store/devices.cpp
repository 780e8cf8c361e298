// Devices and their tokens.

#include "store/sqlite_store.hpp"

#include <fieldsync/server/tuning.hpp>

namespace fieldsync::server {

using proto::errc;
using proto::error;
using namespace store_util;

proto::expected<std::pair<device, std::string>> sqlite_store::add_device(const std::string& name, const std::string& unit_id,
                                                           device_role role) {
    // Devices are added from the admin tool while the server runs: a short transaction of
    // its own on a fresh connection, not through the writer queue of this process.
    try {
        device d;
        d.id = random_uuid();
        d.name = name;
        d.unit_id = unit_id;
        d.role = role;
        d.created_ms = wall_();
        // The token names no device; only its SHA-256 is stored, so a copy of the store
        // does not let anyone sign in.
        std::string token = "fs1_" + random_hex(32);
        const std::string hash = sha256(token);
        sqlite::db db(path_, sqlite::db::mode::read_write_create);
        configure(db);
        auto& s = db.cached(
            "INSERT INTO devices(id, name, unit_id, role, token_hash, created_ms) VALUES (?, ?, ?, ?, ?, ?)");
        s.bind(1, d.id).bind(2, d.name).bind(3, d.unit_id).bind(4, role_name(role));
        s.bind_blob(5, hash.data(), hash.size()).bind(6, d.created_ms);
        s.run();
        return std::pair{std::move(d), std::move(token)};
    } catch (const std::exception& e) {
        return storage_failure(e);
    }
}

proto::expected<std::optional<device>> sqlite_store::authenticate(const std::string& token) {
    const std::string hash = sha256(token);
    return read([&](sqlite::db& db) -> std::optional<device> {
        auto& s = db.cached(
            "SELECT id, name, unit_id, role, created_ms, revoked_ms FROM devices "
            "WHERE token_hash = ? AND revoked_ms IS NULL");
        s.bind_blob(1, hash.data(), hash.size());
        if (!s.step()) return std::nullopt;
        auto d = read_device(s);
        s.reset();
        return d;
    });
}

proto::expected<std::vector<device>> sqlite_store::devices() {
    return read([&](sqlite::db& db) {
        std::vector<device> out;
        auto& s = db.cached("SELECT id, name, unit_id, role, created_ms, revoked_ms FROM devices ORDER BY created_ms");
        while (s.step()) out.push_back(read_device(s));
        return out;
    });
}

}  // namespace fieldsync::server
