// Attachments on the device (SPEC.md, "Attachments", "Client behaviour"): the library's own
// SHA-256, attach() (the bytes beside the replica, the reference as an ordinary edit, the
// upload queued), and upload() and download() against the in-memory fake server, for the
// faults the real server cannot be made to show at an exact request: a chunk's answer lost, a
// server that holds another offset than the client thinks, each permanent refusal, a 503, a
// download cut between ranges, bytes that do not hash to their name, and the cache's
// eviction order. The same flows against the real server: tests/client/e2e/attachment_test.cpp.

#include "blobs/sha256.hpp"
#include "fake_server.hpp"
#include "helpers.hpp"
#include "replica_internal.hpp"

#include <fieldsync/client/tuning.hpp>

#include <sqlite3.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace fieldsync;
using namespace fieldsync::test;
using client::errc;
using client::upload_state;

namespace {

constexpr std::size_t kib = 1024;
constexpr std::size_t chunk = client::tuning::blob_chunk_bytes;

// A file of `size` bytes that starts with the magic bytes of `type`, the rest seeded noise.
std::string fake_file(const std::string& type, std::size_t size, std::uint64_t seed) {
    std::string head = type == "image/jpeg"        ? std::string("\xFF\xD8\xFF\xE0", 4)
                       : type == "image/png"       ? std::string("\x89PNG\r\n\x1A\n", 8)
                       : type == "application/pdf" ? std::string("%PDF-1.7\n")
                                                   : std::string("RIFF\x10\0\0\0WEBPVP8 ", 16);
    std::mt19937_64 rng(seed);
    std::string out = head;
    out.reserve(size);
    while (out.size() < size) out.push_back(static_cast<char>(rng()));
    out.resize(size);
    return out;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
}

std::string sha(const std::string& bytes) { return client::detail::sha256::of(bytes); }

device make_device(fake_server& s, temp_dir& dir, const std::string& name,
                   std::function<fault(const client::http_request&, int)> hook = {}) {
    device d{open_replica(dir.file(name + ".db"), s.connect(name, std::move(hook))), name};
    ok(d.r->configure("http://fake", "token-" + name));
    return d;
}

// A registration of the default schema, whose `scans` is an array of attachments.
std::string put_registration(client::replica& r, const std::string& id = "dk-2014-01") {
    return ok(r.put("registrations", registration("dv-01", 0), {.id = id, .unit_id = "ap-3"})).id;
}

bool is_put(const client::http_request& req) { return req.method == "PUT"; }

}  // namespace

TEST_CASE("SHA-256 gives the FIPS 180-4 digests, whole or fed in pieces", "[client][attachments][sha256]") {
    CHECK(sha("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(sha(std::string(1'000'000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    // Lengths around the padding's boundaries (one block or two): digests from Python's hashlib.
    CHECK(sha(std::string(55, 'a')) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    CHECK(sha(std::string(56, 'a')) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    CHECK(sha(std::string(63, 'a')) == "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
    CHECK(sha(std::string(64, 'a')) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
    CHECK(sha(std::string(119, 'a')) == "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
    CHECK(sha(std::string(120, 'a')) == "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c");
    // Fed in uneven pieces, the digest is the one of the whole.
    const auto data = fake_file("image/jpeg", 100'003, 7);
    client::detail::sha256 h;
    std::size_t at = 0;
    for (std::size_t step = 1; at < data.size(); step = step * 3 % 1000 + 1) {
        h.update(std::string_view(data).substr(at, step));
        at += step;
    }
    CHECK(h.hex() == sha(data));
}

TEST_CASE("attach copies the bytes beside the replica, appends the reference as an edit and queues the upload",
          "[client][attachments]") {
    temp_dir dir;
    const auto path = dir.file("phone.db");
    auto r = open_replica(path);
    const auto id = put_registration(*r);
    const auto jpeg = fake_file("image/jpeg", 300 * kib, 1);
    write(dir.file("IMG_0001.jpg"), jpeg);

    const auto ref = ok(r->attach("registrations", id, "scans", dir.file("IMG_0001.jpg")));
    CHECK(ref.sha256 == sha(jpeg));
    CHECK(ref.size == static_cast<std::int64_t>(jpeg.size()));
    CHECK(ref.content_type == "image/jpeg");
    CHECK(ref.name == "IMG_0001.jpg");
    CHECK(slurp(path + ".blobs/" + ref.sha256) == jpeg);

    auto rec = ok(r->get("registrations", id));
    REQUIRE(rec);
    CHECK(rec->state == client::sync_state::pending);
    REQUIRE(rec->data["scans"].size() == 1);
    CHECK(rec->data["scans"][0] == protocol::to_json(ref));

    // A second file goes after the first; the same bytes again add nothing.
    const auto pdf = fake_file("application/pdf", 20 * kib, 2);
    const auto second = ok(r->attach_bytes("registrations", id, "scans", pdf, "Biên bản họp chi bộ.pdf"));
    CHECK(second.content_type == "application/pdf");
    ok(r->attach("registrations", id, "scans", dir.file("IMG_0001.jpg"), "again.jpg"));
    rec = ok(r->get("registrations", id));
    REQUIRE(rec->data["scans"].size() == 2);
    CHECK(rec->data["scans"][1]["name"] == "Biên bản họp chi bộ.pdf");

    const auto queue = ok(r->upload_queue());
    REQUIRE(queue.size() == 2);
    CHECK(queue[0].ref.sha256 == ref.sha256);
    CHECK(queue[0].state == upload_state::waiting);
    CHECK(queue[0].sent == 0);
    CHECK(queue[1].ref.name == "Biên bản họp chi bộ.pdf");
    CHECK(ok(r->pending_count()) == 1);  // one record edit, whatever the number of files

    // Durable: a reopened replica has the queue and the record.
    r.reset();
    r = open_replica(path);
    CHECK(ok(r->upload_queue()).size() == 2);
    CHECK(ok(r->get("registrations", id))->data["scans"].size() == 2);
}

TEST_CASE("a replica file from before attachments (format 3) opens with its records and takes attachments",
          "[client][attachments][store]") {
    temp_dir dir;
    const auto path = dir.file("old.db");
    std::string id;
    {
        auto r = open_replica(path);
        id = put_registration(*r);
    }
    {
        // What the library before attachments left: format 3, without the two tables.
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "DROP TABLE uploads; DROP TABLE blob_files; PRAGMA user_version=3", nullptr, nullptr,
                             nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    auto r = open_replica(path);
    CHECK(ok(r->get("registrations", id)).has_value());
    CHECK(ok(r->upload_queue()).empty());
    ok(r->attach_bytes("registrations", id, "scans", fake_file("image/jpeg", 10 * kib, 40), "a.jpg"));
    CHECK(ok(r->upload_queue()).size() == 1);
}

TEST_CASE("attach refuses what the server would refuse, and changes nothing then", "[client][attachments]") {
    temp_dir dir;
    auto r = open_replica(dir.file("phone.db"));
    const auto id = put_registration(*r);
    const auto before = ok(r->get("registrations", id))->data;
    auto code = [](const auto& res) { return res ? errc::ok : static_cast<errc>(res.err().code.value()); };

    CHECK(code(r->attach_bytes("registrations", id, "scans", "just some text", "note.txt")) == errc::invalid_argument);
    CHECK(code(r->attach_bytes("registrations", id, "scans", "", "empty.jpg")) == errc::invalid_argument);
    const auto big = fake_file("image/jpeg", static_cast<std::size_t>(client::tuning::max_blob_bytes) + 1, 3);
    CHECK(code(r->attach_bytes("registrations", id, "scans", big, "big.jpg")) == errc::invalid_argument);
    write(dir.file("big.jpg"), big);
    CHECK(code(r->attach("registrations", id, "scans", dir.file("big.jpg"))) == errc::invalid_argument);
    const auto jpeg = fake_file("image/jpeg", 10 * kib, 4);
    CHECK(code(r->attach_bytes("registrations", "no-such-record", "scans", jpeg, "a.jpg")) == errc::not_found);
    CHECK(code(r->attach("registrations", id, "scans", dir.file("no-such-file.jpg"))) == errc::not_found);
    CHECK(code(r->attach_bytes("registrations", id, "notes", jpeg, "a.jpg")) == errc::invalid_argument);
    CHECK(code(r->attach_bytes("registrations", id, "scans", jpeg, std::string(256, 'x'))) == errc::invalid_argument);
    CHECK(code(r->attach_bytes("registrations", id, "scans", jpeg, "\xC3(")) == errc::invalid_utf8);

    CHECK(ok(r->get("registrations", id))->data == before);
    CHECK(ok(r->upload_queue()).empty());
    // Nor a file: the bytes written for a refused edit (no such record, a field that is not
    // for attachments) are gone again.
    CHECK_FALSE(std::filesystem::exists(dir.file("phone.db") + ".blobs/" + sha(jpeg)));
}

TEST_CASE("attach sets a field of type attachment and appends to a field the schema does not name",
          "[client][attachments]") {
    auto doc = protocol::schema::default_schema().document();
    doc["collections"]["members"]["fields"]["portrait"] = {{"type", "attachment"}};
    auto parsed = protocol::schema::from_json(doc);
    REQUIRE(parsed);
    const auto schema = std::move(*parsed);
    temp_dir dir;
    client::replica_options o;
    o.path = dir.file("phone.db");
    o.schema = &schema;
    auto r = ok(client::replica::open(std::move(o)));
    ok(r->put("members", member(1), {.id = "dv-01", .unit_id = "ap-3"}));

    const auto first = ok(r->attach_bytes("members", "dv-01", "portrait", fake_file("image/png", 5 * kib, 5), "a.png"));
    const auto second = ok(r->attach_bytes("members", "dv-01", "portrait", fake_file("image/webp", 5 * kib, 6), "b.webp"));
    CHECK(second.content_type == "image/webp");
    auto rec = ok(r->get("members", "dv-01"));
    CHECK(rec->data["portrait"] == protocol::to_json(second));  // set, not appended

    ok(r->attach_bytes("members", "dv-01", "extra_photos", fake_file("image/png", 5 * kib, 7), "c.png"));
    rec = ok(r->get("members", "dv-01"));
    REQUIRE(rec->data["extra_photos"].is_array());
    CHECK(rec->data["extra_photos"].size() == 1);
    // A field that holds a string is not a list to append to.
    CHECK_FALSE(r->attach_bytes("members", "dv-01", "role", fake_file("image/png", 5 * kib, 8), "d.png"));
    CHECK(ok(r->upload_queue()).size() == 3);
    (void)first;
}

TEST_CASE("sync sends the record with its reference and no file, then upload sends the file in chunks",
          "[client][attachments][upload]") {
    fake_server s;
    temp_dir dir;
    auto phone = make_device(s, dir, "phone");
    const auto id = put_registration(*phone.r);
    const auto jpeg = fake_file("image/jpeg", 600 * kib, 9);
    const auto ref = ok(phone.r->attach_bytes("registrations", id, "scans", jpeg, "Bản đăng ký.jpg"));

    ok(phone.r->sync());
    CHECK(s.blob_requests == 0);
    const auto heads = s.all();
    const auto& stored = heads.at({"registrations", id}).history.back().data;
    REQUIRE(stored["scans"].size() == 1);
    CHECK(stored["scans"][0] == protocol::to_json(ref));
    CHECK(s.blobs.empty());

    std::vector<std::int64_t> seen;
    const auto rep = ok(phone.r->upload({.progress = [&](const client::upload_progress& p) {
        CHECK(p.sha256 == ref.sha256);
        CHECK(p.size == ref.size);
        seen.push_back(p.sent);
        return true;
    }}));
    CHECK(rep.completed == 1);
    CHECK(rep.failed == 0);
    CHECK(rep.waiting == 0);
    CHECK(rep.bytes_sent == ref.size);
    CHECK(rep.requests == 4);  // GET, then three chunks of at most 256 KiB
    CHECK(seen == std::vector<std::int64_t>{static_cast<std::int64_t>(chunk), static_cast<std::int64_t>(2 * chunk), ref.size});
    CHECK(s.blobs.at(ref.sha256) == jpeg);
    const auto queue = ok(phone.r->upload_queue());
    REQUIRE(queue.size() == 1);
    CHECK(queue[0].state == upload_state::sent);
    CHECK(queue[0].sent == ref.size);

    // Nothing left to send: no request at all.
    const auto before = s.blob_requests;
    CHECK(ok(phone.r->upload()).completed == 0);
    CHECK(s.blob_requests == before);
}

TEST_CASE("an upload cut after the server kept a chunk resumes from the server's offset, sending nothing twice",
          "[client][attachments][upload]") {
    fake_server s;
    temp_dir dir;
    // The 2nd chunk (request 3: GET, PUT, PUT) reaches the server and its answer is lost.
    auto phone = make_device(s, dir, "phone", [](const client::http_request& req, int n) {
        return is_put(req) && n == 3 ? fault{fault::drop_response} : fault{};
    });
    const auto id = put_registration(*phone.r);
    const auto jpeg = fake_file("image/jpeg", 700 * kib, 10);
    const auto ref = ok(phone.r->attach_bytes("registrations", id, "scans", jpeg, "a.jpg"));

    auto first = phone.r->upload();
    REQUIRE_FALSE(first);
    CHECK(first.err().code == errc::network);
    auto queue = ok(phone.r->upload_queue());
    CHECK(queue[0].state == upload_state::waiting);
    CHECK(queue[0].sent == static_cast<std::int64_t>(chunk));  // the first answer only
    CHECK(s.chunk_bytes_received == static_cast<std::int64_t>(2 * chunk));

    const auto second = ok(phone.r->upload());
    CHECK(second.completed == 1);
    CHECK(second.bytes_sent == ref.size - static_cast<std::int64_t>(2 * chunk));  // the GET said 512 KiB
    CHECK(s.chunk_bytes_received == ref.size);
    CHECK(s.blobs.at(ref.sha256) == jpeg);
}

TEST_CASE("an upload stopped by its callback and its replica closed goes on from the server's offset after reopening",
          "[client][attachments][upload]") {
    fake_server s;
    temp_dir dir;
    const auto path = dir.file("phone.db");
    const auto jpeg = fake_file("image/jpeg", 900 * kib, 11);
    std::string sha256;
    {
        auto r = open_replica(path, s.connect("phone"));
        ok(r->configure("http://fake", "token-phone"));
        const auto id = put_registration(*r);
        sha256 = ok(r->attach_bytes("registrations", id, "scans", jpeg, "a.jpg")).sha256;
        auto stopped = r->upload({.progress = [](const client::upload_progress&) { return false; }});
        REQUIRE_FALSE(stopped);
        CHECK(stopped.err().code == errc::cancelled);
    }
    CHECK(s.chunk_bytes_received == static_cast<std::int64_t>(chunk));
    auto r = open_replica(path, s.connect("phone"));
    const auto rep = ok(r->upload());
    CHECK(rep.completed == 1);
    CHECK(s.chunk_bytes_received == static_cast<std::int64_t>(jpeg.size()));
    CHECK(s.blobs.at(sha256) == jpeg);
}

TEST_CASE("a chunk answered upload_offset is sent again from the server's offset", "[client][attachments][upload]") {
    fake_server s;
    temp_dir dir;
    const auto jpeg = fake_file("image/jpeg", 600 * kib, 12);
    const auto hash = sha(jpeg);
    // Between the GET and the first PUT, the server comes to hold the first chunk (another
    // copy of this replica sent it): the PUT at 0 is answered 409 with offset 256 KiB.
    auto phone = make_device(s, dir, "phone", [&](const client::http_request& req, int n) {
        if (is_put(req) && n == 2) s.partial[{"phone", hash}] = jpeg.substr(0, chunk);
        return fault{};
    });
    const auto id = put_registration(*phone.r);
    ok(phone.r->attach_bytes("registrations", id, "scans", jpeg, "a.jpg"));
    const auto rep = ok(phone.r->upload());
    CHECK(rep.completed == 1);
    CHECK(rep.requests == 4);  // GET, the refused PUT at 0, then 256 KiB and the rest
    CHECK(s.blobs.at(hash) == jpeg);
}

TEST_CASE("a blob refused for good is marked failed with its code and the next one goes on",
          "[client][attachments][upload]") {
    fake_server s;
    temp_dir dir;
    const auto path = dir.file("phone.db");
    auto phone = make_device(s, dir, "phone");
    const auto id = put_registration(*phone.r);
    const auto too_big = fake_file("image/jpeg", 300 * kib, 13);
    const auto corrupt = fake_file("image/png", 40 * kib, 14);
    const auto disguised = fake_file("application/pdf", 40 * kib, 15);
    const auto fine = fake_file("image/webp", 40 * kib, 16);
    const auto big_ref = ok(phone.r->attach_bytes("registrations", id, "scans", too_big, "big.jpg"));
    const auto corrupt_ref = ok(phone.r->attach_bytes("registrations", id, "scans", corrupt, "corrupt.png"));
    const auto disguised_ref = ok(phone.r->attach_bytes("registrations", id, "scans", disguised, "disguised.pdf"));
    const auto fine_ref = ok(phone.r->attach_bytes("registrations", id, "scans", fine, "fine.webp"));
    s.max_blob_bytes = 100 * kib;
    // The folder's copy changed behind the replica's back: same size, other bytes.
    auto other = corrupt;
    other[100] = static_cast<char>(other[100] ^ 0x55);
    write(path + ".blobs/" + corrupt_ref.sha256, other);
    // And one no longer starts like the type it was attached as.
    auto renamed = disguised;
    renamed[0] = 'X';
    write(path + ".blobs/" + disguised_ref.sha256, renamed);

    const auto rep = ok(phone.r->upload());
    CHECK(rep.completed == 1);
    CHECK(rep.failed == 3);
    const auto queue = ok(phone.r->upload_queue());
    REQUIRE(queue.size() == 4);
    CHECK(queue[0].state == upload_state::failed);
    CHECK(queue[0].error_code == "blob_too_large");
    CHECK(queue[1].state == upload_state::failed);
    CHECK(queue[1].error_code == "blob_hash_mismatch");
    CHECK(queue[2].state == upload_state::failed);
    CHECK(queue[2].error_code == "blob_type_refused");
    CHECK(queue[3].state == upload_state::sent);
    CHECK(s.blobs.count(fine_ref.sha256) == 1);
    // The record keeps every reference: the person replaces the file.
    CHECK(ok(phone.r->get("registrations", id))->data["scans"].size() == 4);
    // Failed ones are not tried again by the next call ...
    const auto before = s.blob_requests;
    ok(phone.r->upload());
    CHECK(s.blob_requests == before);
    // ... but are when the same bytes are attached again (here, after the limit was raised).
    s.max_blob_bytes = 10 * 1024 * 1024;
    ok(phone.r->attach_bytes("registrations", id, "scans", too_big, "big.jpg"));
    CHECK(ok(phone.r->upload()).completed == 1);
    CHECK(s.blobs.at(big_ref.sha256) == too_big);
}

TEST_CASE("a transient failure stops the upload call and leaves the blob queued, and a budget stops it early",
          "[client][attachments][upload]") {
    fake_server s;
    temp_dir dir;
    bool failing = true;
    auto phone = make_device(s, dir, "phone", [&](const client::http_request& req, int) {
        return failing && is_put(req) ? fault{fault::status, 503} : fault{};
    });
    const auto id = put_registration(*phone.r);
    const auto jpeg = fake_file("image/jpeg", 600 * kib, 17);
    ok(phone.r->attach_bytes("registrations", id, "scans", jpeg, "a.jpg"));

    auto r = phone.r->upload();
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::server_unavailable);
    CHECK(ok(phone.r->upload_queue())[0].state == upload_state::waiting);

    failing = false;
    const auto part = ok(phone.r->upload({.byte_budget = 1}));  // one chunk, then stop
    CHECK(part.bytes_sent == static_cast<std::int64_t>(chunk));
    CHECK(part.completed == 0);
    CHECK(part.waiting == 1);
    CHECK(ok(phone.r->upload_queue())[0].sent == static_cast<std::int64_t>(chunk));
    CHECK(ok(phone.r->upload()).completed == 1);
    CHECK(s.blobs.at(sha(jpeg)) == jpeg);
}

TEST_CASE("a queued blob whose copy beside the replica is gone is marked failed", "[client][attachments][upload]") {
    fake_server s;
    temp_dir dir;
    const auto path = dir.file("phone.db");
    auto phone = make_device(s, dir, "phone");
    const auto id = put_registration(*phone.r);
    const auto ref = ok(phone.r->attach_bytes("registrations", id, "scans", fake_file("image/jpeg", 10 * kib, 18), "a.jpg"));
    std::filesystem::remove(path + ".blobs/" + ref.sha256);
    CHECK(ok(phone.r->upload()).failed == 1);
    const auto queue = ok(phone.r->upload_queue());
    CHECK(queue[0].state == upload_state::failed);
    CHECK(queue[0].error_code == "missing_locally");
}

TEST_CASE("sync runs to its end while upload waits on the network on another thread", "[client][attachments][upload]") {
    fake_server s;
    temp_dir dir;
    std::mutex m;
    std::condition_variable cv;
    bool synced = false, in_put = false, released_by_sync = false;
    auto phone = make_device(s, dir, "phone", [&](const client::http_request& req, int) {
        if (!is_put(req)) return fault{};
        std::unique_lock lock(m);
        in_put = true;
        cv.notify_all();
        // Held until the sync is done; a sync that waited for the upload would never be.
        released_by_sync = cv.wait_for(lock, std::chrono::seconds(30), [&] { return synced; });
        return fault{};
    });
    const auto id = put_registration(*phone.r);
    const auto jpeg = fake_file("image/jpeg", 300 * kib, 19);
    ok(phone.r->attach_bytes("registrations", id, "scans", jpeg, "a.jpg"));

    client::result<client::upload_report> uploaded = client::upload_report{};
    std::thread uploader([&] { uploaded = phone.r->upload(); });
    {
        std::unique_lock lock(m);
        REQUIRE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return in_put; }));
    }
    // Mid-chunk: the queue says so, a second upload is refused, and local edits and a sync go on.
    const auto queue = ok(phone.r->upload_queue());
    CHECK(queue[0].state == upload_state::sending);
    auto second = phone.r->upload();
    REQUIRE_FALSE(second);
    CHECK(second.err().code == errc::busy);
    for (int i = 0; i < 20; ++i) ok(phone.r->put("members", member(i), {.id = "m-" + std::to_string(i), .unit_id = "ap-3"}));
    const auto rep = ok(phone.r->sync());
    CHECK(rep.pushed == 21);
    {
        std::lock_guard lock(m);
        synced = true;
    }
    cv.notify_all();
    uploader.join();
    CHECK(released_by_sync);
    REQUIRE(uploaded);
    CHECK(uploaded->completed == 1);
    CHECK(s.blobs.at(sha(jpeg)) == jpeg);
}

TEST_CASE("download fetches a blob in ranges, checks its hash, keeps it and reads it from the folder next time",
          "[client][attachments][download]") {
    fake_server s;
    temp_dir dir;
    auto phone = make_device(s, dir, "phone");
    const auto pdf = fake_file("application/pdf", 2 * chunk, 20);  // a whole number of ranges: ends with 416
    const auto hash = sha(pdf);
    s.blobs[hash] = pdf;

    const auto path = ok(phone.r->download(hash));
    CHECK(path == dir.file("phone.db") + ".blobs/" + hash);
    CHECK(slurp(path) == pdf);
    CHECK(s.ranges_asked == std::vector<std::string>{"bytes=0-262143", "bytes=262144-524287", "bytes=524288-786431"});
    const auto before = s.blob_requests;
    CHECK(ok(phone.r->download(hash)) == path);
    CHECK(s.blob_requests == before);

    auto missing = phone.r->download(sha("not there"));
    REQUIRE_FALSE(missing);
    CHECK(missing.err().code == errc::not_found);
    auto bad = phone.r->download("ABC");
    REQUIRE_FALSE(bad);
    CHECK(bad.err().code == errc::invalid_argument);
}

TEST_CASE("a download cut between ranges resumes with Range where it stopped", "[client][attachments][download]") {
    fake_server s;
    temp_dir dir;
    const auto jpeg = fake_file("image/jpeg", 600 * kib, 21);
    const auto hash = sha(jpeg);
    s.blobs[hash] = jpeg;
    auto phone = make_device(s, dir, "phone", [](const client::http_request&, int n) {
        return n == 2 ? fault{fault::drop_request} : fault{};
    });
    auto cut = phone.r->download(hash);
    REQUIRE_FALSE(cut);
    CHECK(cut.err().code == errc::network);
    s.ranges_asked.clear();
    const auto path = ok(phone.r->download(hash));
    CHECK(slurp(path) == jpeg);
    CHECK(s.ranges_asked.front() == "bytes=262144-524287");
    CHECK_FALSE(std::filesystem::exists(path + ".part"));
}

TEST_CASE("downloaded bytes that do not hash to their name are dropped", "[client][attachments][download]") {
    fake_server s;
    temp_dir dir;
    auto phone = make_device(s, dir, "phone");
    const auto real = fake_file("image/png", 40 * kib, 22);
    const auto hash = sha(real);
    s.blobs[hash] = fake_file("image/png", 40 * kib, 23);
    auto r = phone.r->download(hash);
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::bad_response);
    CHECK_FALSE(std::filesystem::exists(dir.file("phone.db") + ".blobs/" + hash));
    CHECK_FALSE(std::filesystem::exists(dir.file("phone.db") + ".blobs/" + hash + ".part"));
}

TEST_CASE("the blob cache removes the least recently used blobs past its limit, never an unsent upload",
          "[client][attachments][download]") {
    fake_server s;
    temp_dir dir;
    std::int64_t clock = 1'000;
    client::replica_options o;
    o.path = dir.file("phone.db");
    o.transport_override = s.connect("phone");
    o.blob_cache_bytes = 700 * kib;
    o.seams.wall_ms = [&] { return clock; };
    auto r = ok(client::replica::open(std::move(o)));
    ok(r->configure("http://fake", "token-phone"));
    auto on_disk = [&](const std::string& h) { return std::filesystem::exists(dir.file("phone.db") + ".blobs/" + h); };

    // The oldest of all: a photo waiting to be uploaded.
    const auto id = put_registration(*r);
    const auto queued = ok(r->attach_bytes("registrations", id, "scans", fake_file("image/jpeg", 300 * kib, 30), "q.jpg"));
    std::vector<std::string> h;
    for (std::uint64_t i = 0; i < 4; ++i) {
        const auto bytes = fake_file("image/png", 200 * kib, 31 + i);
        h.push_back(sha(bytes));
        s.blobs[h.back()] = bytes;
    }
    clock = 2'000;
    ok(r->download(h[0]));
    clock = 3'000;
    ok(r->download(h[1]));  // 300 (queued) + 400 KiB: at the limit
    CHECK(on_disk(h[0]));
    clock = 4'000;
    ok(r->download(h[0]));  // used again: now h[1] is the least recently used
    clock = 5'000;
    ok(r->download(h[2]));  // 900 KiB: one must go
    CHECK(on_disk(queued.sha256));
    CHECK(on_disk(h[0]));
    CHECK_FALSE(on_disk(h[1]));
    CHECK(on_disk(h[2]));
    clock = 6'000;
    ok(r->download(h[3]));
    CHECK(on_disk(queued.sha256));
    CHECK_FALSE(on_disk(h[0]));
    CHECK(on_disk(h[2]));
    CHECK(on_disk(h[3]));
    // Fetched again when asked for.
    CHECK(slurp(ok(r->download(h[1]))) == s.blobs[h[1]]);
}
