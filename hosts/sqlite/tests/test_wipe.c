/* Decrypted pages never reach freed memory unwiped (security review finding 8, VFS part). The VFS
 * source is compiled into this test with `free` and `explicit_bzero` routed through checks: every
 * block the VFS frees is scanned (its whole usable size) for a marker that only plaintext pages
 * hold, and every wipe records whether the buffer it zeroes held the marker. The workload runs
 * each path that decrypts into a VFS buffer: page-size detection on open, partial reads of page 1,
 * the page-1 peek that pins a journal (a write transaction in DELETE mode), the page scan, and a
 * WAL database. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void cv_test_free(void *p);
static void cv_test_bzero(void *p, size_t n);
#define free cv_test_free
#define explicit_bzero cv_test_bzero
#include "cellar_vfs.c"
#undef free
#undef explicit_bzero

#include "check.h"

/* In the schema (page 1) and in every row (table pages): plaintext only. */
#define MARK "wipemark_c3ll4r"

static size_t frees, leaked, wipes_of_plaintext;

static int holds_mark(const void *p, size_t n) { return n >= sizeof MARK - 1 && memmem(p, n, MARK, sizeof MARK - 1) != NULL; }

static void cv_test_free(void *p) {
    if (p) {
        size_t n = malloc_usable_size(p);
        frees++;
        if (holds_mark(p, n)) {
            leaked++;
            fprintf(stderr, "  a block of %zu bytes freed by the VFS still holds plaintext\n", n);
        }
    }
    free(p);
}

static void cv_test_bzero(void *p, size_t n) {
    if (holds_mark(p, n)) wipes_of_plaintext++;
    explicit_bzero(p, n);
}

static int run(sqlite3 *db, const char *sql) {
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) fprintf(stderr, "  sql failed (%d: %s): %.80s\n", rc, err ? err : "", sql);
    sqlite3_free(err);
    return rc;
}

static void workload(const char *path, const char *mode) {
    sqlite3 *db = NULL;
    char sql[300];
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "cellar-gcm") == SQLITE_OK);
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
    CHECK(run(db, sql) == SQLITE_OK);
    CHECK(run(db, "CREATE TABLE " MARK "(id INTEGER PRIMARY KEY, v TEXT);"
                  "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300) "
                  "INSERT INTO " MARK " SELECT i, printf('" MARK "-%05d-%.150c', i, 'x') FROM c") == SQLITE_OK);
    sqlite3_close(db);
    /* A fresh connection: page-size detection and partial reads of page 1; then writes (a journal
     * started, page 1 peeked), a read of every row, the scan. */
    db = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, "cellar-gcm") == SQLITE_OK);
    CHECK(run(db, "PRAGMA cache_size=4") == SQLITE_OK);
    CHECK(run(db, "UPDATE " MARK " SET v = v || '' WHERE id % 7 = 0") == SQLITE_OK);
    CHECK(run(db, "SELECT count(*) FROM " MARK " WHERE v LIKE '" MARK "%'") == SQLITE_OK);
    cellar_sqlite_scan_result s;
    CHECK(cellar_sqlite_scan(db, &s) == SQLITE_OK && s.failed == 0 && s.pages > 5);
    sqlite3_close(db);
}

int main(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s/cellar-wipe-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    cellar_keyring *kr = NULL;
    CHECK_OK(cellar_init(CELLAR_INIT_REQUIRE_FIPS));
    CHECK_OK(cellar_keyring_new(NULL, &kr));
    CHECK(cellar_sqlite_register("cellar-gcm", kr, CELLAR_PAGE_GCM, 0) == SQLITE_OK);
    const char *modes[] = {"delete", "wal"};
    for (int i = 0; i < 2; i++) {
        char path[300];
        snprintf(path, sizeof path, "%s/w-%s.db", dir, modes[i]);
        workload(path, modes[i]);
    }
    fprintf(stderr, "  %zu blocks freed by the VFS checked, %zu wipes of plaintext buffers\n", frees, wipes_of_plaintext);
    CHECK(leaked == 0);
    CHECK(frees > 0);
    CHECK(wipes_of_plaintext >= 4); /* detection, partial reads, journal peek, scan at least */
    cellar_keyring_free(kr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    CHECK_SUMMARY();
}
