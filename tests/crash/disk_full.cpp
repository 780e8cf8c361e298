// Disk full and I/O errors (issue 7). A SQLite VFS shim, registered as the default VFS of
// this process, wraps the platform's VFS and can make every write fail (SQLITE_FULL, a full
// disk) or every fsync fail (SQLITE_IOERR_FSYNC, a failing device). The store opens its
// files through it without knowing (it opens with the default VFS), and a real server serves
// it on an ephemeral port. The test shows that a change-set that meets a full disk or an I/O
// error is answered 5xx (storage_error or unavailable) and changes nothing, that the server
// goes on serving reads meanwhile, and that the same change-set, retried once the fault is
// gone, is applied once; then PRAGMA integrity_check is ok.

#include "crash/http_client.hpp"

#include <fieldsync/protocol/json_input.hpp>
#include <fieldsync/server/server.hpp>
#include <fieldsync/server/store.hpp>

#include <sqlite3.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace srv = fieldsync::server;
namespace proto = fieldsync::protocol;
using proto::json;
using fieldsync::crash::http;

// ---- the failing VFS -------------------------------------------------------------------------

enum class fault { none, full, fsync_error };
std::atomic<fault> g_fault{fault::none};
std::atomic<long> g_failed_writes{0}, g_failed_syncs{0};
sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs;
sqlite3_io_methods g_methods;

struct shim_file {
    sqlite3_file base;
    sqlite3_file* real;  // follows this struct in the same allocation
};
sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<shim_file*>(f)->real; }

int shim_close(sqlite3_file* f) { return real_of(f)->pMethods->xClose(real_of(f)); }
int shim_read(sqlite3_file* f, void* b, int n, sqlite3_int64 off) { return real_of(f)->pMethods->xRead(real_of(f), b, n, off); }
int shim_write(sqlite3_file* f, const void* b, int n, sqlite3_int64 off) {
    if (g_fault.load() == fault::full) {
        ++g_failed_writes;
        return SQLITE_FULL;
    }
    return real_of(f)->pMethods->xWrite(real_of(f), b, n, off);
}
int shim_truncate(sqlite3_file* f, sqlite3_int64 size) { return real_of(f)->pMethods->xTruncate(real_of(f), size); }
int shim_sync(sqlite3_file* f, int flags) {
    if (g_fault.load() == fault::fsync_error) {
        ++g_failed_syncs;
        return SQLITE_IOERR_FSYNC;
    }
    return real_of(f)->pMethods->xSync(real_of(f), flags);
}
int shim_file_size(sqlite3_file* f, sqlite3_int64* size) { return real_of(f)->pMethods->xFileSize(real_of(f), size); }
int shim_lock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xLock(real_of(f), l); }
int shim_unlock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xUnlock(real_of(f), l); }
int shim_check_reserved(sqlite3_file* f, int* out) { return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out); }
int shim_file_control(sqlite3_file* f, int op, void* arg) { return real_of(f)->pMethods->xFileControl(real_of(f), op, arg); }
int shim_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int shim_device_chars(sqlite3_file* f) { return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f)); }
int shim_shm_map(sqlite3_file* f, int pg, int sz, int extend, void volatile** p) {
    return real_of(f)->pMethods->xShmMap(real_of(f), pg, sz, extend, p);
}
int shim_shm_lock(sqlite3_file* f, int offset, int n, int flags) { return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags); }
void shim_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int shim_shm_unmap(sqlite3_file* f, int del) { return real_of(f)->pMethods->xShmUnmap(real_of(f), del); }
int shim_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** p) { return real_of(f)->pMethods->xFetch(real_of(f), off, n, p); }
int shim_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) { return real_of(f)->pMethods->xUnfetch(real_of(f), off, p); }

int shim_open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
    auto* s = reinterpret_cast<shim_file*>(f);
    s->real = reinterpret_cast<sqlite3_file*>(s + 1);
    s->base.pMethods = nullptr;
    const int rc = g_real->xOpen(g_real, name, s->real, flags, out_flags);
    if (rc == SQLITE_OK && s->real->pMethods) s->base.pMethods = &g_methods;
    return rc;
}
int shim_delete(sqlite3_vfs*, const char* name, int sync_dir) { return g_real->xDelete(g_real, name, sync_dir); }
int shim_access(sqlite3_vfs*, const char* name, int flags, int* out) { return g_real->xAccess(g_real, name, flags, out); }
int shim_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) { return g_real->xFullPathname(g_real, name, n, out); }

void register_shim() {
    g_real = sqlite3_vfs_find(nullptr);
    g_vfs = *g_real;
    g_vfs.zName = "fieldsync-faulty";
    g_vfs.szOsFile = static_cast<int>(sizeof(shim_file)) + g_real->szOsFile;
    g_vfs.pNext = nullptr;
    g_vfs.xOpen = shim_open;
    g_vfs.xDelete = shim_delete;
    g_vfs.xAccess = shim_access;
    g_vfs.xFullPathname = shim_full_pathname;
    g_methods = sqlite3_io_methods{3,
                                   shim_close,
                                   shim_read,
                                   shim_write,
                                   shim_truncate,
                                   shim_sync,
                                   shim_file_size,
                                   shim_lock,
                                   shim_unlock,
                                   shim_check_reserved,
                                   shim_file_control,
                                   shim_sector_size,
                                   shim_device_chars,
                                   shim_shm_map,
                                   shim_shm_lock,
                                   shim_shm_barrier,
                                   shim_shm_unmap,
                                   shim_fetch,
                                   shim_unfetch};
    sqlite3_vfs_register(&g_vfs, 1);  // the default from now on: the store uses it unknowingly
}

// ---- the test --------------------------------------------------------------------------------

int g_failures = 0;
void expect(bool ok, const std::string& what) {
    if (!ok) {
        ++g_failures;
        std::fprintf(stderr, "FAIL: %s\n", what.c_str());
    }
}

std::string change_set(const std::string& batch, int first, int count, std::int64_t base = 0) {
    json changes = json::array();
    for (int k = first; k < first + count; ++k)
        changes.push_back({{"change_id", batch + "-c" + std::to_string(k)},
                           {"collection", "members"},
                           {"id", "m-" + std::to_string(k)},
                           {"unit_id", "xa-binh-hoa"},
                           {"op", "put"},
                           {"base_version", base},
                           {"data", {{"name", "Trần Thị " + std::to_string(k)}, {"cell", "ap-1"}}}});
    return json{{"batch_id", batch}, {"changes", changes}, {"cursor", ""}}.dump();
}

std::string error_code(const std::string& body) {
    auto j = proto::parse_json(body, 16);
    if (!j || !j->is_object() || !j->contains("error")) return "";
    return (*j)["error"].value("code", "");
}

// Nothing of `batch` (changes first..first+count) is in the store.
void expect_absent(srv::store& st, int first, int count, const std::string& when) {
    for (int k = first; k < first + count; ++k) {
        const auto r = st.get("members", "m-" + std::to_string(k));
        expect(r && !*r, when + ": m-" + std::to_string(k) + " was written");
    }
}

// One fault: a change-set meets it, then the fault goes and the same change-set is retried.
void fault_case(srv::store& st, std::uint16_t port, const std::string& token, fault f, const std::string& name,
                int first) {
    const std::string body = change_set(name, first, 3);
    g_fault = f;
    const auto during = http(port, "POST", "/v1/sync", token, body);
    const auto code = error_code(during.body);
    std::printf("disk-full: %s: answered %d %s\n", name.c_str(), during.status, code.c_str());
    expect(during.status >= 500 && during.status < 600, name + ": a change-set under the fault answered " +
                                                            std::to_string(during.status) + " " + during.body);
    expect(code == "storage_error" || code == "unavailable", name + ": error code " + code);
    // Reads are served meanwhile (they write nothing).
    const auto health = http(port, "GET", "/v1/health", "", "");
    expect(health.status == 200, name + ": /v1/health answered " + std::to_string(health.status) + " under the fault");
    const auto read = http(port, "GET", "/v1/records/members/m-0", token, "");
    expect(read.status == 200, name + ": a read answered " + std::to_string(read.status) + " under the fault");
    g_fault = fault::none;
    expect_absent(st, first, 3, name);

    // The same change-set, once the disk is back: applied once, at version 1.
    const auto after = http(port, "POST", "/v1/sync", token, body);
    expect(after.status == 200, name + ": the retry after the fault answered " + std::to_string(after.status) + " " +
                                    after.body);
    if (after.status == 200) {
        auto j = proto::parse_json(after.body, 64);
        for (const auto& r : (*j)["results"])
            expect(r.value("status", "") == "applied" && r.value("version", 0) == 1,
                   name + ": retry result " + r.dump());
    }
    for (int k = first; k < first + 3; ++k) {
        const auto h = st.history("members", "m-" + std::to_string(k));
        expect(h && h->size() == 1, name + ": m-" + std::to_string(k) + " has " +
                                        std::to_string(h ? h->size() : 0) + " versions");
    }
}

}  // namespace

int disk_full_main() {
    register_shim();
    const fs::path dir = fs::temp_directory_path() / ("fieldsync-disk-full-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path db = dir / "store.db";
    {
        srv::store_options so;
        so.path = db.string();
        auto opened = srv::open_sqlite_store(so);
        if (!opened) {
            std::fprintf(stderr, "disk-full: open: %s\n", opened.err().message.c_str());
            return 1;
        }
        auto& st = **opened;
        const auto dev = st.add_device("disk-full device", "xa-binh-hoa", srv::device_role::field);
        if (!dev) return 1;
        const auto& token = dev->second;
        srv::server server(srv::server_options{}, st);
        const auto port = server.start();
        if (!port) {
            std::fprintf(stderr, "disk-full: start: %s\n", port.err().message.c_str());
            return 1;
        }
        // Something to read while the disk is full.
        const auto first = http(*port, "POST", "/v1/sync", token, change_set("before", 0, 1));
        expect(first.status == 200, "the first change-set answered " + std::to_string(first.status) + " " + first.body);

        fault_case(st, *port, token, fault::full, "disk-full", 10);
        fault_case(st, *port, token, fault::fsync_error, "fsync-error", 20);
        // Twice in a row, then normal service.
        fault_case(st, *port, token, fault::full, "disk-full-again", 30);
        const auto later = http(*port, "POST", "/v1/sync", token, change_set("later", 40, 2));
        expect(later.status == 200, "a change-set after the faults answered " + std::to_string(later.status));
        std::printf("disk-full: %ld writes and %ld fsyncs failed by the shim\n", g_failed_writes.load(),
                    g_failed_syncs.load());
        expect(g_failed_writes.load() > 0 && g_failed_syncs.load() > 0, "the shim never failed anything");
        server.stop();
        st.close();
    }
    // Integrity, through the plain VFS.
    sqlite3* h = nullptr;
    std::string out;
    if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, g_real->zName) == SQLITE_OK) {
        sqlite3_stmt* s = nullptr;
        sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &s, nullptr);
        while (s && sqlite3_step(s) == SQLITE_ROW) out += reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
    }
    sqlite3_close(h);
    expect(out == "ok", "PRAGMA integrity_check: " + out);
    if (g_failures) {
        std::printf("disk-full: FAILED (%d), store kept in %s\n", g_failures, dir.c_str());
        return 1;
    }
    fs::remove_all(dir);
    std::printf("disk-full: ok\n");
    return 0;
}
