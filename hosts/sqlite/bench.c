/* One SQLite workload, timed: bulk inserts in transactions, an index, point lookups, updates,
 * deletes and a full scan, on a database several times larger than SQLite's page cache so that
 * pages keep crossing the VFS. A benchmark, not a test (bench.sh runs the rounds).
 *
 *   bench plain|xts|gcm DIR        linked with libsqlite3 and the Cellar VFS
 *   bench sqlcipher|sqlcipher-nokey DIR   built with -DBENCH_SQLCIPHER, linked with libsqlcipher
 * Prints "<mode> <seconds>". */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef BENCH_SQLCIPHER
#include <sqlite3.h> /* SQLCipher's, from /usr/include/sqlcipher */
#else
#include "cellar_vfs.h"
#endif

#define ROWS 100000
#define BATCH 1000
#define LOOKUPS 20000

static void must(sqlite3 *db, int rc, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "bench: %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static void exec(sqlite3 *db, const char *sql) { must(db, sqlite3_exec(db, sql, NULL, NULL, NULL), sql); }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench MODE DIR\n");
        return 2;
    }
    const char *mode = argv[1], *vfs = NULL;
    char path[4096], side[4200];
    snprintf(path, sizeof path, "%s/bench-%s.db", argv[2], mode);
    static const char *suffixes[] = {"", "-wal", "-shm", "-journal", "-cellarkey"};
    for (int i = 0; i < 5; i++) {
        snprintf(side, sizeof side, "%s%s", path, suffixes[i]);
        unlink(side);
    }
#ifndef BENCH_SQLCIPHER
    if (strcmp(mode, "plain") != 0) {
        cellar_keyring *kr = NULL;
        if (cellar_keyring_new(NULL, &kr) != CELLAR_OK) return 1;
        if (strcmp(mode, "xts") == 0) vfs = "cellar-xts", cellar_sqlite_register(vfs, kr, CELLAR_PAGE_XTS, 0);
        else if (strcmp(mode, "gcm") == 0) vfs = "cellar-gcm", cellar_sqlite_register(vfs, kr, CELLAR_PAGE_GCM, 0);
        else return 2;
    }
#endif
    double t0 = now();
    sqlite3 *db = NULL;
    must(db, sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), "open");
#ifdef BENCH_SQLCIPHER
    if (strcmp(mode, "sqlcipher") == 0) {
        /* A raw 256-bit key (no PBKDF2 at open) and the same 4096-byte pages as the others. */
        exec(db, "PRAGMA key = \"x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'\"");
        exec(db, "PRAGMA cipher_page_size = 4096");
    } else if (strcmp(mode, "sqlcipher-nokey") != 0) {
        return 2;
    }
#endif
    exec(db, "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -2000");
    exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v TEXT, n INTEGER); CREATE INDEX t_k ON t(k)");
    sqlite3_stmt *ins = NULL, *get = NULL;
    must(db, sqlite3_prepare_v2(db, "INSERT INTO t(id, k, v, n) VALUES(?1, ?2, ?3, ?4)", -1, &ins, NULL), "prepare");
    char k[64], v[256];
    for (int i = 1; i <= ROWS; i++) {
        if (i % BATCH == 1) exec(db, "BEGIN");
        snprintf(k, sizeof k, "key-%016llx", (unsigned long long)(next_rand() % 1000000007ull));
        int len = snprintf(v, sizeof v, "value %d ", i);
        while (len < 80 + (int)(next_rand() % 80)) v[len++] = (char)('a' + next_rand() % 26);
        sqlite3_bind_int(ins, 1, i);
        sqlite3_bind_text(ins, 2, k, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, v, len, SQLITE_STATIC);
        sqlite3_bind_int(ins, 4, i % 1000);
        must(db, sqlite3_step(ins), "insert");
        sqlite3_reset(ins);
        if (i % BATCH == 0) exec(db, "COMMIT");
    }
    sqlite3_finalize(ins);
    must(db, sqlite3_prepare_v2(db, "SELECT v FROM t WHERE id = ?1", -1, &get, NULL), "prepare");
    long found = 0;
    for (int i = 0; i < LOOKUPS; i++) {
        sqlite3_bind_int(get, 1, (int)(next_rand() % ROWS) + 1);
        if (sqlite3_step(get) == SQLITE_ROW) found++;
        sqlite3_reset(get);
    }
    sqlite3_finalize(get);
    exec(db, "UPDATE t SET n = n + 1, v = v || 'u' WHERE id % 10 = 0");
    exec(db, "DELETE FROM t WHERE id % 20 = 1");
    exec(db, "SELECT count(*), sum(length(v)) FROM t WHERE k > 'key-0'");
    exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
    double t = now() - t0;
    if (found != LOOKUPS) {
        fprintf(stderr, "bench: %ld of %d lookups found\n", found, LOOKUPS);
        return 1;
    }
    printf("%s %.4f\n", mode, t);
    return 0;
}
