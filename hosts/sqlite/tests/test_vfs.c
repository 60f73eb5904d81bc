/* The Cellar VFS under a realistic SQLite workload: both page modes, rollback journal and WAL,
 * a writer killed mid-transaction, plaintext markers searched in the raw files, tampering,
 * re-keying while readable, wrong keys and refused temporary files. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cellar_vfs.h"

#define MARKER "CELLARMARK"
#define ROWS 3000

static char dir[256];

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static int exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) fprintf(stderr, "  sql failed (%d: %s): %.80s [%s]\n", rc, err ? err : "", sql, cellar_sqlite_last_error());
    sqlite3_free(err);
    return rc;
}
#define EXEC_OK(db, sql) CHECK(exec((db), (sql)) == SQLITE_OK)

static sqlite3 *open_db(const char *path, const char *vfs) {
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "  open %s on %s: %s [%s]\n", path, vfs ? vfs : "default", sqlite3_errstr(rc), cellar_sqlite_last_error());
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* Text of the first column of the first row, or "<error N>". */
static void query_text(sqlite3 *db, const char *sql, char *out, size_t cap) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) snprintf(out, cap, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "NULL");
    else snprintf(out, cap, "<error %d>", sqlite3_extended_errcode(db));
    sqlite3_finalize(st);
}

static int integrity_ok(sqlite3 *db) {
    char buf[256];
    query_text(db, "PRAGMA integrity_check", buf, sizeof buf);
    if (strcmp(buf, "ok") != 0) fprintf(stderr, "  integrity_check: %s\n", buf);
    return strcmp(buf, "ok") == 0;
}

/* FNV-1a over every row of t in id order; 0 when the query fails. */
static uint64_t table_hash(sqlite3 *db) {
    sqlite3_stmt *st = NULL;
    uint64_t h = 1469598103934665603ull;
    if (sqlite3_prepare_v2(db, "SELECT id, k, v, n FROM t ORDER BY id", -1, &st, NULL) != SQLITE_OK) return 0;
    int rc, rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows++;
        for (int c = 0; c < 4; c++) {
            const unsigned char *s = sqlite3_column_text(st, c);
            for (; s && *s; s++) h = (h ^ *s) * 1099511628211ull;
            h = (h ^ 0xff) * 1099511628211ull;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE && rows > 0 ? h : 0;
}

/* Bulk inserts, secondary indexes, updates, deletes, a rolled-back transaction. */
static int workload(sqlite3 *db) {
    int rc = exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v TEXT, n INTEGER);"
                      "CREATE INDEX t_k ON t(k); CREATE INDEX t_n ON t(n);");
    sqlite3_stmt *ins = NULL;
    if (rc == SQLITE_OK) rc = exec(db, "BEGIN");
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT INTO t(id, k, v, n) VALUES(?1, printf('key-%05d', ?1 * 7919 % 10007), "
                                    "printf('" MARKER "-%06d-', ?1) || substr(replace(hex(zeroblob(120)), '0', 'y'), 1, 60 + ?1 % 97), ?1 % 113)",
                                -1, &ins, NULL);
    for (int i = 1; rc == SQLITE_OK && i <= ROWS; i++) {
        sqlite3_bind_int(ins, 1, i);
        rc = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    if (rc == SQLITE_OK) rc = exec(db, "COMMIT");
    if (rc == SQLITE_OK) rc = exec(db, "UPDATE t SET n = n + 7, v = v || '-upd' WHERE id % 3 = 0");
    if (rc == SQLITE_OK) rc = exec(db, "DELETE FROM t WHERE id % 7 = 0");
    if (rc == SQLITE_OK) rc = exec(db, "BEGIN; UPDATE t SET k = k || 'z' WHERE id % 5 = 1; DELETE FROM t WHERE n > 100; COMMIT");
    if (rc == SQLITE_OK) rc = exec(db, "BEGIN; DELETE FROM t; ROLLBACK");
    if (rc == SQLITE_OK) rc = exec(db, "INSERT INTO t(k, v, n) SELECT k || '-copy', v || '-copy', n FROM t WHERE id % 11 = 0");
    return rc;
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    int found = b && memmem(b, got, needle, strlen(needle)) != NULL;
    free(b);
    return found;
}

static uint64_t file_hash(const char *path) {
    FILE *f = fopen(path, "rb");
    uint64_t h = 1469598103934665603ull;
    int c;
    while (f && (c = fgetc(f)) != EOF) h = (h ^ (uint64_t)c) * 1099511628211ull;
    if (f) fclose(f);
    return h;
}

static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    if (a) fclose(a);
    if (b) fclose(b);
}

static void flip_byte(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x20, f);
    fclose(f);
}

static uint64_t reference_hash(const char *extra_sql) {
    sqlite3 *ref = open_db(":memory:", NULL);
    CHECK(ref && workload(ref) == SQLITE_OK);
    if (extra_sql) EXEC_OK(ref, extra_sql);
    uint64_t h = table_hash(ref);
    sqlite3_close(ref);
    return h;
}

/* The workload in one page mode and journal mode; markers searched while journal/WAL exist. */
static void test_workload_jm(const char *vfs, const char *name, int wal, uint64_t expect, const char *journal_mode) {
    char db_path[512], side[600], sql[128];
    path_of(db_path, sizeof db_path, name);
    snprintf(side, sizeof side, "%s%s", db_path, wal ? "-wal" : "-journal");
    sqlite3 *db = open_db(db_path, vfs);
    CHECK(db != NULL);
    if (!db) return;
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", journal_mode);
    EXEC_OK(db, wal ? "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0" : sql);
    CHECK(workload(db) == SQLITE_OK);
    CHECK(integrity_ok(db));
    CHECK(table_hash(db) == expect);
    if (wal) {
        CHECK(file_size(side) > 100000); /* the committed transactions sit in the WAL */
        CHECK(!file_contains(side, MARKER));
    } else {
        /* Every page image goes to the journal; look while the transaction is open. */
        EXEC_OK(db, "BEGIN; UPDATE t SET v = v || '!'");
        CHECK(file_size(side) > 100000);
        CHECK(!file_contains(side, MARKER));
        EXEC_OK(db, "ROLLBACK");
    }
    CHECK(!file_contains(db_path, MARKER));
    CHECK(sqlite3_close(db) == SQLITE_OK);
    db = open_db(db_path, vfs);
    CHECK(db != NULL && integrity_ok(db) && table_hash(db) == expect);
    CHECK(!file_contains(db_path, MARKER));
    sqlite3_close(db);
}

static void test_workload(const char *vfs, const char *name, int wal, uint64_t expect) {
    test_workload_jm(vfs, name, wal, expect, "DELETE");
}

/* A writer killed (SIGKILL) in the middle of a transaction that has spilled pages: the reopened
 * database holds exactly the committed data. */
static void test_crash(const char *vfs, const char *name, int wal, uint64_t expect_committed) {
    char db_path[512], side[600];
    path_of(db_path, sizeof db_path, name);
    snprintf(side, sizeof side, "%s%s", db_path, wal ? "-wal" : "-journal");
    sqlite3 *db = open_db(db_path, vfs);
    CHECK(db != NULL);
    if (!db) return;
    EXEC_OK(db, wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
    CHECK(workload(db) == SQLITE_OK);
    sqlite3_close(db);
    uint64_t before = file_hash(db_path);
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        sqlite3 *c = open_db(db_path, vfs);
        int ok = c && exec(c, "PRAGMA cache_size=8") == SQLITE_OK &&
                 exec(c, "UPDATE t SET n = n + 1000 WHERE id < 50") == SQLITE_OK && /* committed */
                 exec(c, "BEGIN; UPDATE t SET v = 'LOST-' || v, n = -1; DELETE FROM t WHERE id % 2 = 0") == SQLITE_OK;
        char byte = ok ? 'y' : 'n';
        if (write(pipefd[1], &byte, 1) != 1) _exit(2);
        for (;;) pause(); /* killed here, the transaction open */
    }
    close(pipefd[1]);
    char byte = 0;
    CHECK(read(pipefd[0], &byte, 1) == 1 && byte == 'y');
    close(pipefd[0]);
    CHECK(file_size(side) > 0); /* hot journal, or WAL with uncommitted frames */
    if (!wal) CHECK(file_hash(db_path) != before); /* pages spilled: recovery must undo them */
    CHECK(!file_contains(side, MARKER));
    CHECK(!file_contains(db_path, MARKER));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    db = open_db(db_path, vfs);
    CHECK(db != NULL);
    if (!db) return;
    CHECK(integrity_ok(db));
    CHECK(table_hash(db) == expect_committed);
    sqlite3_close(db);
}

/* Page number of some leaf page of table t (dbstat), or 0. */
static long leaf_page_of_t(const char *path, const char *vfs) {
    sqlite3 *db = open_db(path, vfs);
    char buf[32] = "0";
    if (db) query_text(db, "SELECT pageno FROM dbstat WHERE name = 't' AND pagetype = 'leaf' LIMIT 1 OFFSET 10", buf, sizeof buf);
    sqlite3_close(db);
    return atol(buf);
}

/* A flipped byte in a GCM page is an I/O or corruption error, never data: in a leaf of t (read
 * by the query), in its trailer, and in page 1 (found wrong when the connection opens). */
static void test_tamper(const char *vfs, const char *name) {
    char db_path[512], copy[600], key_from[600], key_to[640];
    path_of(db_path, sizeof db_path, name);
    long leaf = leaf_page_of_t(db_path, vfs);
    CHECK(leaf > 1);
    long offsets[3] = {(leaf - 1) * 4096 + 1000, leaf * 4096 - 20, 200};
    for (int i = 0; i < 3; i++) {
        snprintf(copy, sizeof copy, "%s.tamper%d", db_path, i);
        snprintf(key_from, sizeof key_from, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, db_path);
        snprintf(key_to, sizeof key_to, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, copy);
        copy_file(db_path, copy);
        copy_file(key_from, key_to);
        flip_byte(copy, offsets[i]);
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(copy, &db, SQLITE_OPEN_READWRITE, vfs);
        if (i == 2) {
            /* page 1 is read at open (the connection's PRAGMA temp_store reads the schema) */
            CHECK(rc != SQLITE_OK && (rc & 0xff) == SQLITE_IOERR);
            sqlite3_close(db);
            continue;
        }
        CHECK(rc == SQLITE_OK);
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(db, "SELECT v FROM t", -1, &st, NULL);
        int rows = 0;
        if (rc == SQLITE_OK)
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) rows++;
        if (rc == SQLITE_ROW || rc == SQLITE_DONE) rc = SQLITE_OK;
        int primary = sqlite3_extended_errcode(db) & 0xff;
        CHECK(rc != SQLITE_OK && (primary == SQLITE_IOERR || primary == SQLITE_CORRUPT));
        CHECK(rows < ROWS); /* stopped at the page, nothing from it */
        sqlite3_finalize(st);
        char buf[256];
        query_text(db, "PRAGMA integrity_check", buf, sizeof buf);
        CHECK(strcmp(buf, "ok") != 0);
        sqlite3_close(db);
    }
}

static void scan(sqlite3 *db, cellar_sqlite_scan_result *r) {
    CHECK(cellar_sqlite_scan(db, r) == SQLITE_OK);
}

static uint64_t count_of(const cellar_sqlite_scan_result *r, uint32_t version) {
    for (uint32_t i = 0; i < r->nversions; i++)
        if (r->versions[i] == version) return r->counts[i];
    return 0;
}

/* Re-keying to new page key versions while another connection keeps reading. */
static void test_rekey(const char *vfs, const char *name, int wal) {
    char db_path[512];
    path_of(db_path, sizeof db_path, name);
    sqlite3 *w = open_db(db_path, vfs);
    CHECK(w != NULL);
    if (!w) return;
    EXEC_OK(w, wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
    CHECK(workload(w) == SQLITE_OK);
    sqlite3 *r = open_db(db_path, vfs);
    CHECK(r != NULL);
    if (!r) {
        sqlite3_close(w);
        return;
    }
    cellar_sqlite_scan_result s;
    EXEC_OK(w, "PRAGMA wal_checkpoint(TRUNCATE)");
    scan(w, &s);
    CHECK(s.mode == CELLAR_PAGE_GCM && s.page_size == 4096 && s.nversions == 1 && s.active_version == 1);
    CHECK(s.failed == 0 && s.counts[0] == s.pages - s.empty && s.pages > 20);
    uint32_t v2 = 0;
    CHECK(cellar_sqlite_add_page_key(w, &v2) == SQLITE_OK && v2 == 2);
    const char *change = "UPDATE t SET n = n + 1 WHERE id % 10 = 0";
    EXEC_OK(w, change);
    uint64_t expect = reference_hash(change);
    EXEC_OK(w, "PRAGMA wal_checkpoint(TRUNCATE)");
    scan(w, &s);
    CHECK(s.nversions == 2 && s.active_version == 2 && s.failed == 0);
    CHECK(count_of(&s, 1) > 0 && count_of(&s, 2) > 0); /* both versions on disk at once */
    CHECK(integrity_ok(r) && table_hash(r) == expect);  /* and all of it readable */
    uint32_t v3 = 0;
    CHECK(cellar_sqlite_rekey(w, &v3) == SQLITE_OK && v3 == 3);
    scan(w, &s);
    CHECK(s.nversions == 1 && s.versions[0] == 3 && s.failed == 0 && s.counts[0] == s.pages - s.empty);
    CHECK(integrity_ok(r) && table_hash(r) == expect);
    /* Writes after the re-key use version 3, from either connection. */
    EXEC_OK(r, "UPDATE t SET n = n - 1 WHERE id % 10 = 0");
    EXEC_OK(w, "PRAGMA wal_checkpoint(TRUNCATE)");
    scan(w, &s);
    CHECK(s.nversions == 1 && s.failed == 0 && s.counts[0] == s.pages - s.empty);
    sqlite3_close(r);
    sqlite3_close(w);
    sqlite3 *c = open_db(db_path, vfs);
    CHECK(c != NULL && integrity_ok(c) && table_hash(c) == reference_hash(NULL));
    uint32_t v = 0;
    if (c && !wal) CHECK(cellar_sqlite_add_page_key(c, &v) == SQLITE_OK && v == 4); /* numbers never reused */
    sqlite3_close(c);
}

/* Another tenant's keyring cannot open the database; another database's key file cannot read it. */
static void test_wrong_key(const char *vfs_other, const char *vfs, const char *name, const char *other_name) {
    char db_path[512], other[512], copy[600], key_to[640], key_from[600];
    path_of(db_path, sizeof db_path, name);
    path_of(other, sizeof other, other_name);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, vfs_other);
    CHECK(rc == SQLITE_CANTOPEN);
    CHECK(strstr(cellar_sqlite_last_error(), "unwrap") != NULL);
    sqlite3_close(db);
    snprintf(copy, sizeof copy, "%s.swapped", db_path);
    snprintf(key_to, sizeof key_to, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, copy);
    snprintf(key_from, sizeof key_from, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, other);
    copy_file(db_path, copy);
    copy_file(key_from, key_to);
    rc = sqlite3_open_v2(copy, &db, SQLITE_OPEN_READWRITE, vfs); /* key unwraps, pages do not */
    CHECK(rc != SQLITE_OK && (rc & 0xff) == SQLITE_IOERR);
    CHECK(strstr(cellar_sqlite_last_error(), "page 1") != NULL);
    sqlite3_close(db);
    /* A non-empty database without a key file is not opened (nor overwritten). */
    char bare[600];
    snprintf(bare, sizeof bare, "%s.nokey", db_path);
    copy_file(db_path, bare);
    rc = sqlite3_open_v2(bare, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs);
    CHECK(rc == SQLITE_CANTOPEN);
    sqlite3_close(db);
}

/* Temporary files would hold pages in clear: refused; the connection default keeps them in memory. */
static void test_temp_files(const char *vfs, const char *name) {
    char db_path[512];
    path_of(db_path, sizeof db_path, name);
    sqlite3 *db = open_db(db_path, vfs);
    CHECK(db != NULL);
    if (!db) return;
    char buf[32];
    query_text(db, "PRAGMA temp_store", buf, sizeof buf);
    CHECK(strcmp(buf, "2") == 0);
    EXEC_OK(db, "CREATE TEMP TABLE tt(a); INSERT INTO tt SELECT v FROM t; PRAGMA cache_size=10;"
                "CREATE INDEX t_v ON t(v); SELECT v FROM t ORDER BY v DESC LIMIT 1; DROP INDEX t_v");
    EXEC_OK(db, "DROP TABLE tt; PRAGMA temp_store=FILE");
    CHECK(sqlite3_exec(db, "CREATE TEMP TABLE tf(a); PRAGMA temp.cache_size=2; INSERT INTO tf SELECT v FROM t",
                       NULL, NULL, NULL) != SQLITE_OK);
    CHECK(strstr(cellar_sqlite_last_error(), "temporary") != NULL);
    sqlite3_close(db);
}

/* An XTS database has no room for a version: add_page_key refuses; scans decrypt every page. */
static void test_xts_specifics(const char *vfs, const char *name) {
    char db_path[512];
    path_of(db_path, sizeof db_path, name);
    sqlite3 *db = open_db(db_path, vfs);
    CHECK(db != NULL);
    if (!db) return;
    cellar_sqlite_scan_result s;
    scan(db, &s);
    CHECK(s.mode == CELLAR_PAGE_XTS && s.failed == 0 && s.pages > 20 && s.page_size == 4096);
    char buf[32];
    query_text(db, "PRAGMA page_size", buf, sizeof buf);
    CHECK(strcmp(buf, "4096") == 0);
    uint32_t v = 0;
    CHECK(cellar_sqlite_add_page_key(db, &v) == SQLITE_MISUSE);
    sqlite3_close(db);
}

/* Page sizes other than the default are found by trial decryption at open. */
static void test_page_sizes(const char *vfs, const char *prefix, uint64_t expect) {
    static const int sizes[] = {1024, 8192, 65536};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char name[64], db_path[512], sql[64];
        snprintf(name, sizeof name, "%s-ps%d.db", prefix, sizes[i]);
        path_of(db_path, sizeof db_path, name);
        sqlite3 *db = open_db(db_path, vfs);
        CHECK(db != NULL);
        if (!db) continue;
        snprintf(sql, sizeof sql, "PRAGMA page_size=%d", sizes[i]);
        EXEC_OK(db, sql);
        CHECK(workload(db) == SQLITE_OK);
        sqlite3_close(db);
        db = open_db(db_path, vfs);
        char buf[32];
        query_text(db, "PRAGMA page_size", buf, sizeof buf);
        CHECK(atoi(buf) == sizes[i]);
        CHECK(integrity_ok(db) && table_hash(db) == expect);
        CHECK(!file_contains(db_path, MARKER));
        sqlite3_close(db);
    }
}

/* VACUUM to another page size would have SQLite write the new pages in pieces of the old size,
 * which the VFS refuses: the VACUUM fails and the database is unchanged, also for a second
 * connection open throughout. */
static void test_page_size_change(const char *vfs, const char *name, uint64_t expect) {
    char db_path[512], buf[32];
    path_of(db_path, sizeof db_path, name);
    sqlite3 *w = open_db(db_path, vfs), *r = open_db(db_path, vfs);
    CHECK(w && r);
    if (!w || !r) return;
    CHECK(workload(w) == SQLITE_OK);
    CHECK(table_hash(r) == expect);
    static const char *sql[2] = {"PRAGMA page_size=16384; VACUUM", "PRAGMA page_size=1024; VACUUM"};
    for (int i = 0; i < 2; i++) {
        CHECK((sqlite3_exec(w, sql[i], NULL, NULL, NULL) & 0xff) == SQLITE_IOERR);
        CHECK(strstr(cellar_sqlite_last_error(), "changing the page size") != NULL);
        query_text(w, "PRAGMA page_size", buf, sizeof buf);
        CHECK(strcmp(buf, "4096") == 0);
        CHECK(integrity_ok(r) && table_hash(r) == expect);
        EXEC_OK(r, "UPDATE t SET n = n WHERE id < 100");
        CHECK(integrity_ok(w) && table_hash(w) == expect);
    }
    sqlite3_close(r);
    sqlite3_close(w);
    w = open_db(db_path, vfs);
    CHECK(w && integrity_ok(w) && table_hash(w) == expect);
    sqlite3_close(w);
}

/* Two processes writing at once, each transaction waiting for the other's lock. */
static void test_concurrent(const char *vfs, const char *name, int wal) {
    char db_path[512];
    path_of(db_path, sizeof db_path, name);
    sqlite3 *db = open_db(db_path, vfs);
    CHECK(db != NULL);
    if (!db) return;
    EXEC_OK(db, wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
    EXEC_OK(db, "CREATE TABLE c(id INTEGER PRIMARY KEY, who INTEGER, x TEXT); CREATE INDEX c_who ON c(who)");
    sqlite3_close(db);
    pid_t kids[2];
    fflush(NULL);
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            sqlite3 *c = open_db(db_path, vfs);
            int ok = c != NULL;
            char sql[200];
            for (int i = 0; ok && i < 150; i++) {
                snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; INSERT INTO c(who, x) VALUES(%d, printf('" MARKER "-%d-%d-%%.300c', 'q')); COMMIT", k, k, i);
                ok = sqlite3_exec(c, sql, NULL, NULL, NULL) == SQLITE_OK;
                if (ok && i % 10 == 0) ok = sqlite3_exec(c, "SELECT count(*) FROM c", NULL, NULL, NULL) == SQLITE_OK;
            }
            sqlite3_close(c);
            _exit(ok ? 0 : 1);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status = 0;
        waitpid(kids[k], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    db = open_db(db_path, vfs);
    char buf[64];
    query_text(db, "SELECT count(*) || '/' || count(DISTINCT x) || '/' || sum(who) FROM c", buf, sizeof buf);
    CHECK(strcmp(buf, "300/300/150") == 0);
    CHECK(integrity_ok(db));
    CHECK(!file_contains(db_path, MARKER));
    sqlite3_close(db);
}

/* A connection in another process, opened before a re-key, writes under the new version. */
static void test_cross_process_rekey(const char *vfs, const char *name) {
    char db_path[512];
    path_of(db_path, sizeof db_path, name);
    sqlite3 *db = open_db(db_path, vfs);
    CHECK(db != NULL);
    if (!db) return;
    CHECK(workload(db) == SQLITE_OK);
    sqlite3_close(db); /* the child must not inherit an open connection */
    int to_child[2], to_parent[2];
    CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        sqlite3 *c = open_db(db_path, vfs);
        char b = c && sqlite3_exec(c, "SELECT count(*) FROM t", NULL, NULL, NULL) == SQLITE_OK ? 'r' : 'n';
        if (write(to_parent[1], &b, 1) != 1 || read(to_child[0], &b, 1) != 1) _exit(2);
        int ok = sqlite3_exec(c, "UPDATE t SET n = n + 1", NULL, NULL, NULL) == SQLITE_OK;
        sqlite3_close(c);
        _exit(ok ? 0 : 1);
    }
    char b = 0;
    CHECK(read(to_parent[0], &b, 1) == 1 && b == 'r');
    db = open_db(db_path, vfs);
    CHECK(db != NULL);
    uint32_t v = 0;
    CHECK(cellar_sqlite_add_page_key(db, &v) == SQLITE_OK && v == 2);
    cellar_sqlite_scan_result s;
    scan(db, &s);
    CHECK(count_of(&s, 2) == 0 && count_of(&s, 1) > 0);
    CHECK(write(to_child[1], "g", 1) == 1);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    scan(db, &s);
    CHECK(s.failed == 0 && count_of(&s, 2) > 0); /* the child's pages are under version 2 */
    CHECK(integrity_ok(db));
    close(to_child[0]);
    close(to_child[1]);
    close(to_parent[0]);
    close(to_parent[1]);
    sqlite3_close(db);
}

/* Writers killed at arbitrary moments (inside journal writes, page spills, commits, WAL
 * checkpoints): after each kill the reopened database passes integrity_check and its invariant
 * holds (c.n counts the rows of r; every transaction changes both). */
static void test_kill_loop(const char *vfs, const char *name, int wal, int iterations) {
    char db_path[512];
    path_of(db_path, sizeof db_path, name);
    sqlite3 *db = open_db(db_path, vfs);
    CHECK(db != NULL);
    if (!db) return;
    EXEC_OK(db, wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
    EXEC_OK(db, "CREATE TABLE r(id INTEGER PRIMARY KEY, p TEXT); CREATE INDEX r_p ON r(p);"
                "CREATE TABLE c(n INTEGER); INSERT INTO c VALUES(0)");
    sqlite3_close(db);
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ (uint64_t)wal;
    int ok_all = 1, progressed = 0;
    for (int it = 0; it < iterations; it++) {
        int pipefd[2];
        if (pipe(pipefd) != 0) break;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            close(pipefd[0]);
            sqlite3 *c = open_db(db_path, vfs);
            if (!c || exec(c, "PRAGMA cache_size=5; PRAGMA wal_autocheckpoint=40") != SQLITE_OK) _exit(2);
            if (write(pipefd[1], "s", 1) != 1) _exit(2);
            for (int t = 0;; t++) {
                char sql[400];
                snprintf(sql, sizeof sql,
                         "BEGIN; WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 20) "
                         "INSERT INTO r(p) SELECT printf('" MARKER "-%%d-%%d-%%.200c', %d, i, 'z') FROM k; "
                         "DELETE FROM r WHERE id IN (SELECT id FROM r ORDER BY random() LIMIT %d); "
                         "UPDATE c SET n = (SELECT count(*) FROM r); COMMIT",
                         t, t % 7);
                if (exec(c, sql) != SQLITE_OK) _exit(3);
            }
        }
        close(pipefd[1]);
        char b;
        if (read(pipefd[0], &b, 1) != 1) ok_all = 0;
        close(pipefd[0]);
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        /* Under valgrind a transaction takes some 20 times longer: wait accordingly. */
        useconds_t scale = getenv("CELLAR_UNDER_VALGRIND") ? 20 : 1;
        usleep((useconds_t)(20000 + seed % 120000) * scale);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
            fprintf(stderr, "  kill loop: writer exited early (status %d)\n", status);
            ok_all = 0;
        }
        db = open_db(db_path, vfs);
        char buf[64];
        if (db) query_text(db, "SELECT (SELECT count(*) FROM r) = n, n FROM c", buf, sizeof buf);
        if (!db || !integrity_ok(db) || strcmp(buf, "1") != 0) {
            fprintf(stderr, "  kill loop %s iteration %d: invariant %s\n", name, it, db ? buf : "no db");
            ok_all = 0;
        }
        if (db) {
            char n[32];
            query_text(db, "SELECT n FROM c", n, sizeof n);
            progressed = atoi(n) > 0;
        }
        sqlite3_close(db);
    }
    CHECK(ok_all);
    CHECK(progressed); /* the writers committed something before being killed */
    CHECK(!file_contains(db_path, MARKER));
}

/* Threads of one process, each with its own connection (sharing the database's ciphers), write
 * at once while another thread adds page key versions. */
typedef struct thread_arg {
    const char *path, *vfs;
    int who, ok;
} thread_arg;

static void *writer_thread(void *p) {
    thread_arg *a = p;
    sqlite3 *c = open_db(a->path, a->vfs);
    a->ok = c != NULL;
    char sql[200];
    for (int i = 0; a->ok && i < 60; i++) {
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; INSERT INTO c(who, x) VALUES(%d, printf('" MARKER "-t%d-%d-%%.300c', 'q')); COMMIT", a->who, a->who, i);
        a->ok = sqlite3_exec(c, sql, NULL, NULL, NULL) == SQLITE_OK;
        if (a->ok) a->ok = sqlite3_exec(c, "SELECT sum(length(x)) FROM c", NULL, NULL, NULL) == SQLITE_OK;
    }
    sqlite3_close(c);
    return NULL;
}

static void *rekey_thread(void *p) {
    thread_arg *a = p;
    sqlite3 *c = open_db(a->path, a->vfs);
    a->ok = c != NULL;
    for (int i = 0; a->ok && i < 5; i++) {
        uint32_t v = 0;
        a->ok = cellar_sqlite_add_page_key(c, &v) == SQLITE_OK && v == (uint32_t)i + 2;
        usleep(2000);
    }
    sqlite3_close(c);
    return NULL;
}

static void test_threads(const char *vfs, const char *name) {
    char db_path[512];
    path_of(db_path, sizeof db_path, name);
    sqlite3 *db = open_db(db_path, vfs);
    CHECK(db != NULL);
    if (!db) return;
    EXEC_OK(db, "PRAGMA journal_mode=WAL; CREATE TABLE c(id INTEGER PRIMARY KEY, who INTEGER, x TEXT)");
    sqlite3_close(db);
    pthread_t th[5];
    thread_arg args[5];
    for (int i = 0; i < 5; i++) {
        args[i] = (thread_arg){db_path, vfs, i, 0};
        CHECK(pthread_create(&th[i], NULL, i < 4 ? writer_thread : rekey_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].ok);
    }
    db = open_db(db_path, vfs);
    char buf[64];
    query_text(db, "SELECT count(*) || '/' || count(DISTINCT x) FROM c", buf, sizeof buf);
    CHECK(strcmp(buf, "240/240") == 0);
    CHECK(integrity_ok(db));
    EXEC_OK(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    cellar_sqlite_scan_result s;
    scan(db, &s);
    CHECK(s.failed == 0 && s.nversions == 6 && s.active_version == 6);
    sqlite3_close(db);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/cellar-sqlite-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    CHECK_OK(cellar_init(CELLAR_INIT_REQUIRE_FIPS));
    cellar_keyring *kr = NULL, *other = NULL;
    CHECK_OK(cellar_keyring_new(NULL, &kr));
    CHECK_OK(cellar_keyring_new(NULL, &other));
    CHECK(cellar_sqlite_register("cellar-gcm", kr, CELLAR_PAGE_GCM, 0) == SQLITE_OK);
    CHECK(cellar_sqlite_register("cellar-xts", kr, CELLAR_PAGE_XTS, 0) == SQLITE_OK);
    CHECK(cellar_sqlite_register("cellar-other", other, CELLAR_PAGE_GCM, 0) == SQLITE_OK);

    uint64_t expect = reference_hash(NULL);
    CHECK(expect != 0);
    /* The marker search can fail: plain SQLite's files do contain the markers. */
    {
        char p[512];
        path_of(p, sizeof p, "plain.db");
        sqlite3 *db = open_db(p, NULL);
        CHECK(db && workload(db) == SQLITE_OK && table_hash(db) == expect);
        sqlite3_close(db);
        CHECK(file_contains(p, MARKER));
    }

    test_workload("cellar-gcm", "gcm-journal.db", 0, expect);
    test_workload("cellar-gcm", "gcm-wal.db", 1, expect);
    test_workload("cellar-xts", "xts-journal.db", 0, expect);
    test_workload("cellar-xts", "xts-wal.db", 1, expect);
    test_workload_jm("cellar-gcm", "gcm-persist.db", 0, expect, "PERSIST");
    test_workload_jm("cellar-gcm", "gcm-truncate.db", 0, expect, "TRUNCATE");
    test_workload_jm("cellar-xts", "xts-persist.db", 0, expect, "PERSIST");

    uint64_t committed = reference_hash("UPDATE t SET n = n + 1000 WHERE id < 50");
    test_crash("cellar-gcm", "gcm-crash-journal.db", 0, committed);
    test_crash("cellar-gcm", "gcm-crash-wal.db", 1, committed);
    test_crash("cellar-xts", "xts-crash-journal.db", 0, committed);
    test_crash("cellar-xts", "xts-crash-wal.db", 1, committed);

    test_tamper("cellar-gcm", "gcm-journal.db");
    test_rekey("cellar-gcm", "gcm-rekey-journal.db", 0);
    test_rekey("cellar-gcm", "gcm-rekey-wal.db", 1);
    test_wrong_key("cellar-other", "cellar-gcm", "gcm-journal.db", "gcm-wal.db");
    test_wrong_key("cellar-other", "cellar-xts", "xts-journal.db", "xts-wal.db");
    test_temp_files("cellar-gcm", "gcm-journal.db");
    test_xts_specifics("cellar-xts", "xts-journal.db");
    test_page_sizes("cellar-gcm", "gcm", expect);
    test_page_sizes("cellar-xts", "xts", expect);
    test_page_size_change("cellar-gcm", "gcm-resize.db", expect);
    test_page_size_change("cellar-xts", "xts-resize.db", expect);
    test_concurrent("cellar-gcm", "gcm-concurrent-journal.db", 0);
    test_concurrent("cellar-gcm", "gcm-concurrent-wal.db", 1);
    test_concurrent("cellar-xts", "xts-concurrent-wal.db", 1);
    test_cross_process_rekey("cellar-gcm", "gcm-cross-rekey.db");
    test_threads("cellar-gcm", "gcm-threads.db");
    test_kill_loop("cellar-gcm", "gcm-kill-journal.db", 0, 8);
    test_kill_loop("cellar-gcm", "gcm-kill-wal.db", 1, 8);
    test_kill_loop("cellar-xts", "xts-kill-journal.db", 0, 6);
    test_kill_loop("cellar-xts", "xts-kill-wal.db", 1, 6);

    cellar_keyring_free(other);
    /* kr stays: registered VFSes reference it for the life of the process. */
    if (check_failed == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    } else {
        fprintf(stderr, "files kept in %s\n", dir);
    }
    CHECK_SUMMARY();
}
