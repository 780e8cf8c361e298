// Attachments through HTTP (SPEC.md, "Attachments"): resumable uploads cut at every chunk
// boundary, refusals that keep nothing and leave the next requests seeing the world as it is,
// downloads in ranges and within scopes, deduplication, the daily allowance, records that
// arrive before their bytes, and gc, backup and restore of the blobs.

#include "e2e/support.hpp"

#include <fieldsync/protocol/attachment.hpp>
#include <fieldsync/server/blob_store.hpp>

#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <filesystem>
#include <functional>
#include <random>
#include <set>

namespace fieldsync::e2e {
namespace {

namespace fsys = std::filesystem;

std::string sha256_hex(std::string_view bytes) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    REQUIRE(EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) == 1);
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += k_hex[md[i] >> 4];
        out += k_hex[md[i] & 15];
    }
    return out;
}

// A "photo": JPEG's magic bytes, then seeded noise (the server checks the magic, not the rest).
std::string fake_jpeg(std::size_t size, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::string out("\xFF\xD8\xFF\xE0", 4);
    while (out.size() < size) out.push_back(static_cast<char>(rng() & 0xFF));
    out.resize(size);
    return out;
}

std::string fake_png(std::size_t size, std::uint32_t seed) {
    std::string out("\x89PNG\r\n\x1A\n", 8);
    out += fake_jpeg(size - 8, seed).substr(0, size - 8);
    return out;
}

using headers = std::vector<std::pair<std::string, std::string>>;

struct client {
    std::uint16_t port;
    std::string token;

    http_reply status(const std::string& sha) const {
        return http_request(port, "GET", "/v1/uploads/" + sha, "", {{"Authorization", "Bearer " + token}});
    }
    http_reply put(const std::string& sha, std::int64_t offset, std::int64_t length, const std::string& chunk,
                   const std::string& type = "image/jpeg") const {
        return http_request(port, "PUT", "/v1/uploads/" + sha, chunk,
                            {{"Authorization", "Bearer " + token},
                             {"Content-Type", type},
                             {"Upload-Offset", std::to_string(offset)},
                             {"Upload-Length", std::to_string(length)}});
    }
    http_reply get(const std::string& sha, const headers& extra = {}) const {
        headers h{{"Authorization", "Bearer " + token}};
        h.insert(h.end(), extra.begin(), extra.end());
        return http_request(port, "GET", "/v1/blobs/" + sha, "", h);
    }
    // Sends `bytes` from the server's offset in chunks; returns the bytes sent.
    std::int64_t upload(const std::string& bytes, std::size_t chunk, const std::string& type = "image/jpeg") const {
        const auto sha = sha256_hex(bytes);
        auto st = status(sha);
        REQUIRE(st.status == 200);
        auto offset = st.body_json()["offset"].get<std::int64_t>();
        std::int64_t sent = 0;
        while (!st.body_json()["complete"].get<bool>()) {
            const auto part = bytes.substr(static_cast<std::size_t>(offset), chunk);
            st = put(sha, offset, static_cast<std::int64_t>(bytes.size()), part, type);
            INFO(st.body);
            REQUIRE((st.status == 200 || st.status == 201));
            sent += static_cast<std::int64_t>(part.size());
            offset = st.body_json()["offset"].get<std::int64_t>();
        }
        return sent;
    }
};

json reference(const std::string& bytes, const std::string& name, const std::string& type = "image/jpeg") {
    return {{"sha256", sha256_hex(bytes)}, {"size", bytes.size()}, {"content_type", type}, {"name", name}};
}

json registration(const std::string& member, const json& scans) {
    return {{"member", member}, {"year", 2025}, {"commitments", {"Tham gia sinh hoạt chi bộ đầy đủ"}},
            {"scans", scans}};
}

std::size_t files_under(const fsys::path& dir) {
    std::size_t n = 0;
    std::error_code ec;
    if (!fsys::exists(dir, ec)) return 0;
    for (const auto& e : fsys::recursive_directory_iterator(dir, ec))
        if (e.is_regular_file() && e.path().filename() != "device") ++n;
    return n;
}

}  // namespace

TEST_CASE("e2e: an upload cut at every chunk boundary resumes from what the server holds, resending nothing",
          "[e2e][attachments]") {
    server_fixture f;
    const client c{f.port(), f.token()};
    constexpr std::size_t chunk = 16 * 1024;
    const auto bytes = fake_jpeg(5 * chunk + 1234, 7);  // six chunks, the last short
    const auto sha = sha256_hex(bytes);
    const auto n_chunks = (bytes.size() + chunk - 1) / chunk;

    // Cut after k chunks, for every k: what the server answered is what it holds (the client
    // forgets everything else and asks), and the upload goes on from there.
    std::int64_t held = 0;
    for (std::size_t k = 0; k < n_chunks; ++k) {
        INFO("cut after chunk " << k);
        // A chunk cut half way: the connection closes before its body is whole. Nothing of it
        // is kept, and the offset does not move.
        {
            raw_connection raw(f.port());
            const auto part = bytes.substr(k * chunk, chunk);
            auto req = format_request("PUT", "/v1/uploads/" + sha, part,
                                      {{"Authorization", "Bearer " + f.token()},
                                       {"Content-Type", "image/jpeg"},
                                       {"Upload-Offset", std::to_string(k * chunk)},
                                       {"Upload-Length", std::to_string(bytes.size())}});
            REQUIRE(raw.send(req.substr(0, req.size() - part.size() / 2)));
        }
        const auto st = c.status(sha);
        REQUIRE(st.status == 200);
        CHECK(st.body_json()["offset"] == held);
        CHECK(st.body_json()["complete"] == false);
        // The whole chunk this time.
        const auto part = bytes.substr(k * chunk, chunk);
        const auto r = c.put(sha, held, static_cast<std::int64_t>(bytes.size()), part);
        INFO(r.body);
        REQUIRE(r.status == (k + 1 == n_chunks ? 201 : 200));
        held += static_cast<std::int64_t>(part.size());
        CHECK(r.body_json()["offset"] == held);
        // Sending an acknowledged chunk again is refused with where to go on.
        if (k + 1 < n_chunks) {
            const auto again = c.put(sha, held - static_cast<std::int64_t>(part.size()),
                                     static_cast<std::int64_t>(bytes.size()), part);
            CHECK(again.status == 409);
            CHECK(again.error_code() == "upload_offset");
            CHECK(again.body_json()["error"]["offset"] == held);
        }
    }
    CHECK(held == static_cast<std::int64_t>(bytes.size()));
    const auto st = c.status(sha);
    CHECK(st.body_json()["complete"] == true);
    CHECK(st.body_json()["offset"] == bytes.size());

    // The uploader reads it back only through a record that names it (an admin reads any).
    auto admin = f.store().add_device("Máy Huyện ủy", "xa-binh-hoa", srv::device_role::admin);
    REQUIRE(admin);
    const client boss{f.port(), admin->second};
    const auto got = boss.get(sha);
    REQUIRE(got.status == 200);
    CHECK(got.body == bytes);
    CHECK(sha256_hex(got.body) == sha);
    CHECK(got.headers.at("content-type") == "image/jpeg");
    CHECK(got.headers.at("etag") == "\"" + sha + "\"");
    CHECK(got.headers.count("content-encoding") == 0);
}

TEST_CASE("e2e: an upload whose every byte arrived but was not kept yet (the server died between) is kept when asked about",
          "[e2e][attachments]") {
    server_fixture f;
    const client c{f.port(), f.token()};
    auto blobs = srv::open_blob_dir(srv::default_blob_dir(f.db_path()));
    REQUIRE(blobs);
    // What a server killed after the last chunk's fsync and before the hash leaves behind.
    const auto photo = fake_jpeg(20'000, 40), wrong = fake_jpeg(20'000, 41);
    REQUIRE((*blobs)->append(f.device().id, sha256_hex(photo), 20'000, 0, photo));
    REQUIRE((*blobs)->append(f.device().id, sha256_hex(wrong), 20'000, 0, photo));  // bytes of another name
    const auto st = c.status(sha256_hex(photo));
    CHECK(st.body_json()["complete"] == true);
    CHECK(st.body_json()["offset"] == 20'000);
    auto meta = f.store().blob(sha256_hex(photo));
    REQUIRE(meta);
    REQUIRE(*meta);
    CHECK((*meta)->content_type == "image/jpeg");
    // Bytes that do not hash to their name are forgotten: the device sends them again.
    const auto again = c.status(sha256_hex(wrong));
    CHECK(again.body_json()["complete"] == false);
    CHECK(again.body_json()["offset"] == 0);
    CHECK(c.upload(wrong, 8192) == 20'000);
}

TEST_CASE("e2e: refused uploads keep nothing, and the requests after them see the world as it is",
          "[e2e][attachments]") {
    srv::server_options o = server_fixture::quick_options();
    o.max_blob_bytes = 64 * 1024;
    server_fixture f(o);
    const client c{f.port(), f.token()};
    const auto other = f.add_device("Máy chi bộ ấp 2", "xa-binh-hoa");
    const fsys::path blobs = srv::default_blob_dir(f.db_path());

    const auto photo = fake_jpeg(20'000, 1);
    const auto sha = sha256_hex(photo);
    struct refusal {
        const char* what;
        std::function<http_reply()> send;
        int status;
        const char* code;
    };
    const std::vector<refusal> refusals{
        {"too large", [&] { return c.put(sha, 0, 64 * 1024 + 1, photo.substr(0, 1000)); }, 413, "blob_too_large"},
        {"a type not allowed", [&] { return c.put(sha, 0, 20'000, photo, "image/gif"); }, 415, "blob_type_refused"},
        {"a PNG sent as JPEG", [&] {
             const auto png = fake_png(20'000, 2);
             return c.put(sha256_hex(png), 0, 20'000, png, "image/jpeg");
         }, 415, "blob_type_refused"},
        {"bytes that are not the name", [&] { return c.put(sha, 0, 20'000, fake_jpeg(20'000, 99)); }, 422,
         "blob_hash_mismatch"},
        {"a name that is no hash", [&] { return c.put("ABC", 0, 20'000, photo); }, 400, "bad_request"},
        {"a chunk past its length", [&] { return c.put(sha, 0, 10, photo.substr(0, 20)); }, 400, "bad_request"},
        {"no offset", [&] {
             return http_request(f.port(), "PUT", "/v1/uploads/" + sha, photo,
                                 {{"Authorization", "Bearer " + f.token()}, {"Content-Type", "image/jpeg"},
                                  {"Upload-Length", "20000"}});
         }, 400, "bad_request"},
        {"no token", [&] {
             return http_request(f.port(), "PUT", "/v1/uploads/" + sha, photo,
                                 {{"Content-Type", "image/jpeg"}, {"Upload-Offset", "0"}, {"Upload-Length", "20000"}});
         }, 401, "unauthorized"},
    };
    int n = 0;
    for (const auto& r : refusals) {
        INFO(r.what);
        const auto reply = r.send();
        CHECK(reply.status == r.status);
        CHECK(reply.error_code() == r.code);
        CHECK_FALSE(reply.error_message().empty());
        // Nothing kept: no blob, no upload, the offset still 0.
        CHECK(files_under(blobs) == 0);
        const auto st = c.status(sha);
        CHECK(st.body_json()["offset"] == 0);
        CHECK(st.body_json()["complete"] == false);
        CHECK(c.get(sha).status == 404);
        // Another device writes; a pull sees it.
        const auto id = "tv-" + std::to_string(++n);
        const auto w = only_result(f.sync(batch("b-" + id, {put_change("c-" + id, "members", id, 0,
                                                                        {{"name", "Võ Văn Kiệt"}, {"cell", "ap-2"}})}),
                                           other));
        CHECK(w["status"] == "applied");
        const auto page = f.sync(json{{"cursor", ""}, {"limit", 500}});
        std::set<std::string> seen;
        for (const auto& ch : page["changes"]) seen.insert(ch["id"].get<std::string>());
        CHECK(seen.count(id) == 1);
    }
    // The same upload, sent right, is kept.
    CHECK(c.upload(photo, 8192) == static_cast<std::int64_t>(photo.size()));
    CHECK(files_under(blobs) == 1);

    // The counters say what happened.
    auto admin = f.store().add_device("Máy Huyện ủy", "xa-binh-hoa", srv::device_role::admin);
    const auto metrics = f.get("/metrics", admin->second);
    CHECK(metrics.body.find("fieldsync_uploads_total{result=\"kept\"} 1") != std::string::npos);
    CHECK(metrics.body.find("fieldsync_uploads_total{result=\"too_large\"} 1") != std::string::npos);
    CHECK(metrics.body.find("fieldsync_uploads_total{result=\"type_refused\"} 2") != std::string::npos);
    CHECK(metrics.body.find("fieldsync_uploads_total{result=\"hash_mismatch\"} 1") != std::string::npos);
    CHECK(metrics.body.find("fieldsync_blob_bytes 20000") != std::string::npos);
    CHECK(metrics.body.find("fieldsync_blobs 1") != std::string::npos);
}

TEST_CASE("e2e: a record may arrive before its photo, and a blob is fetched only within the scope of a record naming it",
          "[e2e][attachments][scope]") {
    server_fixture f;
    auto unit = [&](const srv::unit& u) { REQUIRE(f.store().put_unit(u).has_value()); };
    unit({"giong-trom", "", "Huyện ủy Giồng Trôm", "district", ""});
    unit({"binh-hoa", "giong-trom", "Đảng bộ xã Bình Hòa", "commune", ""});
    unit({"ap-1", "binh-hoa", "Chi bộ ấp 1", "cell", ""});
    unit({"ap-2", "binh-hoa", "Chi bộ ấp 2", "cell", ""});
    const auto cell1 = f.add_device("Máy chi bộ ấp 1", "ap-1");
    const auto cell1b = f.add_device("Máy thứ hai của chi bộ ấp 1", "ap-1");
    const auto cell2 = f.add_device("Máy chi bộ ấp 2", "ap-2");
    const auto commune = f.add_device("Máy Đảng ủy xã", "binh-hoa");
    const client up{f.port(), cell1}, mate{f.port(), cell1b}, stranger{f.port(), cell2}, above{f.port(), commune};

    // The registration names a signed form not sent yet (NFD name: kept byte for byte).
    const auto form = fake_jpeg(30'000, 3);
    const auto sha = sha256_hex(form);
    const auto name = to_nfd("Bản đăng ký của đồng chí Lê Thị Hồng.jpg");
    const auto r = only_result(f.sync(
        batch("b1", {put_change("c1", "registrations", "dk-1", 0, registration("tv-1", json::array({reference(form, name)})),
                                "ap-1")}),
        cell1));
    REQUIRE(r["status"] == "applied");
    // Pulled by the cell's other device with its reference; the bytes are not there yet.
    const auto page = f.sync(json{{"cursor", ""}}, cell1b);
    REQUIRE(page["changes"].size() == 1);
    CHECK(page["changes"][0]["data"]["scans"][0]["name"] == name);
    CHECK(page["changes"][0]["data"]["scans"][0]["sha256"] == sha);
    const auto missing = mate.get(sha);
    CHECK(missing.status == 404);
    CHECK(missing.error_code() == "not_found");

    up.upload(form, 10'000);
    CHECK(mate.get(sha).body == form);
    CHECK(above.get(sha).body == form);      // the commune reads its cells' records
    CHECK(up.get(sha).body == form);
    // Another cell gets the very answer a blob never uploaded gets.
    const auto refused = stranger.get(sha);
    const auto never = stranger.get(sha256_hex("never uploaded"));
    CHECK(refused.status == 404);
    CHECK(never.status == 404);
    CHECK(refused.error_code() == never.error_code());
    // The message names the hash asked for, and nothing else differs.
    auto strip = [](std::string s, const std::string& h) {
        const auto at = s.find(h);
        if (at != std::string::npos) s.erase(at, h.size());
        return s;
    };
    CHECK(strip(refused.body, sha) == strip(never.body, sha256_hex("never uploaded")));

    // Ranges.
    const auto part = mate.get(sha, {{"Range", "bytes=100-199"}});
    CHECK(part.status == 206);
    CHECK(part.body == form.substr(100, 100));
    CHECK(part.headers.at("content-range") == "bytes 100-199/30000");
    const auto tail = mate.get(sha, {{"Range", "bytes=-10"}});
    CHECK(tail.status == 206);
    CHECK(tail.body == form.substr(form.size() - 10));
    const auto from = mate.get(sha, {{"Range", "bytes=29990-"}});
    CHECK(from.body == form.substr(29990));
    const auto past = mate.get(sha, {{"Range", "bytes=30000-"}});
    CHECK(past.status == 416);
    CHECK(past.error_code() == "range_not_satisfiable");
    CHECK(past.headers.at("content-range") == "bytes */30000");

    // The same photo from another device is not sent again.
    const auto again = stranger.status(sha);
    CHECK(again.body_json()["complete"] == true);
    CHECK(stranger.upload(form, 10'000) == 0);

    // Two devices put different photos in the same registration from the same version: the
    // second is held for review, and the reviewer sees both photos before deciding.
    const auto reviewer = f.add_device("Ủy ban kiểm tra xã", "binh-hoa", srv::device_role::reviewer);
    const client judge{f.port(), reviewer};
    const auto photo_a = fake_jpeg(9'000, 30), photo_b = fake_jpeg(9'000, 31);
    up.upload(photo_a, 9'000);
    mate.upload(photo_b, 9'000);
    REQUIRE(only_result(f.sync(batch("b3", {patch_change("c3", "registrations", "dk-1", 1,
                                                         {{"scans", json::array({reference(photo_a, "trang 1.jpg")})}},
                                                         "ap-1")}),
                               cell1))["status"] == "applied");
    const auto held = only_result(f.sync(batch("b4", {patch_change("c4", "registrations", "dk-1", 1,
                                                                   {{"scans", json::array({reference(photo_b, "trang 1 (chụp lại).jpg")})}},
                                                                   "ap-1")}),
                                         cell1b));
    REQUIRE(held["status"] == "conflict");
    CHECK(judge.get(sha256_hex(photo_a)).body == photo_a);
    CHECK(judge.get(sha256_hex(photo_b)).body == photo_b);
    CHECK(stranger.get(sha256_hex(photo_b)).status == 404);

    // A reference of the wrong form is refused like any field.
    auto bad = reference(form, "x.jpg");
    bad["sha256"] = std::string(64, 'A');
    const auto rej = only_result(f.sync(
        batch("b2", {put_change("c2", "registrations", "dk-2", 0, registration("tv-1", json::array({bad})), "ap-1")}), cell1));
    CHECK(rej["status"] == "rejected");
    CHECK(rej["error"]["code"] == "schema_violation");
}

TEST_CASE("e2e: a device's uploads stop at its daily allowance with a time to retry", "[e2e][attachments]") {
    srv::server_options o = server_fixture::quick_options();
    o.blob_quota_bytes = 50'000;
    server_fixture f(o);
    const client c{f.port(), f.token()};
    const auto a = fake_jpeg(30'000, 4), b = fake_jpeg(30'000, 5);
    c.upload(a, 30'000);
    const auto r = c.put(sha256_hex(b), 0, 30'000, b);
    CHECK(r.status == 429);
    CHECK(r.error_code() == "blob_quota");
    REQUIRE(r.headers.count("retry-after") == 1);
    const auto wait = std::stol(r.headers.at("retry-after"));
    CHECK(wait > 0);
    CHECK(wait <= 24 * 3600 + 1);
    // Another device has its own allowance; a blob held already costs nothing.
    const client other{f.port(), f.add_device("Máy khác", "xa-binh-hoa")};
    CHECK(other.upload(b, 30'000) == 30'000);
    CHECK(c.upload(b, 30'000) == 0);
}

TEST_CASE("e2e: gc removes blobs no version names and abandoned uploads after the window, and keeps the named ones",
          "[e2e][attachments][gc]") {
    server_fixture f;
    const client c{f.port(), f.token()};
    const auto named = fake_jpeg(12'000, 10), orphan = fake_jpeg(12'000, 11), half = fake_jpeg(12'000, 12);
    c.upload(named, 4096);
    c.upload(orphan, 4096);
    REQUIRE(c.put(sha256_hex(half), 0, 12'000, half.substr(0, 4096)).status == 200);
    REQUIRE(only_result(f.sync(batch("b", {put_change("c", "registrations", "dk-9", 0,
                                                      registration("tv-9", json::array({reference(named, "ảnh.jpg")})))})))
                ["status"] == "applied");
    auto blobs = srv::open_blob_dir(srv::default_blob_dir(f.db_path()));
    REQUIRE(blobs);
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    // Within the window: nothing goes.
    auto r = srv::gc_blobs(f.store(), **blobs, now - 3'600'000, false);
    REQUIRE(r);
    CHECK(r->blobs == 0);
    CHECK(r->uploads == 0);
    // A dry run past it counts and changes nothing.
    r = srv::gc_blobs(f.store(), **blobs, now + 1000, true);
    REQUIRE(r);
    CHECK(r->blobs == 1);
    CHECK(r->bytes == 12'000);
    CHECK(r->uploads == 1);
    CHECK(c.status(sha256_hex(orphan)).body_json()["complete"] == true);
    r = srv::gc_blobs(f.store(), **blobs, now + 1000, false);
    REQUIRE(r);
    CHECK(r->blobs == 1);
    CHECK(r->uploads == 1);
    CHECK(r->upload_bytes == 4096);
    CHECK(c.status(sha256_hex(orphan)).body_json()["complete"] == false);
    CHECK(c.status(sha256_hex(half)).body_json()["offset"] == 0);
    CHECK(c.status(sha256_hex(named)).body_json()["complete"] == true);
    CHECK(c.get(sha256_hex(named)).body == named);
}

TEST_CASE("e2e: backup and restore carry the blobs with the records", "[e2e][attachments][sqlite][backup]") {
    temp_dir out;
    const auto backup = (out.path() / "backup.db").string();
    const auto photo = fake_jpeg(40'000, 20);
    std::string restored;
    {
        server_fixture f;
        const client c{f.port(), f.token()};
        c.upload(photo, 16'384);
        REQUIRE(only_result(f.sync(batch("b", {put_change("c", "registrations", "dk-1", 0,
                                                          registration("tv-1", json::array({reference(photo, "a.jpg")})))})))
                    ["status"] == "applied");
        const auto r = srv::backup_sqlite_store(f.db_path(), backup);
        REQUIRE(r);
        CHECK(r->blobs == 1);
        CHECK(r->blob_bytes == 40'000);
    }
    // A new machine: the backup restored where no store was.
    const auto target = (out.path() / "restored.db").string();
    const auto r = srv::restore_sqlite_store(backup, target);
    REQUIRE(r);
    CHECK(r->blobs == 1);
    auto blobs = srv::open_blob_dir(srv::default_blob_dir(target));
    REQUIRE(blobs);
    const auto sha = sha256_hex(photo);
    auto bytes = (*blobs)->read(sha, 0, 1 << 20);
    REQUIRE(bytes);
    CHECK(*bytes == photo);
    // And a server on it answers the blob to a device that reads the record.
    srv::store_options so;
    so.path = target;
    auto st = srv::open_sqlite_store(so);
    REQUIRE(st);
    CHECK((*st)->blob_readable(srv::scope{false, "/xa-binh-hoa/"}, sha).value());
    auto meta = (*st)->blob(sha);
    REQUIRE(meta);
    REQUIRE(*meta);
    CHECK((*meta)->size == 40'000);
    (*st)->close();
}

}  // namespace fieldsync::e2e
