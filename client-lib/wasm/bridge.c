/* The browser build's bridge between the C ABI (fieldsync.h) and JavaScript
 * (replica-worker.js): the transport and the progress callbacks, as synchronous calls into
 * the worker's JavaScript (EM_JS). A Web Worker may block, so the transport is a synchronous
 * XMLHttpRequest and the replica runs exactly as it does natively.
 *
 * One rule differs from the native library: a sync does not wait and retry when the network
 * is down. The app starts another sync when the browser says the network is back (and on a
 * timer), so a worker never spins through the library's backoff; the sync that met the
 * failure ends with FS_ERR_NETWORK instead of waiting. */
#include <emscripten.h>
#include <fieldsync/fieldsync.h>
#include <string.h>

EM_JS(int, fsw_js_send, (const char* method, const char* url, const char* headers, const char* body, int body_len,
                         double timeout_ms, fs_http_response* response), {
  return Module.fieldsyncSend(UTF8ToString(method), UTF8ToString(url), UTF8ToString(headers),
                              HEAPU8.slice(body, body + body_len), timeout_ms, response);
});

EM_JS(int, fsw_js_progress, (int phase, double pushed, double to_push, double pulled, double sent, double received), {
  return Module.fieldsyncProgress(phase, pushed, to_push, pulled, sent, received);
});

static int fsw_send(void* user, const char* method, const char* url, const char* headers, const char* body,
                    size_t body_len, int64_t timeout_ms, fs_http_response* response) {
  (void)user;
  return fsw_js_send(method, url, headers, body, (int)body_len, (double)timeout_ms, response);
}

static int fsw_gave_up_at_retry; /* the last sync stopped at a retry wait (see above) */

static int fsw_progress(void* user, int phase, int64_t pushed, int64_t to_push, int64_t pulled, int64_t sent,
                        int64_t received) {
  (void)user;
  if (phase == FS_PHASE_RETRY_WAIT) {
    fsw_gave_up_at_retry = 1;
    return 0;
  }
  return fsw_js_progress(phase, (double)pushed, (double)to_push, (double)pulled, (double)sent, (double)received);
}

/* Opens the replica at `path` (a name in the worker's files table) with the JavaScript
 * transport. NULL on failure (see `error`). */
EMSCRIPTEN_KEEPALIVE fs_replica* fsw_open(const char* path, fs_error* error) {
  fs_replica* r = fs_replica_open(path, error);
  if (!r) return NULL;
  if (fs_replica_set_transport(r, fsw_send, NULL, error) != FS_OK) {
    fs_replica_close(r);
    return NULL;
  }
  return r;
}

/* fs_replica_sync with the progress callback above; a sync given up at a retry wait ends
 * with FS_ERR_NETWORK and the error the library last met. */
EMSCRIPTEN_KEEPALIVE int fsw_sync(fs_replica* r, fs_sync_report* report, fs_error* error) {
  fsw_gave_up_at_retry = 0;
  const int rc = fs_replica_sync(r, fsw_progress, NULL, report, error);
  if (rc == FS_ERR_CANCELLED && fsw_gave_up_at_retry) {
    if (error) {
      error->code = FS_ERR_NETWORK;
      strncpy(error->message, "the server could not be reached", FS_ERROR_MESSAGE_MAX - 1);
      error->message[FS_ERROR_MESSAGE_MAX - 1] = '\0';
    }
    return FS_ERR_NETWORK;
  }
  return rc;
}

/* Sizes of the C structs JavaScript allocates (their layout is fieldsync.h's). */
EMSCRIPTEN_KEEPALIVE int fsw_sizeof_error(void) { return (int)sizeof(fs_error); }
EMSCRIPTEN_KEEPALIVE int fsw_sizeof_report(void) { return (int)sizeof(fs_sync_report); }
