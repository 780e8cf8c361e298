#include "store/store_util.hpp"

#include <fieldsync/protocol/attachment.hpp>
#include <fieldsync/protocol/ids.hpp>
#include <fieldsync/sqlite/sqlite.hpp>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace fieldsync::server::store_util {

using protocol::errc;
using protocol::error;

std::string hex(const unsigned char* p, std::size_t n) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out += k_digits[p[i] >> 4];
        out += k_digits[p[i] & 0xF];
    }
    return out;
}

std::string random_hex(std::size_t bytes) {
    unsigned char buf[64];
    if (bytes > sizeof buf || RAND_bytes(buf, static_cast<int>(bytes)) != 1)
        throw std::runtime_error("no randomness from the system");
    return hex(buf, bytes);
}

std::string random_uuid() {
    protocol::uuid_bytes b;
    if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) throw std::runtime_error("no randomness from the system");
    return protocol::format_uuid(protocol::uuid_v4(b));
}

std::string sha256(std::string_view text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    return std::string(reinterpret_cast<const char*>(md), len);
}

json parse_stored(const std::string& text) {
    if (text.empty()) return nullptr;
    return json::parse(text);  // written by us; a failure is a damaged store (caught as storage_error)
}

std::string dump(const json& j) { return j.is_null() ? std::string() : j.dump(); }

void write_version(sql::db& db, const version_row& v) {
    auto h = db.cached(v.history_may_hold
                            ? "INSERT INTO history(collection, id, version, deleted, data, unit_id, device_id, "
                              "change_id, hlc, server_ms, how, lost, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                              "ON CONFLICT DO NOTHING"
                            : "INSERT INTO history(collection, id, version, deleted, data, unit_id, device_id, "
                              "change_id, hlc, server_ms, how, lost, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    h.bind(1, v.collection).bind(2, v.id).bind(3, v.version).bind(4, v.deleted ? 1 : 0);
    if (v.data)
        h.bind(5, *v.data);
    else
        h.bind_null(5);
    h.bind(6, v.unit_id).bind(7, v.writer).bind(8, v.change_id).bind(9, v.hlc).bind(10, v.server_ms).bind(11, v.how);
    if (v.lost)
        h.bind(12, *v.lost);
    else
        h.bind_null(12);
    h.bind(13, v.seq).run_deferred();
    if (v.old_path && *v.old_path != v.path) {
        // The record leaves a subtree: the devices there drop it (reads.cpp, pull).
        db.cached("INSERT INTO drops(seq, collection, id, path) VALUES (?, ?, ?, ?)")
            .bind(1, v.seq)
            .bind(2, v.collection)
            .bind(3, v.id)
            .bind(4, *v.old_path)
            .run_deferred();
    }
    auto u = db.cached(
        "INSERT INTO heads(collection, id, unit_id, version, deleted, data, seq, hlc, writer, updated_ms, path) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
        "ON CONFLICT(collection, id) DO UPDATE SET unit_id = ?3, version = ?4, deleted = ?5, data = ?6, seq = ?7, "
        "hlc = ?8, writer = ?9, updated_ms = ?10, path = ?11");
    u.bind(1, v.collection).bind(2, v.id).bind(3, v.unit_id).bind(4, v.version).bind(5, v.deleted ? 1 : 0);
    if (v.data)
        u.bind(6, *v.data);
    else
        u.bind_null(6);
    u.bind(7, v.seq).bind(8, v.hlc).bind(9, v.writer).bind(10, v.server_ms).bind(11, v.path).run_deferred();
    // The blobs this version names, and those of the values it lost (shown in history): each
    // lets the devices that may read the record fetch it (SPEC.md, "Attachments"). A record
    // without the word costs one search of its text.
    for (const auto* text : {v.data ? &*v.data : nullptr, v.lost ? &*v.lost : nullptr}) {
        if (!text || text->find("\"sha256\"") == std::string::npos) continue;
        write_blob_refs(db, v.collection, v.id, json::parse(*text, nullptr, false));
    }
}

void write_blob_refs(sql::db& db, std::string_view collection, std::string_view id, const json& data) {
    for (const auto& a : protocol::find_attachments(data))
        db.cached("INSERT INTO blob_refs(sha256, collection, id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(1, a.sha256)
            .bind(2, collection)
            .bind(3, id)
            .run_deferred();
}

error storage_failure(const std::exception& e) {
    const auto* q = dynamic_cast<const sql::error*>(&e);
    const auto* s = dynamic_cast<const sqlite::error*>(&e);  // backup.cpp works on SQLite files directly
    if ((q && q->transient()) || (s && (s->code() & 0xFF) == SQLITE_BUSY))
        return error{errc::unavailable, std::string("the store is busy: ") + e.what()};
    return error{errc::storage_error, std::string("the store failed: ") + e.what()};
}

protocol::change_result rejected_answer(std::string change_id, error err, std::int64_t version) {
    protocol::change_result r;
    r.change_id = std::move(change_id);
    r.status = protocol::change_status::rejected;
    r.version = version;
    r.err = std::move(err);
    return r;
}

device read_device(sql::stmt& s) {
    device d;
    d.id = s.text(0);
    d.name = s.text(1);
    d.unit_id = s.text(2);
    d.role = parse_role(s.text(3)).value_or(device_role::field);
    d.created_ms = s.int64(4);
    if (!s.is_null(5)) d.revoked_ms = s.int64(5);
    d.unit_path = s.text(6);
    d.scope_epoch = s.int64(7);
    if (!s.is_null(12))
        d.ack = acknowledgement{s.int64(8), s.int64(9), s.int64(10), s.int64(11), s.int64(12)};
    return d;
}

std::string subtree_end(std::string_view path) {
    std::string end(path);
    if (!end.empty() && end.back() == '/') end.back() = '0';
    return end;
}

std::string common_path(std::string_view a, std::string_view b) {
    std::size_t n = 0, last_slash = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) {
        if (a[n] == '/') last_slash = n;
        ++n;
    }
    return std::string(a.substr(0, last_slash + 1));
}

}  // namespace fieldsync::server::store_util
