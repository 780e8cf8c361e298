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
