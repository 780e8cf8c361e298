// Attachments in the store (attachment_store, store.hpp; SPEC.md, "Attachments"): the kept
// blobs' facts and the records that name them. blob_refs rows are written with each version
// (store_util::write_version); here they are only read.

#include "store/sql_store.hpp"

namespace fieldsync::server {

namespace {
blob_meta read_blob(sql::stmt& s) {
    return blob_meta{s.text(0), s.int64(1), s.text(2), s.text(3), s.int64(4)};
}
}  // namespace

proto::expected<bool> sql_store::blob_readable(const scope& sc, const std::string& sha256) {
    return read([&](sql::db& db) {
        if (sc.all) {
            auto s = db.cached("SELECT 1 FROM blob_refs WHERE sha256 = ? LIMIT 1");
            s.bind(1, sha256);
            return s.step();
        }
        // Few records name one blob (usually one): each is checked against the scope by its
        // head, where the record is now.
        auto s = db.cached(
            "SELECT h.path FROM blob_refs r JOIN heads h ON h.collection = r.collection AND h.id = r.id "
            "WHERE r.sha256 = ?");
        s.bind(1, sha256);
        while (s.step())
            if (sc.contains(s.text(0))) return true;
        return false;
    });
}

proto::expected<std::optional<blob_meta>> sql_store::blob(const std::string& sha256) {
    return read([&](sql::db& db) -> std::optional<blob_meta> {
        auto s = db.cached("SELECT sha256, size, content_type, device_id, created_ms FROM blobs WHERE sha256 = ?");
        s.bind(1, sha256);
        if (!s.step()) return std::nullopt;
        return read_blob(s);
    });
}

proto::expected<void> sql_store::keep_blob(const blob_meta& m) {
    auto done = admin_write([&](sql::db& db) {
        db.cached(
              "INSERT INTO blobs(sha256, size, content_type, device_id, created_ms) VALUES (?, ?, ?, ?, ?) "
              "ON CONFLICT DO NOTHING")
            .bind(1, m.sha256)
            .bind(2, m.size)
            .bind(3, m.content_type)
            .bind(4, m.device_id)
            .bind(5, m.created_ms)
            .run();
        return true;
    });
    if (!done) return std::move(done).err();
    return {};
}

proto::expected<std::int64_t> sql_store::blob_bytes_since(const std::string& device_id, std::int64_t since_ms) {
    return read([&](sql::db& db) {
        auto s = db.cached("SELECT coalesce(sum(size), 0) FROM blobs WHERE device_id = ? AND created_ms >= ?");
        s.bind(1, device_id).bind(2, since_ms);
        s.step();
        const auto n = s.int64(0);
        return n;
    });
}

proto::expected<std::vector<blob_meta>> sql_store::unnamed_blobs(std::int64_t before_ms) {
    return read([&](sql::db& db) {
        std::vector<blob_meta> out;
        auto s = db.cached(
            "SELECT b.sha256, b.size, b.content_type, b.device_id, b.created_ms FROM blobs b "
            "WHERE b.created_ms < ? AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.sha256 = b.sha256) "
            "ORDER BY b.sha256");
        s.bind(1, before_ms);
        while (s.step()) out.push_back(read_blob(s));
        return out;
    });
}

proto::expected<bool> sql_store::blob_named(const std::string& sha256) {
    return read([&](sql::db& db) {
        auto s = db.cached("SELECT 1 FROM blob_refs WHERE sha256 = ? LIMIT 1");
        s.bind(1, sha256);
        return s.step();
    });
}

proto::expected<void> sql_store::forget_blob(const std::string& sha256) {
    auto done = admin_write([&](sql::db& db) {
        // A version written since gc looked names it again: the row stays (and so must the
        // bytes; gc removes the bytes only after this succeeds).
        auto s = db.cached(
            "DELETE FROM blobs WHERE sha256 = ? AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.sha256 = ?)");
        s.bind(1, sha256).bind(2, sha256).run();
        return true;
    });
    if (!done) return std::move(done).err();
    return {};
}

proto::expected<std::pair<std::int64_t, std::int64_t>> sql_store::blob_totals() {
    return read([&](sql::db& db) {
        auto s = db.cached("SELECT count(*), coalesce(sum(size), 0) FROM blobs");
        s.step();
        const std::pair<std::int64_t, std::int64_t> out{s.int64(0), s.int64(1)};
        return out;
    });
}

}  // namespace fieldsync::server
