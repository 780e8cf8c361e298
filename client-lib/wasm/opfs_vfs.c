/* The SQLite VFS of the browser build (SQLITE_OS_OTHER: SQLite has no OS layer of its own).
 *
 * Files are the JavaScript objects of replica-worker.js's `files` table: for the replica's
 * file and its rollback journal, the origin-private file system's FileSystemSyncAccessHandle
 * (opened before the replica, since opening one is asynchronous), whose read, write,
 * truncate and flush are synchronous and durable when flush returns; for anything else
 * (and where there is no such file system) a file in memory. Each call below is one
 * synchronous call into JavaScript (EM_JS).
 *
 * The journal cannot be deleted synchronously, so "delete" empties it (truncate to 0 and
 * flush) and a file "exists" while it has bytes: that is what SQLite's hot-journal check
 * needs, and what journal_mode=TRUNCATE does on a disk. One connection, in one worker, holds
 * the handles (an access handle is exclusive), so locks are always granted. */
#include <emscripten.h>
#include <sqlite3.h>
#include <string.h>

EM_JS(int, fsv_open, (const char* name, int create), {
  return Module.fieldsyncFiles.open(UTF8ToString(name), create !== 0);
});
EM_JS(int, fsv_close, (int file), { return Module.fieldsyncFiles.close(file); });
EM_JS(int, fsv_read, (int file, void* buf, int n, double at), {
  return Module.fieldsyncFiles.read(file, HEAPU8.subarray(buf, buf + n), at);
});
EM_JS(int, fsv_write, (int file, const void* buf, int n, double at), {
  return Module.fieldsyncFiles.write(file, HEAPU8.subarray(buf, buf + n), at);
});
EM_JS(int, fsv_truncate, (int file, double size), { return Module.fieldsyncFiles.truncate(file, size); });
EM_JS(int, fsv_flush, (int file), { return Module.fieldsyncFiles.flush(file); });
EM_JS(double, fsv_size, (int file), { return Module.fieldsyncFiles.size(file); });
EM_JS(int, fsv_remove, (const char* name), { return Module.fieldsyncFiles.remove(UTF8ToString(name)); });
EM_JS(double, fsv_size_of, (const char* name), { return Module.fieldsyncFiles.sizeOf(UTF8ToString(name)); });
EM_JS(void, fsv_random, (int n, void* buf), { crypto.getRandomValues(HEAPU8.subarray(buf, buf + n)); });
EM_JS(double, fsv_now_ms, (void), { return Date.now(); });

typedef struct fsv_file {
  sqlite3_file base;
  int id;
} fsv_file;

static int fsv_x_close(sqlite3_file* f) {
  return fsv_close(((fsv_file*)f)->id) == 0 ? SQLITE_OK : SQLITE_IOERR_CLOSE;
}

static int fsv_x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 at) {
  const int got = fsv_read(((fsv_file*)f)->id, buf, n, (double)at);
  if (got < 0) return SQLITE_IOERR_READ;
  if (got < n) {
    memset((char*)buf + got, 0, (size_t)(n - got));
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

static int fsv_x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 at) {
  return fsv_write(((fsv_file*)f)->id, buf, n, (double)at) == n ? SQLITE_OK : SQLITE_IOERR_WRITE;
}

static int fsv_x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return fsv_truncate(((fsv_file*)f)->id, (double)size) == 0 ? SQLITE_OK : SQLITE_IOERR_TRUNCATE;
}

static int fsv_x_sync(sqlite3_file* f, int flags) {
  (void)flags;
  return fsv_flush(((fsv_file*)f)->id) == 0 ? SQLITE_OK : SQLITE_IOERR_FSYNC;
}

static int fsv_x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  const double s = fsv_size(((fsv_file*)f)->id);
  if (s < 0) return SQLITE_IOERR_FSTAT;
  *size = (sqlite3_int64)s;
  return SQLITE_OK;
}

static int fsv_x_lock(sqlite3_file* f, int level) { (void)f; (void)level; return SQLITE_OK; }
static int fsv_x_unlock(sqlite3_file* f, int level) { (void)f; (void)level; return SQLITE_OK; }
static int fsv_x_check_reserved(sqlite3_file* f, int* out) { (void)f; *out = 0; return SQLITE_OK; }
static int fsv_x_file_control(sqlite3_file* f, int op, void* arg) { (void)f; (void)op; (void)arg; return SQLITE_NOTFOUND; }
static int fsv_x_sector_size(sqlite3_file* f) { (void)f; return 4096; }
static int fsv_x_device_characteristics(sqlite3_file* f) { (void)f; return 0; }

static const sqlite3_io_methods fsv_io = {
  1,
  fsv_x_close, fsv_x_read, fsv_x_write, fsv_x_truncate, fsv_x_sync, fsv_x_file_size,
  fsv_x_lock, fsv_x_unlock, fsv_x_check_reserved, fsv_x_file_control, fsv_x_sector_size,
  fsv_x_device_characteristics,
  0, 0, 0, 0, 0, 0
};

static int fsv_x_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  (void)vfs;
  fsv_file* file = (fsv_file*)f;
  file->base.pMethods = 0;
  /* A temporary file has no name: it lives in memory under one made for it. */
  char temp[32];
  const char* path = name;
  if (!path) {
    static unsigned next = 0;
    sqlite3_snprintf((int)sizeof temp, temp, "temp-%u", ++next);
    path = temp;
  }
  const int id = fsv_open(path, (flags & SQLITE_OPEN_CREATE) != 0);
  if (id < 0) return SQLITE_CANTOPEN;
  file->id = id;
  file->base.pMethods = &fsv_io;
  if (out_flags) *out_flags = flags;
  return SQLITE_OK;
}

static int fsv_x_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  (void)vfs; (void)sync_dir;
  return fsv_remove(name) == 0 ? SQLITE_OK : SQLITE_IOERR_DELETE;
}

static int fsv_x_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  (void)vfs; (void)flags;
  *out = fsv_size_of(name) > 0;
  return SQLITE_OK;
}

static int fsv_x_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  (void)vfs;
  sqlite3_snprintf(n, out, "%s", name);
  return SQLITE_OK;
}

static int fsv_x_randomness(sqlite3_vfs* vfs, int n, char* out) {
  (void)vfs;
  fsv_random(n, out);
  return n;
}

static int fsv_x_sleep(sqlite3_vfs* vfs, int micros) { (void)vfs; return micros; }

static int fsv_x_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  (void)vfs;
  /* Julian day in milliseconds, as SQLite counts. */
  *out = (sqlite3_int64)fsv_now_ms() + (sqlite3_int64)210866760000000LL;
  return SQLITE_OK;
}

static int fsv_x_current_time(sqlite3_vfs* vfs, double* out) {
  sqlite3_int64 ms = 0;
  fsv_x_current_time_int64(vfs, &ms);
  *out = (double)ms / 86400000.0;
  return SQLITE_OK;
}

static int fsv_x_get_last_error(sqlite3_vfs* vfs, int n, char* out) {
  (void)vfs; (void)n; (void)out;
  return 0;
}

static sqlite3_vfs fsv_vfs = {
  2, sizeof(fsv_file), 1024, 0, "fieldsync-opfs", 0,
  fsv_x_open, fsv_x_delete, fsv_x_access, fsv_x_full_pathname,
  0, 0, 0, 0,
  fsv_x_randomness, fsv_x_sleep, fsv_x_current_time, fsv_x_get_last_error,
  fsv_x_current_time_int64,
  0, 0, 0
};

int sqlite3_os_init(void) { return sqlite3_vfs_register(&fsv_vfs, 1); }
int sqlite3_os_end(void) { return SQLITE_OK; }
