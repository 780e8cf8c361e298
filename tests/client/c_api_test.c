/* A C program that uses only fieldsync.h and libfieldsync.so: it starts the test server
 * (argv[1]), creates records with Vietnamese text, syncs them with the built-in transport,
 * reads them back in a second replica, and checks errors and states. Exit 0 on success. */

#include <fieldsync/fieldsync.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                          \
        }                                                                        \
    } while (0)

static int on_upload(void* user, const char* sha256, int64_t sent, int64_t size, int64_t bytes_sent) {
    if (strlen(sha256) != 64 || sent <= 0 || sent > size || bytes_sent <= 0) return 0;
    ++*(int*)user;
    return 1;
}

/* The 64 hex digits after "sha256":" in a JSON text, into out[65]. */
static int sha_of(const char* json, char* out) {
    const char* p = json ? strstr(json, "\"sha256\":\"") : NULL;
    if (!p || strlen(p) < 10 + 64) return 0;
    memcpy(out, p + 10, 64);
    out[64] = 0;
    return 1;
}

/* A whole file's bytes (free with free), NULL when it cannot be read. */
static char* read_all(const char* path, size_t* len) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    char* buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    return buf;
}

static int on_progress(void* user, int phase, int64_t pushed, int64_t to_push, int64_t pulled, int64_t sent,
                       int64_t received) {
    (void)phase; (void)pushed; (void)to_push; (void)pulled; (void)sent; (void)received;
    ++*(int*)user;
    return 1;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: c_api_test TEST_SERVER\n");
        return 2;
    }
    char dir[] = "/tmp/fieldsync-c-api-XXXXXX";
    if (!mkdtemp(dir)) return 2;
    char info[256], cmd[1024], path_a[300], path_b[300];
    snprintf(info, sizeof info, "%s/server.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s' > /dev/null", argv[1], info);
    FILE* server = popen(cmd, "w"); /* the server runs until we close its stdin */
    if (!server) return 2;

    char url[200] = "", token[200] = "";
    for (int i = 0; i < 300 && !url[0]; ++i) {
        FILE* f = fopen(info, "r");
        if (f) {
            if (fscanf(f, "%199s %199s", url, token) != 2) url[0] = 0;
            fclose(f);
        }
        if (!url[0]) usleep(100000);
    }
    CHECK(url[0] != 0);

    fs_error err;
    snprintf(path_a, sizeof path_a, "%s/a.db", dir);
    snprintf(path_b, sizeof path_b, "%s/b.db", dir);
    fs_replica* a = fs_replica_open(path_a, &err);
    CHECK(a != NULL && err.code == FS_OK);
    CHECK(fs_replica_configure(a, url, token, &err) == FS_OK);

    /* Create: library-made id and an app-given one. */
    char* id = fs_replica_put(a, "members", NULL, "xa-hung-le",
                              "{\"name\":\"Trần Thị Hồng Nhung\",\"cell\":\"Chi bộ ấp 4\",\"role\":\"bí thư\"}", &err);
    CHECK(id != NULL && strlen(id) == 36);
    char* id2 = fs_replica_put(a, "registrations", "dk-2014-001", "xa-hung-le",
                               "{\"member\":\"m1\",\"year\":2014,\"commitments\":[\"Rời khỏi phòng thì tắt quạt máy, tắt đèn\"]}",
                               &err);
    CHECK(id2 != NULL && strcmp(id2, "dk-2014-001") == 0);
    CHECK(fs_replica_pending_count(a, NULL) == 2);
    CHECK(fs_replica_record_state(a, "members", id, NULL) == FS_STATE_PENDING);

    /* Errors come back as codes and messages, never as crashes. */
    CHECK(fs_replica_put(a, "members", NULL, "u", "{not json", &err) == NULL);
    CHECK(err.code == FS_ERR_INVALID_JSON && strlen(err.message) > 0);
    CHECK(fs_replica_last_error_code(a) == FS_ERR_INVALID_JSON);
    CHECK(fs_replica_put(a, "members", NULL, "u", "{\"cell\":\"x\"}", &err) == NULL);
    CHECK(err.code == FS_ERR_SCHEMA_VIOLATION);
    CHECK(fs_replica_remove(a, "members", "khong-co", &err) == FS_ERR_NOT_FOUND);
    CHECK(fs_replica_put(NULL, "members", NULL, "u", "{}", &err) == NULL && err.code == FS_ERR_INVALID_ARGUMENT);

    fs_sync_report report;
    int calls = 0;
    CHECK(fs_replica_sync(a, on_progress, &calls, &report, &err) == FS_OK);
    if (err.code != FS_OK) fprintf(stderr, "sync: %s\n", err.message);
    CHECK(report.pushed == 2 && report.applied == 2);
    CHECK(report.bytes_sent > 0 && report.bytes_received > 0);
    CHECK(calls > 0);
    CHECK(fs_replica_pending_count(a, NULL) == 0);
    CHECK(fs_replica_record_state(a, "members", id, NULL) == FS_STATE_SYNCED);
    CHECK(fs_replica_patch(a, "members", id, "{\"notes\":\"Nói đi đôi với làm\"}", &err) == FS_OK);
    CHECK(fs_replica_sync(a, NULL, NULL, NULL, &err) == FS_OK);

    /* A second replica reads what the first wrote. */
    fs_replica* b = fs_replica_open(path_b, &err);
    CHECK(b != NULL);
    CHECK(fs_replica_configure(b, url, token, &err) == FS_OK);
    CHECK(fs_replica_sync(b, NULL, NULL, &report, &err) == FS_OK);
    CHECK(report.pulled == 2);
    char* got = fs_replica_get(b, "members", id, &err);
    CHECK(got != NULL);
    if (got) {
        CHECK(strstr(got, "Trần Thị Hồng Nhung") != NULL);
        CHECK(strstr(got, "Nói đi đôi với làm") != NULL);
        CHECK(strstr(got, "\"version\":2") != NULL);
        CHECK(strstr(got, "\"state\":\"synced\"") != NULL);
    }
    /* A third replica pulls the same records in CBOR without gzip: the same content, fewer
     * body bytes than b's JSON (bytes_received counts bodies as decoded). */
    int64_t json_received = report.bytes_received;
    char path_c[300];
    snprintf(path_c, sizeof path_c, "%s/c.db", dir);
    fs_replica* c = fs_replica_open(path_c, &err);
    CHECK(c != NULL);
    CHECK(fs_replica_configure(c, url, token, &err) == FS_OK);
    CHECK(fs_replica_set_encoding(c, 7, 1, &err) == FS_ERR_INVALID_ARGUMENT);
    CHECK(fs_replica_set_encoding(c, FS_BODY_CBOR, 0, &err) == FS_OK);
    CHECK(fs_replica_sync(c, NULL, NULL, &report, &err) == FS_OK);
    if (err.code != FS_OK) fprintf(stderr, "CBOR sync: %s\n", err.message);
    CHECK(report.pulled == 2);
    CHECK(report.bytes_received > 0 && report.bytes_received < json_received);
    char* got_c = fs_replica_get(c, "members", id, &err);
    CHECK(got_c != NULL && strstr(got_c, "Nói đi đôi với làm") != NULL);
    fs_free(got_c);
    fs_replica_close(c);

    char* list = fs_replica_list(b, "registrations", "xa-hung-le", "year", "2014", &err);
    CHECK(list != NULL && strstr(list, "tắt quạt máy") != NULL);
    CHECK(fs_replica_get(b, "members", "khong-co", &err) == NULL && err.code == FS_OK);

    /* Attachments: a photo from a file (its name in NFD, as a Mac writes it) and a PDF from
     * memory; the record edit syncs first, the files after with fs_replica_upload, and the
     * second replica downloads the photo by its hash. */
    char photo_path[300];
    snprintf(photo_path, sizeof photo_path, "%s/photo.jpg", dir);
    static char photo[300 * 1024];
    photo[0] = (char)0xFF, photo[1] = (char)0xD8, photo[2] = (char)0xFF, photo[3] = (char)0xE0;
    for (size_t i = 4; i < sizeof photo; ++i) photo[i] = (char)(i * 2654435761u >> 13);
    FILE* pf = fopen(photo_path, "wb");
    CHECK(pf != NULL && fwrite(photo, 1, sizeof photo, pf) == sizeof photo);
    if (pf) fclose(pf);
    const char* nfd_name = "Bie\xCC\x82n ba\xCC\x89n kie\xCC\x89m tra.jpg"; /* Biên bản kiểm tra.jpg, decomposed */
    char* ref = fs_replica_attach(a, "registrations", "dk-2014-001", "scans", photo_path, nfd_name, &err);
    CHECK(ref != NULL && err.code == FS_OK);
    if (!ref) fprintf(stderr, "attach: %s\n", err.message);
    CHECK(ref != NULL && strstr(ref, "\"content_type\":\"image/jpeg\"") != NULL && strstr(ref, nfd_name) != NULL);
    char photo_sha[65] = "";
    CHECK(sha_of(ref, photo_sha));
    const char pdf[] = "%PDF-1.4\n% Biên bản họp chi bộ\n%%EOF\n";
    char* pdf_ref = fs_replica_attach_bytes(a, "registrations", "dk-2014-001", "scans", pdf, sizeof pdf - 1,
                                            "Biên bản họp.pdf", &err);
    CHECK(pdf_ref != NULL && strstr(pdf_ref, "application/pdf") != NULL);
    CHECK(fs_replica_attach_bytes(a, "registrations", "dk-2014-001", "scans", "plain text", 10, "x.txt", &err) == NULL);
    CHECK(err.code == FS_ERR_INVALID_ARGUMENT);
    CHECK(fs_replica_attach(a, "registrations", "khong-co", "scans", photo_path, NULL, &err) == NULL);
    CHECK(err.code == FS_ERR_NOT_FOUND);
    CHECK(fs_replica_attach(a, "registrations", "dk-2014-001", NULL, photo_path, NULL, &err) == NULL);
    CHECK(err.code == FS_ERR_INVALID_ARGUMENT);
    char* queue = fs_replica_upload_queue(a, &err);
    CHECK(queue != NULL && strstr(queue, "\"state\":\"waiting\"") != NULL && strstr(queue, "\"sent\":0") != NULL);
    fs_free(queue);
    CHECK(fs_replica_sync(a, NULL, NULL, &report, &err) == FS_OK);
    CHECK(report.pushed == 1);
    fs_upload_report up;
    int chunks = 0;
    CHECK(fs_replica_upload(a, 0, on_upload, &chunks, &up, &err) == FS_OK);
    if (err.code != FS_OK) fprintf(stderr, "upload: %s\n", err.message);
    CHECK(up.completed == 2 && up.failed == 0 && up.waiting == 0);
    CHECK(up.bytes_sent == (int64_t)sizeof photo + (int64_t)sizeof pdf - 1);
    CHECK(chunks == 3); /* 256 KiB + 44 KiB of the photo, the PDF in one */
    queue = fs_replica_upload_queue(a, &err);
    CHECK(queue != NULL && strstr(queue, "\"state\":\"waiting\"") == NULL && strstr(queue, "\"state\":\"sent\"") != NULL);
    fs_free(queue);
    CHECK(fs_replica_sync(b, NULL, NULL, NULL, &err) == FS_OK);
    char* with_scans = fs_replica_get(b, "registrations", "dk-2014-001", &err);
    CHECK(with_scans != NULL && strstr(with_scans, photo_sha) != NULL);
    char* blob_path = fs_replica_download(b, photo_sha, &err);
    CHECK(blob_path != NULL);
    if (!blob_path) fprintf(stderr, "download: %s\n", err.message);
    size_t got_len = 0;
    char* got_bytes = blob_path ? read_all(blob_path, &got_len) : NULL;
    CHECK(got_bytes != NULL && got_len == sizeof photo && memcmp(got_bytes, photo, sizeof photo) == 0);
    free(got_bytes);
    CHECK(fs_replica_download(b, "0000000000000000000000000000000000000000000000000000000000000000", &err) == NULL);
    CHECK(err.code == FS_ERR_NOT_FOUND);
    CHECK(fs_replica_download(b, "not-a-hash", &err) == NULL && err.code == FS_ERR_INVALID_ARGUMENT);
    fs_free(ref);
    fs_free(pdf_ref);
    fs_free(with_scans);
    fs_free(blob_path);

    CHECK(fs_replica_remove(b, "registrations", "dk-2014-001", &err) == FS_OK);
    CHECK(fs_replica_sync(b, NULL, NULL, NULL, &err) == FS_OK);
    CHECK(fs_replica_sync(a, NULL, NULL, &report, &err) == FS_OK);
    char* gone = fs_replica_get(a, "registrations", "dk-2014-001", &err);
    CHECK(gone != NULL && strstr(gone, "\"deleted\":true") != NULL);

    fs_free(id);
    fs_free(id2);
    fs_free(got);
    fs_free(list);
    fs_free(gone);
    fs_replica_close(a);
    fs_replica_close(b);
    pclose(server);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    if (failures) fprintf(stderr, "%d checks failed\n", failures);
    else printf("C ABI test passed (fieldsync %s)\n", fs_version());
    return failures ? 1 : 0;
}
