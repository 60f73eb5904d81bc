/* Forged logs and key files against the Cellar VFS (GCM): hot rollback journals and WAL frames
 * built with SQLite's own checksums computed correctly (the journal's nonce-seeded sampled sum,
 * the WAL's cumulative Fibonacci-weighted sum in the byte order its magic names, chained from the
 * header through the salts), carrying all-zero, random, moved-to-another-page and older-log page
 * images. The checksum code is first checked against genuine logs (byte for byte for the WAL), so
 * a forged record or frame is one a VFS without authentication would hand to SQLite. Every
 * scenario must end in a genuine committed state: no forged byte in a query, none checkpointed
 * into the database, and the page scan (what `cellar-sqlite verify` reports) clean. The journal
 * cases run in journal_mode DELETE, PERSIST and TRUNCATE, against the committed file and against
 * one with spilled pages; then page 1 corrupted under an open connection (only a journal holding
 * an authentic page 1 of its own change counter, not older than the database, is played), a
 * PERSIST journal revived after its commit, and a main file cut inside a page. Then the key
 * file: changed active version, removed or reordered entries, flipped mode, an older copy, a
 * format-1 downgrade: each refused with a clear error. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cellar_vfs.h"

#define VFS "cellar-gcm"
#define ROWS 400
#define P 4096

static char dir[256];
static cellar_keyring *kr;

/* The VFS's notices that it refused a log image or a whole log: each forged case must produce
 * one (the forged bytes were reached and refused), no genuine case may. */
static int refusals;
static void log_cb(void *arg, int code, const char *msg) {
    (void)arg;
    (void)code;
    if (strstr(msg, "cellar vfs") && strstr(msg, "does not authenticate")) refusals++;
}

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static buf slurp(const char *path) {
    buf b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (!f) return b;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = malloc(n > 0 ? (size_t)n : 1);
    b.n = b.p ? fread(b.p, 1, (size_t)n, f) : 0;
    fclose(f);
    return b;
}

static void spit(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    buf b = slurp(from);
    spit(to, b.p, b.n);
    free(b.p);
}

static buf dup_buf(const buf *b) {
    buf c = {malloc(b->n), b->n};
    memcpy(c.p, b->p, b->n);
    return c;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }
static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static int exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) fprintf(stderr, "  sql failed (%d: %s): %.80s [%s]\n", rc, err ? err : "", sql, cellar_sqlite_last_error());
    sqlite3_free(err);
    return rc;
}

static sqlite3 *open_db(const char *path) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, VFS) != SQLITE_OK) {
        if (getenv("FORGE_DEBUG")) fprintf(stderr, "  open %s: %s [%s]\n", path, sqlite3_errmsg(db), cellar_sqlite_last_error());
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void query_text(sqlite3 *db, const char *sql, char *out, size_t cap) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) snprintf(out, cap, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "NULL");
    else snprintf(out, cap, "<error %d>", sqlite3_extended_errcode(db));
    sqlite3_finalize(st);
}

/* "ok" when every row of t carries `prefix` (one committed state), integrity holds and every
 * page of the file authenticates (the scan `cellar-sqlite verify` runs). */
static int state_is(sqlite3 *db, const char *prefix) {
    char sql[200], got[256], want[64];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM t) || '/' || (SELECT count(*) FROM t WHERE v LIKE '%s-%%' AND length(v) = 206)"
             " || '/' || (SELECT count(DISTINCT id) FROM t)", prefix);
    query_text(db, sql, got, sizeof got);
    snprintf(want, sizeof want, "%d/%d/%d", ROWS, ROWS, ROWS);
    int ok = strcmp(got, want) == 0;
    char ic[256];
    query_text(db, "PRAGMA integrity_check", ic, sizeof ic);
    ok &= strcmp(ic, "ok") == 0;
    cellar_sqlite_scan_result s;
    int rc = cellar_sqlite_scan(db, &s);
    ok &= rc == SQLITE_OK && s.failed == 0 && s.empty == 0 && s.pages > 10;
    if (!ok) fprintf(stderr, "  state %s: rows %s, integrity %s, scan rc %d failed %llu\n", prefix, got, ic, rc,
                     (unsigned long long)s.failed);
    return ok;
}

/* ---------------------------------------------------------------- the test's own decryption
 * (docs/FORMATS.md): page key from the key file, log images under their binding. */

static cellar_key *page_key(const char *db_path, uint32_t version) {
    char kp[600];
    snprintf(kp, sizeof kp, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, db_path);
    buf k = slurp(kp);
    cellar_key *key = NULL;
    if (k.n > 28 && k.p[8] == 2) {
        uint32_t n = be32(k.p + 16);
        size_t off = 28;
        for (uint32_t i = 0; i < n && off + 6 <= k.n; i++) {
            uint32_t v = be32(k.p + off), len = (uint32_t)k.p[off + 4] << 8 | k.p[off + 5];
            uint32_t tv = 0;
            if (v == version) cellar_keyring_unwrap(kr, k.p + off + 6, len, &key, &tv);
            off += 6 + len;
        }
    }
    free(k.p);
    return key;
}

/* Decrypts a GCM log image bound to (file_id, page_no) into `out`; 0 on success. */
static int log_plain(const char *db_path, uint64_t file_id, uint64_t page_no, const uint8_t *img, uint8_t *out) {
    uint32_t version = 0;
    if (cellar_page_key_version(img, P, &version) != CELLAR_OK) return -1;
    cellar_key *key = page_key(db_path, version);
    cellar_page_cipher *c = NULL;
    int rc = -1;
    if (key && cellar_page_cipher_new(key, CELLAR_PAGE_GCM, file_id, version, 0, &c) == CELLAR_OK)
        rc = cellar_page_decrypt(c, page_no, img, out, P) == CELLAR_OK ? 0 : -1;
    cellar_page_cipher_free(c);
    cellar_key_free(key);
    return rc;
}

/* ---------------------------------------------------------------- snapshots of live logs */

/* A child process runs `sql` on `db_path` (after `pre`) and stops there, its transaction open or
 * just committed; the parent copies the database's side file `suffix` to `out` (and the database
 * to `db_out` when given), then kills the child with SIGKILL. */
static int snapshot(const char *db_path, const char *pre, const char *sql, const char *suffix, const char *out,
                    const char *db_out) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        sqlite3 *c = open_db(db_path);
        char ok = c && exec(c, pre) == SQLITE_OK && exec(c, sql) == SQLITE_OK ? 'y' : 'n';
        if (write(fds[1], &ok, 1) != 1) _exit(2);
        for (;;) pause();
    }
    close(fds[1]);
    char b = 0;
    int rc = read(fds[0], &b, 1) == 1 && b == 'y' ? 0 : -1;
    close(fds[0]);
    char side[600];
    snprintf(side, sizeof side, "%s%s", db_path, suffix);
    copy_file(side, out);
    if (db_out) copy_file(db_path, db_out);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    return rc;
}

/* Copies `db` (and its key file) to `name`, puts `log` beside it as `suffix`. */
static void stage(const char *db, const char *name, const char *suffix, const buf *log, char *out, size_t cap) {
    char key_from[600], key_to[600], side[640], shm[640];
    path_of(out, cap, name);
    snprintf(key_from, sizeof key_from, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, db);
    snprintf(key_to, sizeof key_to, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, out);
    snprintf(side, sizeof side, "%s%s", out, suffix);
    snprintf(shm, sizeof shm, "%s-shm", out);
    copy_file(db, out);
    copy_file(key_from, key_to);
    unlink(shm);
    if (log) spit(side, log->p, log->n);
}

static void fill_rows(sqlite3 *db, const char *prefix) {
    char sql[400];
    snprintf(sql, sizeof sql,
             "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
             "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
             "INSERT INTO t SELECT i, printf('%s-%%05d-%%.194c', i, 'x') FROM c", ROWS, prefix);
    CHECK(exec(db, sql) == SQLITE_OK);
}

/* SQL that moves every row to `to` (a new committed state, or an open transaction). */
static void relabel(char *out, size_t cap, const char *to) {
    snprintf(out, cap, "UPDATE t SET v = '%s' || substr(v, 6)", to);
}

/* ---------------------------------------------------------------- rollback journal */

typedef struct jrec {
    size_t off; /* of the record (its page number field) */
    uint32_t pgno, cksum;
    uint32_t nonce; /* of the record's segment (each journal header draws its own) */
} jrec;

typedef struct jinfo {
    uint32_t sector;
    uint64_t gen;
    jrec r[256];
    int n;
} jinfo;

/* SQLite's journal checksum: the nonce plus every 200th byte from the end of the page. */
static uint32_t journal_cksum(uint32_t nonce, const uint8_t *data) {
    uint32_t c = nonce;
    for (int i = P - 200; i > 0; i -= 200) c += data[i];
    return c;
}

static int journal_parse(const buf *j, jinfo *ji) {
    memset(ji, 0, sizeof *ji);
    static const uint8_t magic[8] = {0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7};
    if (j->n < 512 || memcmp(j->p, magic, 8) != 0 || be32(j->p + 24) != P) return -1;
    ji->sector = be32(j->p + 20);
    if (ji->sector < 512 || memcmp(j->p + 28, "CELLARJ1", 8) != 0) return -1;
    ji->gen = (uint64_t)be32(j->p + 36) << 32 | be32(j->p + 40);
    /* Segments as SQLite reads them: a header (magic, record count, nonce) at a sector boundary,
     * its records after one sector, the next header at the next boundary. */
    for (size_t h = 0; h + ji->sector <= j->n && memcmp(j->p + h, magic, 8) == 0;) {
        uint32_t nrec = be32(j->p + h + 8), nonce = be32(j->p + h + 12);
        size_t off = h + ji->sector;
        for (uint32_t i = 0; i < nrec && off + P + 8 <= j->n && ji->n < 256; i++, off += P + 8) {
            ji->r[ji->n] = (jrec){off, be32(j->p + off), be32(j->p + off + 4 + P), nonce};
            ji->n++;
        }
        h = (off + ji->sector - 1) / ji->sector * ji->sector;
    }
    return ji->n > 2 ? 0 : -1;
}

static uint64_t jfile_id(uint64_t gen) { return 2 | (gen >> 32) << 8 | (gen & 0xffffffu) << 40; }
static uint64_t jpage_no(size_t img_off, uint32_t pgno) { return ((uint64_t)img_off >> 3 & 0xffffffffu) << 32 | pgno; }

/* The journal as SQLite would play it must hold every journal record it checks: the genuine
 * images decrypt under their binding and SQLite's checksum over them is the stored one. */
static int journal_genuine(const char *db, const buf *j, const jinfo *ji) {
    uint8_t plain[P];
    int ok = ji->gen != 0;
    for (int i = 0; i < ji->n && ok; i++) {
        ok = log_plain(db, jfile_id(ji->gen), jpage_no(ji->r[i].off + 4, ji->r[i].pgno), j->p + ji->r[i].off + 4, plain) == 0 &&
             journal_cksum(ji->r[i].nonce, plain) == ji->r[i].cksum;
    }
    return ok;
}

/* Opens `name` (a staged database with a hot journal) and checks it holds committed state
 * `prefix`, before and after reopening. */
static void expect_state_r(const char *path, const char *prefix, const char *what, int forged) {
    refusals = 0;
    sqlite3 *db = open_db(path);
    int ok = db && state_is(db, prefix);
    if (db) exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
    db = open_db(path);
    ok &= db && state_is(db, prefix);
    sqlite3_close(db);
    if (!ok) fprintf(stderr, "  FAILED: %s\n", what);
    CHECK(ok);
    if (forged ? refusals == 0 : refusals != 0) fprintf(stderr, "  %s: %d refusals logged\n", what, refusals);
    CHECK(forged ? refusals > 0 : refusals == 0);
}
#define expect_state(path, prefix, what) expect_state_r(path, prefix, what, strstr(what, "genuine") == NULL)

/* The journal mode under test, in every staged file name (jname). */
static const char *jmode = "delete";
static const char *jname(const char *name) {
    static char names[4][128];
    static int next;
    char *out = names[next++ % 4];
    snprintf(out, 128, "%s-%s", jmode, name);
    return out;
}

/* Overwrites bytes in the middle of page 1 of `path` (a torn write, or an attacker). */
static void corrupt_page1(const char *path) {
    buf d = slurp(path);
    if (d.n >= P) {
        for (int i = 1000; i < 1100; i++) d.p[i] ^= 0x5a;
        spit(path, d.p, d.n);
    }
    free(d.p);
}

/* Whether the file at `path` still holds `ref`'s bytes after page 1 (nothing was played back). */
static int same_after_page1(const char *path, const char *ref) {
    buf a = slurp(path), b = slurp(ref);
    int same = a.n == b.n && a.n > P && memcmp(a.p + P, b.p + P, a.n - P) == 0;
    free(a.p);
    free(b.p);
    return same;
}

/* Opens `path` and expects nothing to come out: the open or a query fails, and nothing after
 * page 1 changed (no journal played). */
static void expect_unreadable(const char *path, const char *ref, const char *what) {
    refusals = 0;
    sqlite3 *db = open_db(path);
    char got[256] = "";
    if (db) query_text(db, "SELECT count(*) FROM t", got, sizeof got);
    sqlite3_close(db);
    int ok = (!db || strncmp(got, "<error", 6) == 0) && same_after_page1(path, ref);
    if (!ok) fprintf(stderr, "  FAILED: %s (query: %s)\n", what, got);
    CHECK(ok);
}

/* Rows that are each one of two authentic committed or spilled states: no forged byte. */
static int rows_from(sqlite3 *db, const char *a, const char *b) {
    char sql[300], got[64], want[64];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM t WHERE (v LIKE '%s-%%' OR v LIKE '%s-%%') AND length(v) = 206", a, b);
    query_text(db, sql, got, sizeof got);
    snprintf(want, sizeof want, "%d", ROWS);
    return strcmp(got, want) == 0;
}

static void test_journal(const char *mode) {
    char db[512], j0p[600], j1p[600], d0[600], d1[600], sql[200], pre[120];
    jmode = mode;
    fprintf(stderr, "-- journal_mode=%s\n", mode);
    path_of(db, sizeof db, jname("fj.db"));
    snprintf(j0p, sizeof j0p, "%s.j0", db);
    snprintf(j1p, sizeof j1p, "%s.j1", db);
    snprintf(d0, sizeof d0, "%s.d0", db);
    snprintf(d1, sizeof d1, "%s.d1", db);
    sqlite3 *c = open_db(db);
    CHECK(c != NULL);
    if (!c) return;
    snprintf(pre, sizeof pre, "PRAGMA journal_mode=%s; PRAGMA cache_size=4", mode);
    CHECK(exec(c, pre) == SQLITE_OK);
    fill_rows(c, "GOOD0");
    sqlite3_close(c);
    const char *spill = pre;
    /* J0: a hot journal of a transaction over state GOOD0, rolled back afterwards. Each
     * transaction changes the schema first, so page 1 is journaled (as at every commit). */
    relabel(sql, sizeof sql, "LOST0");
    char txn[260];
    snprintf(txn, sizeof txn, "BEGIN; CREATE TABLE u0(x); %s", sql);
    CHECK(snapshot(db, spill, txn, "-journal", j0p, NULL) == 0);
    c = open_db(db);
    CHECK(c && state_is(c, "GOOD0")); /* the crash recovered */
    CHECK(c && exec(c, pre) == SQLITE_OK);
    relabel(sql, sizeof sql, "GOOD1");
    CHECK(c && exec(c, sql) == SQLITE_OK);
    relabel(sql, sizeof sql, "GOOD2");
    CHECK(c && exec(c, sql) == SQLITE_OK);
    sqlite3_close(c);
    copy_file(db, d0); /* D0: committed state GOOD2, two commits after J0 */
    char kf_from[600], kf_to[640];
    snprintf(kf_from, sizeof kf_from, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, db);
    snprintf(kf_to, sizeof kf_to, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, d0);
    copy_file(kf_from, kf_to);
    /* J1 (and D1, pages already spilled): a writer killed in a transaction over GOOD2. */
    relabel(sql, sizeof sql, "LOST2");
    snprintf(txn, sizeof txn, "BEGIN; CREATE TABLE u2(x); %s", sql);
    CHECK(snapshot(db, spill, txn, "-journal", j1p, d1) == 0);
    snprintf(kf_to, sizeof kf_to, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, d1);
    copy_file(kf_from, kf_to);
    buf J0 = slurp(j0p), J1 = slurp(j1p);
    jinfo i0, i1;
    CHECK(journal_parse(&J0, &i0) == 0 && journal_parse(&J1, &i1) == 0);
    if (i0.n < 3 || i1.n < 3) {
        free(J0.p);
        free(J1.p);
        return;
    }
    /* The checksum code reproduces SQLite's on every genuine record (and the images decrypt
     * under the documented binding). */
    CHECK(journal_genuine(db, &J0, &i0));
    CHECK(journal_genuine(db, &J1, &i1));
    CHECK(i0.gen != i1.gen && i0.r[1].nonce != i1.r[1].nonce);
    CHECK(i0.r[1].off == i1.r[1].off);
    buf D1 = slurp(d1), D0 = slurp(d0);
    CHECK(D1.n >= D0.n && memcmp(D1.p, D0.p, D0.n) != 0); /* D1 has spilled pages (and u2's new page) */
    free(D1.p);
    free(D0.p);
    char path[600];
    /* Genuine crash recovery: D1 with its hot journal comes back to GOOD2. */
    stage(d1, jname("fj-genuine-d1.db"), "-journal", &J1, path, sizeof path);
    expect_state(path, "GOOD2", "journal: genuine crash recovery");
    stage(d0, jname("fj-genuine-d0.db"), "-journal", &J1, path, sizeof path);
    expect_state(path, "GOOD2", "journal: genuine journal on the committed file");

    /* Forged records, each replacing record 1 of J1 (a journaled page whose image, if played,
     * would change the committed database). */
    const int r = 1;
    size_t img = i1.r[r].off + 4;
    uint8_t zeros[P], rnd[P];
    memset(zeros, 0, sizeof zeros);
    srand(1234);
    for (int i = 0; i < P; i++) rnd[i] = (uint8_t)rand();
    struct {
        const char *what;
        int kind;
    } cases[] = {
        {"all-zero image, checksum over zeros", 0},
        {"random image, checksum over zeros (what a failed decryption used to return)", 1},
        {"random image, checksum over the random bytes", 2},
        {"authentic image replayed onto another page (page number changed)", 3},
        {"image from an older journal spliced in (checksum re-seeded)", 4},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        buf F = dup_buf(&J1);
        uint8_t *rec = F.p + i1.r[r].off;
        switch (cases[k].kind) {
        case 0:
            memcpy(F.p + img, zeros, P);
            put_be32(rec + 4 + P, journal_cksum(i1.r[r].nonce, zeros));
            break;
        case 1:
            memcpy(F.p + img, rnd, P);
            put_be32(rec + 4 + P, journal_cksum(i1.r[r].nonce, zeros));
            break;
        case 2:
            memcpy(F.p + img, rnd, P);
            put_be32(rec + 4 + P, journal_cksum(i1.r[r].nonce, rnd));
            break;
        case 3: /* record r's own image (checksum unchanged: same plaintext, same nonce) claims record 2's page */
            put_be32(rec, i1.r[2].pgno);
            break;
        case 4: /* J0's record 1 at the same offset, its page number, checksum moved to J1's nonce */
            memcpy(rec, J0.p + i0.r[r].off, P + 8);
            put_be32(rec + 4 + P, i0.r[r].cksum - i0.r[r].nonce + i1.r[r].nonce);
            break;
        }
        char name[64];
        snprintf(name, sizeof name, "fj-forged-%zu.db", k);
        snprintf(name, sizeof name, "%s", jname(name));
        stage(d0, name, "-journal", &F, path, sizeof path);
        char what[200];
        snprintf(what, sizeof what, "journal: %s", cases[k].what);
        expect_state(path, "GOOD2", what);
        /* The same record against the file with spilled pages: playback ends at the forged
         * record, so pages after it keep their spilled (authentic, uncommitted) content; every
         * row is GOOD2 or LOST2, none forged, and every page authenticates. */
        snprintf(name, sizeof name, "fj-forged-spilled-%zu.db", k);
        snprintf(name, sizeof name, "%s", jname(name));
        stage(d1, name, "-journal", &F, path, sizeof path);
        refusals = 0;
        sqlite3 *s = open_db(path);
        cellar_sqlite_scan_result sr;
        memset(&sr, 0, sizeof sr);
        int ok = s && rows_from(s, "GOOD2", "LOST2") && cellar_sqlite_scan(s, &sr) == SQLITE_OK && sr.failed == 0;
        sqlite3_close(s);
        if (!ok) fprintf(stderr, "  FAILED: %s, on the spilled file\n", what);
        CHECK(ok);
        CHECK(refusals > 0);
        free(F.p);
    }
    /* Whole journals that are not the database's current one. */
    stage(d0, jname("fj-older.db"), "-journal", &J0, path, sizeof path);
    expect_state(path, "GOOD2", "journal: an entire older journal (two commits back)");
    {
        buf F = dup_buf(&J0);
        memcpy(F.p + 28 + 8, J1.p + 28 + 8, 8); /* J1's generation on J0's images */
        stage(d0, jname("fj-older-retagged.db"), "-journal", &F, path, sizeof path);
        expect_state(path, "GOOD2", "journal: an older journal carrying the current generation");
        free(F.p);
        F = dup_buf(&J1);
        memset(F.p + 28, 0, 16); /* no generation: not a journal this VFS wrote */
        stage(d0, jname("fj-untagged.db"), "-journal", &F, path, sizeof path);
        expect_state(path, "GOOD2", "journal: a journal without a generation");
        free(F.p);
    }

    /* Page 1 of the database does not authenticate (torn, or corrupted by an attacker). A new
     * connection cannot open it (page-size detection fails). A connection already open (page
     * size known) finds the hot journal first: the journal cannot be pinned to the counter on
     * disk, so it must hold an authentic page 1 of its own C0 (SQLite journals page 1 before it
     * writes it), and C0 must not be older than the page 1 this process last saw, less one. */
    struct {
        const char *what, *file;
        int journal; /* 0: J1, 1: J1 under another R, 2: J0 */
        int genuine;
    } p1[] = {
        {"journal: genuine crash recovery with page 1 torn, connection open", d1, 0, 1},
        {"journal: genuine current journal restores a corrupted page 1, connection open", d0, 0, 1},
        {"journal: page 1 corrupted, forged journal (another generation), connection open", d0, 1, 0},
        {"journal: page 1 corrupted, older journal (two commits back), connection open", d0, 2, 0},
    };
    for (size_t k = 0; k < sizeof p1 / sizeof p1[0]; k++) {
        char name[64], side[640];
        snprintf(name, sizeof name, "fj-p1-%zu.db", k);
        stage(d0, jname(name), NULL, NULL, path, sizeof path);
        sqlite3 *keep = open_db(path);
        CHECK(keep && state_is(keep, "GOOD2"));
        buf F = dup_buf(p1[k].journal == 2 ? &J0 : &J1);
        if (p1[k].journal == 1) F.p[28 + 15] ^= 1; /* no image authenticates, page 1's neither */
        snprintf(side, sizeof side, "%s-journal", path);
        spit(side, F.p, F.n);
        free(F.p);
        copy_file(p1[k].file, path); /* d1: the spilled pages of J1's transaction */
        corrupt_page1(path);
        refusals = 0;
        char got[256] = "";
        if (keep) query_text(keep, "SELECT count(*) FROM t", got, sizeof got);
        int ok = p1[k].genuine ? keep && state_is(keep, "GOOD2") && refusals == 0
                               : strncmp(got, "<error", 6) == 0 && refusals > 0 && same_after_page1(path, d0);
        if (!ok) fprintf(stderr, "  FAILED: %s (%s, %d refusals)\n", p1[k].what, got, refusals);
        CHECK(ok);
        sqlite3_close(keep);
        if (p1[k].genuine) {
            keep = open_db(path);
            CHECK(keep && state_is(keep, "GOOD2"));
            sqlite3_close(keep);
        }
    }
    /* A new connection (or a fresh process) on a database whose page 1 does not authenticate
     * fails to open, whatever journal lies beside it: nothing is played back. */
    stage(d0, jname("fj-p1-fresh.db"), "-journal", &J0, path, sizeof path);
    corrupt_page1(path);
    expect_unreadable(path, d0, "journal: page 1 corrupted, older journal, new connection");
    free(J0.p);
    free(J1.p);
}

/* journal_mode=PERSIST keeps the journal after a commit and invalidates it by zeroing the
 * header's first 28 bytes (not keyed). Putting those bytes back must not revive the journal:
 * the VFS destroys its generation tag with them. A saved copy of the tag too is a whole-log
 * rollback (known limit, pinned here). */
static void test_persist_revived(void) {
    char db[512], d[600], side[640], sql[200];
    jmode = "persist";
    path_of(db, sizeof db, "fp.db");
    snprintf(d, sizeof d, "%s.d", db);
    snprintf(side, sizeof side, "%s-journal", db);
    sqlite3 *c = open_db(db);
    CHECK(c != NULL);
    if (!c) return;
    CHECK(exec(c, "PRAGMA journal_mode=PERSIST; PRAGMA cache_size=4") == SQLITE_OK);
    fill_rows(c, "GOOD0");
    relabel(sql, sizeof sql, "GOOD1");
    CHECK(exec(c, sql) == SQLITE_OK);
    CHECK(exec(c, "BEGIN; CREATE TABLE u(x)") == SQLITE_OK);
    relabel(sql, sizeof sql, "GOOD2");
    CHECK(exec(c, sql) == SQLITE_OK);
    buf live = slurp(side); /* the live journal, header intact (pages already spilled) */
    CHECK(exec(c, "COMMIT") == SQLITE_OK);
    buf kept = slurp(side);
    copy_file(db, d);
    char kf_from[600], kf_to[640];
    snprintf(kf_from, sizeof kf_from, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, db);
    snprintf(kf_to, sizeof kf_to, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, d);
    copy_file(kf_from, kf_to);
    sqlite3_close(c);
    jinfo ji;
    CHECK(live.n > 44 && kept.n > 44 && journal_parse(&live, &ji) == 0);
    uint8_t zero[44];
    memset(zero, 0, sizeof zero);
    CHECK(kept.n > 44 && memcmp(kept.p, zero, 44) == 0); /* header and tag gone after the commit */
    CHECK(kept.n > 44 && memcmp(kept.p + 44, live.p + 44, 512 - 44) == 0);
    char path[600];
    if (live.n > 44 && kept.n > 44) {
        buf F = dup_buf(&kept);
        memcpy(F.p, live.p, 28); /* the unkeyed header bytes put back */
        stage(d, "fp-revived-header.db", "-journal", &F, path, sizeof path);
        expect_state(path, "GOOD2", "persist: journal header revived after the commit");
        memcpy(F.p, live.p, 44); /* and a saved copy of the tag */
        stage(d, "fp-revived-with-tag.db", "-journal", &F, path, sizeof path);
        expect_state_r(path, "GOOD1", "persist: known limit, header and tag from a copy of the live journal", 0);
        free(F.p);
    }
    free(live.p);
    free(kept.p);
}

/* A main file cut inside a page: reading that page is SQLITE_IOERR_DATA ("cut short"), never
 * zeros handed to SQLite as content. */
static void test_short_read(void) {
    char db[512];
    path_of(db, sizeof db, "fs.db");
    sqlite3 *c = open_db(db);
    CHECK(c != NULL);
    if (!c) return;
    fill_rows(c, "GOOD0");
    sqlite3_close(c);
    struct stat st;
    CHECK(stat(db, &st) == 0 && st.st_size > 4 * P);
    CHECK(truncate(db, st.st_size - P / 2) == 0);
    c = open_db(db);
    CHECK(c != NULL);
    if (!c) return;
    char got[256];
    query_text(c, "SELECT count(*), sum(length(v)) FROM t", got, sizeof got);
    int ext = sqlite3_extended_errcode(c);
    if (ext != SQLITE_IOERR_DATA) fprintf(stderr, "  short read: %s, extended code %d\n", got, ext);
    CHECK(strncmp(got, "<error", 6) == 0);
    CHECK(ext == SQLITE_IOERR_DATA);
    CHECK(strstr(cellar_sqlite_last_error(), "cut short") != NULL);
    sqlite3_close(c);
}

/* ---------------------------------------------------------------- WAL */

typedef struct wframe {
    uint32_t pgno, ntrunc;
    const uint8_t *img;   /* stored bytes */
    const uint8_t *plain; /* what the checksum covers */
} wframe;

/* SQLite's WAL checksum: 32-bit words in the byte order the magic names (0x377f0683: big-endian,
 * 0x377f0682: little-endian), s1 += x0 + s2, s2 += x1 + s1, over 8 bytes at a time. */
static void wal_cksum(int big, const uint8_t *a, size_t n, uint32_t *s1, uint32_t *s2) {
    for (size_t i = 0; i < n; i += 8) {
        uint32_t x0 = big ? be32(a + i) : le32(a + i), x1 = big ? be32(a + i + 4) : le32(a + i + 4);
        *s1 += x0 + *s2;
        *s2 += x1 + *s1;
    }
}

/* A WAL file from a 32-byte header (its salts and checksum as given) and frames, each frame's
 * checksum chained from the previous one as SQLite does. */
static buf wal_build(const uint8_t *hdr, const wframe *fr, int n) {
    buf w = {malloc(32 + (size_t)n * (24 + P)), 32 + (size_t)n * (24 + P)};
    memcpy(w.p, hdr, 32);
    int big = be32(hdr) & 1;
    uint32_t s1 = be32(hdr + 24), s2 = be32(hdr + 28);
    for (int i = 0; i < n; i++) {
        uint8_t *fh = w.p + 32 + (size_t)i * (24 + P);
        put_be32(fh, fr[i].pgno);
        put_be32(fh + 4, fr[i].ntrunc);
        memcpy(fh + 8, hdr + 16, 8);
        wal_cksum(big, fh, 8, &s1, &s2);
        wal_cksum(big, fr[i].plain, P, &s1, &s2);
        put_be32(fh + 16, s1);
        put_be32(fh + 20, s2);
        memcpy(fh + 24, fr[i].img, P);
    }
    return w;
}

typedef struct winfo {
    int n;
    wframe f[128];
    uint8_t (*plain)[P];
} winfo;

static uint64_t wfile_id(const uint8_t *hdr) { return 3 | (uint64_t)(be32(hdr + 16) & 0xffffffu) << 8 | (uint64_t)be32(hdr + 20) << 32; }
static uint64_t wpage_no(uint32_t index, uint32_t pgno) { return (uint64_t)index << 32 | pgno; }

/* Parses a genuine WAL and decrypts every frame (the test's own decryption, FORMATS.md). */
static int wal_parse(const char *db, const buf *w, winfo *wi) {
    memset(wi, 0, sizeof *wi);
    if (w->n < 32 || (be32(w->p) & ~1u) != 0x377f0682 || be32(w->p + 8) != P) return -1;
    wi->plain = malloc(128 * sizeof *wi->plain);
    for (size_t off = 32; off + 24 + P <= w->n && wi->n < 128; off += 24 + P) {
        const uint8_t *fh = w->p + off;
        wframe *f = &wi->f[wi->n];
        f->pgno = be32(fh);
        f->ntrunc = be32(fh + 4);
        f->img = fh + 24;
        if (log_plain(db, wfile_id(w->p), wpage_no((uint32_t)wi->n, f->pgno), f->img, wi->plain[wi->n]) != 0) return -1;
        f->plain = wi->plain[wi->n];
        wi->n++;
    }
    return wi->n > 3 ? 0 : -1;
}

static void test_wal(void) {
    char db[512], wa[600], wb[600], dbb[600], sql[200];
    path_of(db, sizeof db, "fw.db");
    snprintf(wa, sizeof wa, "%s.wa", db);
    snprintf(wb, sizeof wb, "%s.wb", db);
    snprintf(dbb, sizeof dbb, "%s.db-b", db);
    sqlite3 *c = open_db(db);
    CHECK(c != NULL);
    if (!c) return;
    CHECK(exec(c, "PRAGMA journal_mode=WAL") == SQLITE_OK);
    fill_rows(c, "GOOD0");
    CHECK(exec(c, "PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_OK);
    sqlite3_close(c);
    const char *keep = "PRAGMA wal_autocheckpoint=0";
    /* WA: an older WAL generation holding GOOD1. */
    relabel(sql, sizeof sql, "GOOD1");
    CHECK(snapshot(db, keep, sql, "-wal", wa, NULL) == 0);
    c = open_db(db);
    CHECK(c && state_is(c, "GOOD1"));
    CHECK(c && exec(c, "PRAGMA wal_checkpoint(TRUNCATE)") == SQLITE_OK);
    sqlite3_close(c);
    /* WB: a new generation with two commits, GOOD2 then GOOD3; DB-b is the file under it (GOOD1). */
    char two[420], s3[200];
    relabel(sql, sizeof sql, "GOOD2");
    relabel(s3, sizeof s3, "GOOD3");
    snprintf(two, sizeof two, "%s; %s", sql, s3);
    CHECK(snapshot(db, keep, two, "-wal", wb, dbb) == 0);
    char kf_from[600], kf_to[640];
    snprintf(kf_from, sizeof kf_from, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, db);
    snprintf(kf_to, sizeof kf_to, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, dbb);
    copy_file(kf_from, kf_to);
    buf WA = slurp(wa), WB = slurp(wb);
    winfo ia, ib;
    CHECK(wal_parse(db, &WA, &ia) == 0);
    CHECK(wal_parse(db, &WB, &ib) == 0);
    if (ia.n < 4 || ib.n < 4) return;
    CHECK(memcmp(WA.p + 16, WB.p + 16, 8) != 0); /* two generations: different salts */
    /* The checksum code rebuilds the genuine WAL byte for byte. */
    {
        buf g = wal_build(WB.p, ib.f, ib.n);
        CHECK(g.n == WB.n && memcmp(g.p, WB.p, WB.n) == 0);
        free(g.p);
    }
    int c2 = -1, c3 = -1;
    for (int i = 0; i < ib.n; i++)
        if (ib.f[i].ntrunc) {
            if (c2 < 0) c2 = i;
            else c3 = i;
        }
    CHECK(c2 > 0 && c3 > c2 + 1 && c3 == ib.n - 1);
    if (c2 < 0 || c3 < 0) return;
    char path[600];
    stage(dbb, "fw-genuine.db", "-wal", &WB, path, sizeof path);
    expect_state(path, "GOOD3", "wal: genuine WAL, two commits");
    {
        buf prefix = {WB.p, 32 + (size_t)(c2 + 1) * (24 + P)};
        stage(dbb, "fw-genuine-prefix.db", "-wal", &prefix, path, sizeof path);
        expect_state(path, "GOOD2", "wal: genuine WAL cut after its first commit");
    }
    uint8_t zeros[P], rnd[P];
    memset(zeros, 0, sizeof zeros);
    srand(99);
    for (int i = 0; i < P; i++) rnd[i] = (uint8_t)rand();
    /* Forged frames: frame k (the first of the second transaction) replaced, every later frame
     * re-chained with SQLite's checksum, so the second commit is valid as far as SQLite can tell.
     * Expected: the log ends before k, the database holds GOOD2. */
    int k = c2 + 1;
    int other = -1; /* a frame of the second transaction for another page */
    for (int i = k + 1; i <= c3; i++)
        if (ib.f[i].pgno != ib.f[k].pgno && ib.f[i].pgno != 1) other = i;
    int old = -1; /* a frame of the older WAL for the same page, at the same position if possible */
    for (int i = 0; i < ia.n; i++)
        if (ia.f[i].pgno == ib.f[k].pgno && (old < 0 || i == k)) old = i;
    CHECK(other > 0 && old >= 0);
    if (other < 0 || old < 0) return;
    struct {
        const char *what;
        int kind;
    } cases[] = {
        {"all-zero page, checksum over zeros", 0},
        {"random page, checksum over zeros (what a failed decryption used to return)", 1},
        {"random page, checksum over the random bytes", 2},
        {"authentic page replayed onto another page (frame's page number changed)", 3},
        {"page from an older WAL generation spliced in (salts rewritten, checksum chained)", 4},
        {"authentic frame of the same transaction moved to another position", 5},
    };
    for (size_t q = 0; q < sizeof cases / sizeof cases[0]; q++) {
        wframe fr[128];
        memcpy(fr, ib.f, sizeof(wframe) * (size_t)ib.n);
        switch (cases[q].kind) {
        case 0:
            fr[k].img = zeros;
            fr[k].plain = zeros;
            break;
        case 1:
            fr[k].img = rnd;
            fr[k].plain = zeros;
            break;
        case 2:
            fr[k].img = rnd;
            fr[k].plain = rnd;
            break;
        case 3:
            fr[k].pgno = ib.f[other].pgno;
            break;
        case 4:
            fr[k].img = ia.f[old].img;
            fr[k].plain = ia.f[old].plain;
            fr[k].pgno = ia.f[old].pgno;
            break;
        case 5: /* frame `other`'s image and page number at position k */
            fr[k].img = ib.f[other].img;
            fr[k].plain = ib.f[other].plain;
            fr[k].pgno = ib.f[other].pgno;
            break;
        }
        buf F = wal_build(WB.p, fr, ib.n);
        char name[64], what[200];
        snprintf(name, sizeof name, "fw-forged-%zu.db", q);
        stage(dbb, name, "-wal", &F, path, sizeof path);
        snprintf(what, sizeof what, "wal: %s", cases[q].what);
        expect_state(path, "GOOD2", what);
        free(F.p);
    }
    /* A forged commit appended after the genuine log (all-zero page 2, checksum over zeros): the
     * log ends at the genuine second commit. */
    {
        wframe fr[129];
        memcpy(fr, ib.f, sizeof(wframe) * (size_t)ib.n);
        fr[ib.n] = (wframe){2, ib.f[c3].ntrunc, zeros, zeros};
        buf F = wal_build(WB.p, fr, ib.n + 1);
        stage(dbb, "fw-appended.db", "-wal", &F, path, sizeof path);
        expect_state(path, "GOOD3", "wal: forged commit appended");
        free(F.p);
    }
    /* After recovery, a frame changed under a live connection: the page read fails, never data. */
    {
        stage(dbb, "fw-live.db", "-wal", &WB, path, sizeof path);
        sqlite3 *l = open_db(path);
        char got[64];
        query_text(l, "SELECT count(*) FROM t WHERE v LIKE 'GOOD3-%'", got, sizeof got);
        CHECK(strcmp(got, "400") == 0);
        CHECK(exec(l, "PRAGMA cache_size=1; PRAGMA cache_spill=1") == SQLITE_OK);
        char side[640];
        snprintf(side, sizeof side, "%s-wal", path);
        FILE *fw = fopen(side, "r+b");
        if (fw) { /* zero every page image of the WAL, headers kept */
            for (int i = 0; i < ib.n; i++) {
                fseek(fw, 32 + (long)i * (24 + P) + 24, SEEK_SET);
                fwrite(zeros, 1, P, fw);
            }
            fclose(fw);
        }
        sqlite3 *l2 = open_db(path); /* a fresh cache that still uses the live WAL index */
        CHECK(l2 != NULL);
        if (l2) query_text(l2, "SELECT group_concat(substr(v, 1, 5)) FROM t", got, sizeof got);
        CHECK(l2 && strncmp(got, "<error", 6) == 0 && (atoi(got + 7) & 0xff) == SQLITE_IOERR);
        sqlite3_close(l2);
        sqlite3_close(l);
    }
    /* The live WAL index (-shm) changed under a running connection so that page A's lookup finds
     * page B's frame (page numbers and hash slots of the two frames swapped, as SQLite's own
     * lookup checks them): the read fails, it never returns B's page as A. */
    {
        int f1 = -1, f2 = -1;
        for (int i = c2 + 1; i <= c3; i++) {
            int last = 1;
            for (int j = i + 1; j < ib.n; j++) last &= ib.f[j].pgno != ib.f[i].pgno;
            if (!last || ib.f[i].pgno == 1) continue;
            if (f1 < 0) f1 = i;
            else if (f2 < 0 && ib.f[i].pgno != ib.f[f1].pgno) f2 = i;
        }
        CHECK(f1 >= 0 && f2 >= 0);
        stage(dbb, "fw-index.db", "-wal", &WB, path, sizeof path);
        sqlite3 *l = open_db(path);
        char got[64], shm[640];
        query_text(l, "SELECT count(*) FROM t WHERE v LIKE 'GOOD3-%'", got, sizeof got);
        CHECK(strcmp(got, "400") == 0);
        snprintf(shm, sizeof shm, "%s-shm", path);
        FILE *fs = fopen(shm, "r+b");
        int patched = 0;
        if (fs && f1 >= 0 && f2 >= 0) {
            uint8_t region[32768];
            if (fread(region, 1, sizeof region, fs) == sizeof region) {
                uint32_t h1 = (uint32_t)f1 + 1, h2 = (uint32_t)f2 + 1, a = ib.f[f1].pgno, b = ib.f[f2].pgno;
                uint32_t *pg = (uint32_t *)(void *)(region + 136);
                uint16_t *hash = (uint16_t *)(void *)(region + 16384);
                if (pg[h1 - 1] == a && pg[h2 - 1] == b) {
                    pg[h1 - 1] = b;
                    pg[h2 - 1] = a;
                    for (uint32_t key = (a * 383) & 8191; hash[key]; key = (key + 1) & 8191)
                        if (hash[key] == h1) hash[key] = (uint16_t)h2, patched++;
                    for (uint32_t key = (b * 383) & 8191; hash[key]; key = (key + 1) & 8191)
                        if (hash[key] == h2) hash[key] = (uint16_t)h1, patched++;
                    fseek(fs, 0, SEEK_SET);
                    fwrite(region, 1, sizeof region, fs);
                }
            }
            fclose(fs);
        }
        CHECK(patched == 2);
        sqlite3 *l2 = open_db(path); /* uses the live (changed) index: no recovery */
        CHECK(l2 != NULL);
        if (l2) query_text(l2, "SELECT group_concat(substr(v, 1, 5)) FROM t", got, sizeof got);
        CHECK(l2 && strncmp(got, "<error", 6) == 0 && (atoi(got + 7) & 0xff) == SQLITE_IOERR);
        CHECK(strstr(cellar_sqlite_last_error(), "WAL index names page") != NULL);
        sqlite3_close(l2);
        sqlite3_close(l);
    }
    free(ia.plain);
    free(ib.plain);
    free(WA.p);
    free(WB.p);
}

/* ---------------------------------------------------------------- key file */

static int open_fails_with(const char *path, const char *uri_extra, const char *text) {
    char uri[800];
    snprintf(uri, sizeof uri, "file:%s%s", path, uri_extra ? uri_extra : "");
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, VFS);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "SELECT count(*) FROM t", NULL, NULL, NULL);
    sqlite3_close(db);
    int ok = rc != SQLITE_OK && strstr(cellar_sqlite_last_error(), text) != NULL;
    if (!ok) fprintf(stderr, "  expected failure with \"%s\", got rc %d [%s]\n", text, rc, cellar_sqlite_last_error());
    return ok;
}

static int open_works(const char *path, const char *uri_extra) {
    char uri[800], got[32];
    snprintf(uri, sizeof uri, "file:%s%s", path, uri_extra ? uri_extra : "");
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, VFS);
    if (rc == SQLITE_OK) query_text(db, "SELECT count(*) FROM t", got, sizeof got);
    sqlite3_close(db);
    return rc == SQLITE_OK && atoi(got) == ROWS;
}

/* Writes `kf` (with changes) as the key file of a fresh copy of `db` named `name`. */
static void stage_key(const char *db, const char *name, const buf *kf, char *out, size_t cap) {
    stage(db, name, "-wal", NULL, out, cap);
    char kp[640];
    snprintf(kp, sizeof kp, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, out);
    spit(kp, kf->p, kf->n);
}

static void test_key_file(void) {
    char db[512], kp[600], path[600];
    path_of(db, sizeof db, "fk.db");
    snprintf(kp, sizeof kp, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, db);
    sqlite3 *c = open_db(db);
    CHECK(c != NULL);
    if (!c) return;
    fill_rows(c, "GOOD0");
    cellar_sqlite_scan_result s;
    CHECK(cellar_sqlite_scan(c, &s) == SQLITE_OK && s.keyfile_generation == 1);
    buf K1 = slurp(kp); /* generation 1: one version */
    uint32_t v = 0;
    CHECK(cellar_sqlite_add_page_key(c, &v) == SQLITE_OK && v == 2);
    CHECK(exec(c, "UPDATE t SET v = v WHERE id % 2 = 0") == SQLITE_OK); /* pages under both versions */
    CHECK(cellar_sqlite_scan(c, &s) == SQLITE_OK && s.keyfile_generation == 2 && s.nversions == 2);
    sqlite3_close(c);
    buf K2 = slurp(kp);
    CHECK(K2.n > 28 && K2.p[8] == 2 && be32(K2.p + 16) == 2 && be32(K2.p + 12) == 2);
    /* entries: versions 1 and 2, each 6 + 82 bytes */
    size_t e1 = 28, l1 = 6 + ((size_t)K2.p[e1 + 4] << 8 | K2.p[e1 + 5]), e2 = e1 + l1,
           l2 = 6 + ((size_t)K2.p[e2 + 4] << 8 | K2.p[e2 + 5]);
    CHECK(be32(K2.p + e1) == 1 && be32(K2.p + e2) == 2);
    stage_key(db, "fk-genuine.db", &K2, path, sizeof path);
    CHECK(open_works(path, NULL));
    {
        buf F = dup_buf(&K2);
        put_be32(F.p + 12, 1); /* active version back to 1 */
        stage_key(db, "fk-active.db", &F, path, sizeof path);
        CHECK(open_fails_with(path, NULL, "does not authenticate"));
        free(F.p);
    }
    {
        buf F = dup_buf(&K2); /* version 1 removed */
        memmove(F.p + e1, F.p + e2, F.n - e2);
        F.n -= l1;
        put_be32(F.p + 16, 1);
        stage_key(db, "fk-removed.db", &F, path, sizeof path);
        CHECK(open_fails_with(path, NULL, "does not authenticate"));
        free(F.p);
    }
    {
        buf F = dup_buf(&K2); /* entries reordered */
        memcpy(F.p + e1, K2.p + e2, l2);
        memcpy(F.p + e1 + l2, K2.p + e1, l1);
        stage_key(db, "fk-reordered.db", &F, path, sizeof path);
        CHECK(open_fails_with(path, NULL, "does not authenticate"));
        free(F.p);
    }
    {
        buf F = dup_buf(&K2);
        F.p[9] = CELLAR_PAGE_XTS; /* mode flipped */
        stage_key(db, "fk-mode.db", &F, path, sizeof path);
        CHECK(open_fails_with(path, NULL, "does not authenticate"));
        free(F.p);
    }
    {
        buf F = dup_buf(&K2);
        F.p[20 + 7] ^= 1; /* generation changed */
        stage_key(db, "fk-generation.db", &F, path, sizeof path);
        CHECK(open_fails_with(path, NULL, "does not authenticate"));
        free(F.p);
    }
    {
        buf F = dup_buf(&K2);
        F.p[F.n - 1] ^= 1; /* MAC */
        stage_key(db, "fk-mac.db", &F, path, sizeof path);
        CHECK(open_fails_with(path, NULL, "does not authenticate"));
        F.n -= 1; /* truncated */
        stage_key(db, "fk-short.db", &F, path, sizeof path);
        CHECK(open_fails_with(path, NULL, "key file"));
        free(F.p);
    }
    /* An older authentic copy (generation 1): opens unless the host passes the generation it
     * last saw; with it, refused. */
    stage_key(db, "fk-old.db", &K1, path, sizeof path);
    CHECK(open_fails_with(path, "?cellar_min_generation=2", "below"));
    CHECK(open_works(path, "?cellar_min_generation=1"));
    /* ... and within a process that has seen generation 2, an older copy put back is refused. */
    stage_key(db, "fk-rollback.db", &K2, path, sizeof path);
    {
        sqlite3 *live = open_db(path);
        CHECK(live != NULL);
        char kp2[640];
        snprintf(kp2, sizeof kp2, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, path);
        spit(kp2, K1.p, K1.n);
        uint32_t nv = 0;
        CHECK(cellar_sqlite_add_page_key(live, &nv) != SQLITE_OK);
        CHECK(strstr(cellar_sqlite_last_error(), "went back") != NULL);
        sqlite3_close(live);
    }
    /* Downgrade to the unauthenticated format 1: refused; migrated only on request. */
    {
        buf F = {malloc(K2.n), 0};
        memcpy(F.p, K2.p, 20);
        F.p[8] = 1;
        memcpy(F.p + 20, K2.p + 28, l1 + l2);
        F.n = 20 + l1 + l2;
        stage_key(db, "fk-v1.db", &F, path, sizeof path);
        CHECK(open_fails_with(path, NULL, "not authenticated"));
        CHECK(open_works(path, "?cellar_migrate=1"));
        char kp2[640];
        snprintf(kp2, sizeof kp2, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, path);
        buf M = slurp(kp2);
        CHECK(M.n > 28 && M.p[8] == 2 && be32(M.p + 12) == 2 && be32(M.p + 16) == 2);
        free(M.p);
        free(F.p);
    }
    free(K1.p);
    free(K2.p);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/cellar-forge-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    sqlite3_config(SQLITE_CONFIG_LOG, log_cb, NULL);
    CHECK_OK(cellar_init(CELLAR_INIT_REQUIRE_FIPS));
    CHECK_OK(cellar_keyring_new(NULL, &kr));
    CHECK(cellar_sqlite_register(VFS, kr, CELLAR_PAGE_GCM, 0) == SQLITE_OK);
    test_journal("delete");
    test_journal("persist");
    test_journal("truncate");
    test_persist_revived();
    test_short_read();
    test_wal();
    test_key_file();
    if (check_failed == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    } else {
        fprintf(stderr, "files kept in %s\n", dir);
    }
    CHECK_SUMMARY();
}
