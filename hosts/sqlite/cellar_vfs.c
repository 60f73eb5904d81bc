/*
 * cellar_vfs.c: a SQLite VFS shim that encrypts pages with Cellar (see cellar_vfs.h, README.md).
 *
 * Files and what is encrypted:
 *   main database  every page, page 1 included (whole page, header too), page_no = SQLite's page
 *                  number, file id 1. The page size is found at open by trial decryption of
 *                  page 1 (8 candidate sizes), so nothing about the database is stored in clear.
 *   rollback journal  every page image (a write or read of a whole page at an offset = 4 mod 8,
 *                  which is where SQLite puts them), bound to the database page number in its
 *                  record and to the journal's generation (see "logs" below). The journal header,
 *                  record page numbers and checksums stay as SQLite wrote them.
 *   WAL            every frame's page, bound to the database page number in its frame header and
 *                  to the WAL's generation (its salts). WAL and frame headers stay as SQLite wrote
 *                  them. The -shm index holds no page content.
 *   temporary files  refused (SQLITE_CANTOPEN): connections get PRAGMA temp_store=MEMORY.
 * GCM pages carry their key version; decryption picks the cipher of that version, so pages of
 * several versions are readable side by side during a re-key.
 *
 * Logs. A log page image is sealed with the page key, bound to the database page number it
 * restores, its position in the log and the log's generation (docs/FORMATS.md):
 *   journal  file id = 2 | C0 << 8 | R << 40, page_no = (image offset / 8) << 32 | page number
 *   WAL      file id = 3 | salt-1 (24 bits) << 8 | salt-2 << 32, page_no = frame index << 32 | page no
 * where the generations are:
 *   journal  gen = C0 << 32 | R: C0 is the file change counter of the database's page 1 as it was
 *            committed when the journal was started, R 24 random bits. The VFS writes
 *            "CELLARJ1" | gen (u64 BE) into the unused bytes 28..43 of every journal header.
 *            Before a journal is played back, C0 must equal the change counter of page 1 on disk
 *            (authenticated) or be one less (page 1 already written by the crashed commit);
 *            otherwise the journal is shown to SQLite as empty. When page 1 does not
 *            authenticate, the journal must hold an authentic page 1 of its own C0 instead
 *            (journal_pinned). Zeroing a kept journal's header (PERSIST) zeroes the tag too.
 *   WAL      the salts of the WAL header (SQLite draws new ones at every WAL restart and accepts
 *            in recovery only frames whose header repeats them).
 * An image that does not authenticate is never handed to SQLite: during journal playback the read
 * ends the journal there (SQLITE_IOERR_SHORT_READ, which SQLite treats as a journal cut short by a
 * crash); during WAL recovery the frame is returned with its salts inverted, so SQLite's recovery
 * ends the valid log before it; a WAL page read after recovery fails with SQLITE_IOERR_DATA.
 */
#define _GNU_SOURCE
#ifdef CELLAR_VFS_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#else
#include <sqlite3.h>
#endif
#include "cellar_vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SQLITE_IOERR_DATA
#define SQLITE_IOERR_DATA (SQLITE_IOERR | (32 << 8))
#endif

enum { ROLE_MAIN = 0, ROLE_JOURNAL = 1, ROLE_WAL = 2, ROLE_PASS = 3, NROLES = 3 };
static const uint64_t role_file_id[NROLES] = {1, 2, 3};

#define KEYFILE_MAGIC "CELLARSQ"
#define KEYFILE_FORMAT_V1 1 /* unauthenticated; read only to migrate */
#define KEYFILE_FORMAT 2
#define KEYFILE_V1_HDR 20
#define KEYFILE_HDR 28
#define KEYFILE_MAC_LEN 33 /* a RANDOMIZED cell of no plaintext: a GMAC tag with its nonce */
static const char keyfile_mac_label[] = "cellar sqlite key file v2";
#define WAL_HDR 32
#define WAL_FRAME_HDR 24
#define JTAG_OFF 28
#define JTAG_LEN 16
static const char jtag_magic[8] = {'C', 'E', 'L', 'L', 'A', 'R', 'J', '1'};

/* Wipes memory that held plaintext before it is freed (not optimised away). */
static void cv_wipe(void *p, size_t n) {
    if (p) explicit_bzero(p, n);
}
static void cv_free_wiped(void *p, size_t n) {
    cv_wipe(p, n);
    free(p);
}

/* ---------------------------------------------------------------- errors */

static __thread char cv_errbuf[512];

const char *cellar_sqlite_last_error(void) { return cv_errbuf; }

static void cv_error(int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cv_errbuf, sizeof cv_errbuf, fmt, ap);
    va_end(ap);
    sqlite3_log(rc, "cellar vfs: %s", cv_errbuf);
}

/* Appends Cellar's last-error text (never a secret) to a failure message. */
static void cv_cellar_error(int rc, const char *what, cellar_status st) {
    char detail[256];
    cellar_last_error(detail, sizeof detail);
    cv_error(rc, "%s: %s (%s)", what, cellar_status_name(st), detail);
}

/* ---------------------------------------------------------------- keysets */

#define CV_SHM_REGIONS 64      /* WAL index regions checked: 4062 + 63 * 4096 frames */
#define CV_SHM_REGION 32768    /* SQLite's WALINDEX_PGSZ */

typedef struct cv_version {
    uint32_t version;
    cellar_key *key;           /* kept for the per-log ciphers */
    cellar_page_cipher *main;  /* main-file pages */
} cv_version;

/* The page keys of one database, shared by every handle on it in this process. */
typedef struct cv_keyset {
    struct cv_keyset *next;
    int refs;
    char *db_path;
    char *key_path;
    cellar_keyring *keyring;
    sqlite3_vfs *root;
    sqlite3_file *peek;         /* a read-only handle on the main file (root VFS), opened lazily */
    cellar_cell_cipher *mac;    /* authenticates the key file and nothing else */
    uint64_t generation;        /* of the key file when last loaded; never goes back */
    uint32_t mode;
    uint32_t active;
    cv_version vers[CELLAR_SQLITE_MAX_VERSIONS];
    uint32_t nvers;
    struct stat st; /* of the key file when last loaded */
    /* The WAL index regions as mapped in this process (one mapping per database, shared by its
     * connections), to check that a frame SQLite reads is the one its index names for the page. */
    volatile void *shm[CV_SHM_REGIONS];
    int shm_users;
    /* The change counter of the last page 1 that authenticated in this process (under
     * cv_peek_mu), to refuse an older journal when page 1 itself does not authenticate. */
    uint32_t seen_counter;
    int seen_counter_set;
} cv_keyset;

/* One lock for the registry and every keyset: page operations hold it only to pick a cipher. */
static pthread_mutex_t cv_mu = PTHREAD_MUTEX_INITIALIZER;
static cv_keyset *cv_keysets = NULL;

typedef struct cv_entry {
    uint32_t version;
    uint16_t blob_len;
    const uint8_t *blob;
} cv_entry;

typedef struct cv_keyfile {
    uint8_t *data;
    size_t len;
    uint32_t format;
    uint32_t mode;
    uint32_t active;
    uint32_t n;
    uint64_t generation;
    cv_entry e[CELLAR_SQLITE_MAX_VERSIONS];
    cv_entry file_key;  /* format 2: the wrapped key of the key file's MAC */
    size_t body_len;    /* format 2: bytes covered by the MAC (all before it) */
} cv_keyfile;

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }
static void put64(uint8_t *p, uint64_t v) {
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

/* Key file, format 2 (README.md, docs/FORMATS.md):
 *   "CELLARSQ" | format 2 (1) | mode (1) | 0 (2) | active (u32 BE) | count (u32 BE) |
 *   generation (u64 BE) | count * (version (u32 BE) | blob_len (u16 BE) | keyring blob) |
 *   file key blob_len (u16 BE) | file key blob | MAC (33)
 * MAC = a RANDOMIZED Cellar cell (AES-256-GCM, random nonce) of no plaintext under the file key,
 * bound to the context "cellar sqlite key file v2" | every byte before the MAC.
 * Format 1 is the same without generation, file key and MAC (read only to migrate). */
static int keyfile_parse(cv_keyfile *kf) {
    const uint8_t *p = kf->data;
    size_t len = kf->len;
    if (len < KEYFILE_V1_HDR || memcmp(p, KEYFILE_MAGIC, 8) != 0 ||
        (p[8] != KEYFILE_FORMAT && p[8] != KEYFILE_FORMAT_V1) ||
        (p[9] != CELLAR_PAGE_XTS && p[9] != CELLAR_PAGE_GCM) || p[10] != 0 || p[11] != 0)
        return -1;
    kf->format = p[8];
    kf->mode = p[9];
    kf->active = get32(p + 12);
    kf->n = get32(p + 16);
    size_t off = KEYFILE_V1_HDR;
    if (kf->format == KEYFILE_FORMAT) {
        if (len < KEYFILE_HDR + 2 + KEYFILE_MAC_LEN) return -1;
        kf->generation = get64(p + 20);
        off = KEYFILE_HDR;
        len -= KEYFILE_MAC_LEN;
    }
    if (kf->n == 0 || kf->n > CELLAR_SQLITE_MAX_VERSIONS) return -1;
    int have_active = 0;
    for (uint32_t i = 0; i < kf->n; i++) {
        if (off + 6 > len) return -1;
        kf->e[i].version = get32(p + off);
        kf->e[i].blob_len = (uint16_t)(p[off + 4] << 8 | p[off + 5]);
        off += 6;
        if (kf->e[i].blob_len == 0 || off + kf->e[i].blob_len > len) return -1;
        kf->e[i].blob = p + off;
        off += kf->e[i].blob_len;
        if (kf->e[i].version == kf->active) have_active = 1;
        for (uint32_t j = 0; j < i; j++)
            if (kf->e[j].version == kf->e[i].version) return -1;
    }
    if (kf->format == KEYFILE_FORMAT) {
        if (off + 2 > len) return -1;
        kf->file_key.blob_len = (uint16_t)(p[off] << 8 | p[off + 1]);
        off += 2;
        if (kf->file_key.blob_len == 0 || off + kf->file_key.blob_len > len) return -1;
        kf->file_key.blob = p + off;
        off += kf->file_key.blob_len;
        kf->body_len = off;
    }
    return (off == len && have_active) ? 0 : -1;
}

static int keyfile_read(const char *path, cv_keyfile *kf, struct stat *st) {
    memset(kf, 0, sizeof *kf);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? SQLITE_NOTFOUND : SQLITE_CANTOPEN;
    if (fstat(fd, st) != 0 || st->st_size <= 0 || st->st_size > 1 << 20) {
        close(fd);
        cv_error(SQLITE_CANTOPEN, "%s: not a Cellar key file (size)", path);
        return SQLITE_CANTOPEN;
    }
    kf->len = (size_t)st->st_size;
    kf->data = malloc(kf->len);
    ssize_t got = kf->data ? read(fd, kf->data, kf->len) : -1;
    close(fd);
    if (got != (ssize_t)kf->len || keyfile_parse(kf) != 0) {
        free(kf->data);
        kf->data = NULL;
        cv_error(SQLITE_CANTOPEN, "%s: not a Cellar key file (bad layout)", path);
        return SQLITE_CANTOPEN;
    }
    return SQLITE_OK;
}

/* The MAC context: label | body. Caller frees. */
static uint8_t *keyfile_mac_context(const uint8_t *body, size_t body_len, size_t *ctx_len) {
    size_t l = sizeof keyfile_mac_label - 1;
    uint8_t *ctx = malloc(l + body_len);
    if (!ctx) return NULL;
    memcpy(ctx, keyfile_mac_label, l);
    memcpy(ctx + l, body, body_len);
    *ctx_len = l + body_len;
    return ctx;
}

/* Checks a format-2 key file's MAC under `mac`. */
static int keyfile_verify(const cv_keyfile *kf, const cellar_cell_cipher *mac) {
    size_t ctx_len = 0, out_len = 0;
    uint8_t *ctx = keyfile_mac_context(kf->data, kf->body_len, &ctx_len), dummy[1];
    if (!ctx) return SQLITE_NOMEM;
    cellar_status st = cellar_cell_decrypt(mac, ctx, ctx_len, kf->data + kf->body_len, KEYFILE_MAC_LEN, dummy,
                                           sizeof dummy, &out_len);
    free(ctx);
    return st == CELLAR_OK && out_len == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
}

/* Builds a format-2 key file sealed under `mac`. */
static uint8_t *keyfile_build(uint32_t mode, uint32_t active, uint64_t generation, const cv_entry *e, uint32_t n,
                              const cv_entry *file_key, const cellar_cell_cipher *mac, size_t *out_len) {
    size_t len = KEYFILE_HDR + 2 + file_key->blob_len + KEYFILE_MAC_LEN;
    for (uint32_t i = 0; i < n; i++) len += 6 + e[i].blob_len;
    uint8_t *p = calloc(1, len);
    if (!p) return NULL;
    memcpy(p, KEYFILE_MAGIC, 8);
    p[8] = KEYFILE_FORMAT;
    p[9] = (uint8_t)mode;
    put32(p + 12, active);
    put32(p + 16, n);
    put64(p + 20, generation);
    size_t off = KEYFILE_HDR;
    for (uint32_t i = 0; i < n; i++) {
        put32(p + off, e[i].version);
        p[off + 4] = (uint8_t)(e[i].blob_len >> 8);
        p[off + 5] = (uint8_t)e[i].blob_len;
        memcpy(p + off + 6, e[i].blob, e[i].blob_len);
        off += 6 + e[i].blob_len;
    }
    p[off] = (uint8_t)(file_key->blob_len >> 8);
    p[off + 1] = (uint8_t)file_key->blob_len;
    memcpy(p + off + 2, file_key->blob, file_key->blob_len);
    off += 2 + file_key->blob_len;
    size_t ctx_len = 0, mac_len = 0;
    uint8_t *ctx = keyfile_mac_context(p, off, &ctx_len);
    cellar_status st = ctx ? cellar_cell_encrypt(mac, ctx, ctx_len, NULL, 0, p + off, KEYFILE_MAC_LEN, &mac_len)
                           : CELLAR_ERR_INTERNAL;
    free(ctx);
    if (st != CELLAR_OK || mac_len != KEYFILE_MAC_LEN) {
        cv_cellar_error(SQLITE_CANTOPEN, "cannot seal the key file", st);
        free(p);
        return NULL;
    }
    *out_len = len;
    return p;
}

static void fsync_dir_of(const char *path) {
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Writes the key file atomically: a synced temporary file, then link() when `exclusive` (fails
 * with SQLITE_BUSY if another process created it first) or rename(). */
static int keyfile_write(const char *path, const uint8_t *data, size_t len, int exclusive) {
    size_t n = strlen(path) + 64;
    char *tmp = malloc(n);
    if (!tmp) return SQLITE_NOMEM;
    static unsigned counter;
    snprintf(tmp, n, "%s.tmp-%ld-%u", path, (long)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = SQLITE_OK;
    if (fd < 0) rc = SQLITE_CANTOPEN;
    else {
        if (write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) rc = SQLITE_IOERR_WRITE;
        close(fd);
        if (rc == SQLITE_OK) {
            if (exclusive) {
                if (link(tmp, path) != 0) rc = errno == EEXIST ? SQLITE_BUSY : SQLITE_CANTOPEN;
            } else if (rename(tmp, path) != 0) {
                rc = SQLITE_IOERR_WRITE;
            }
        }
        unlink(tmp);
        if (rc == SQLITE_OK) fsync_dir_of(path);
    }
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) cv_error(rc, "%s: cannot write key file (%s)", path, strerror(errno));
    free(tmp);
    return rc;
}

static uint32_t key_type_of(uint32_t mode) {
    return mode == CELLAR_PAGE_XTS ? CELLAR_KEY_AES256_XTS : CELLAR_KEY_AES256;
}

/* The MAC cipher of a key file from its wrapped file key. */
static int mac_from_blob(cellar_keyring *kr, const cv_entry *blob, const char *key_path, cellar_cell_cipher **out) {
    cellar_key *key = NULL;
    uint32_t tenant_version = 0, type = 0;
    cellar_status st = cellar_keyring_unwrap(kr, blob->blob, blob->blob_len, &key, &tenant_version);
    if (st != CELLAR_OK) {
        cv_cellar_error(SQLITE_CANTOPEN, "cannot unwrap the key file's key (wrong keyring?)", st);
        return SQLITE_CANTOPEN;
    }
    if (cellar_key_type(key, &type) != CELLAR_OK || type != CELLAR_KEY_AES256) {
        cellar_key_free(key);
        cv_error(SQLITE_CANTOPEN, "%s: the key file's key is not AES-256", key_path);
        return SQLITE_CANTOPEN;
    }
    st = cellar_cell_cipher_new(key, CELLAR_CELL_RANDOMIZED, 1, out);
    cellar_key_free(key);
    if (st != CELLAR_OK) {
        cv_cellar_error(SQLITE_CANTOPEN, "cannot make the key file's MAC", st);
        return SQLITE_CANTOPEN;
    }
    return SQLITE_OK;
}

/* Checks a key file read from disk against what this process trusts: its MAC (under the key
 * file's own key, unwrapped once per keyset and kept: while the keyset lives, a key file of
 * another database does not verify; the MAC does not name the database, so a fresh process
 * verifies any authentic key file of the tenant and the database's page 1 decides), its
 * generation (never lower than one loaded before) and its mode. */
static int keyset_check(cv_keyset *ks, const cv_keyfile *kf) {
    if (kf->format != KEYFILE_FORMAT) {
        cv_error(SQLITE_CANTOPEN, "%s: key file format %u is not authenticated; migrate it once with cellar-sqlite migrate "
                 "(or open with ?cellar_migrate=1)", ks->key_path, kf->format);
        return SQLITE_CANTOPEN;
    }
    if (!ks->mac) {
        int rc = mac_from_blob(ks->keyring, &kf->file_key, ks->key_path, &ks->mac);
        if (rc != SQLITE_OK) return rc;
    }
    int rc = keyfile_verify(kf, ks->mac);
    if (rc != SQLITE_OK) {
        cv_error(SQLITE_CANTOPEN, "%s: key file does not authenticate (changed, truncated or reordered, or another "
                 "database's key file put in its place while the database is open here)", ks->key_path);
        return rc == SQLITE_NOMEM ? rc : SQLITE_CANTOPEN;
    }
    if (kf->generation < ks->generation) {
        cv_error(SQLITE_CANTOPEN, "%s: key file generation went back from %llu to %llu (an older copy replaced it)",
                 ks->key_path, (unsigned long long)ks->generation, (unsigned long long)kf->generation);
        return SQLITE_CANTOPEN;
    }
    if (ks->mode && kf->mode != ks->mode) {
        cv_error(SQLITE_CANTOPEN, "%s: page mode changed", ks->key_path);
        return SQLITE_CANTOPEN;
    }
    return SQLITE_OK;
}

/* Reads and checks the key file. Caller holds cv_mu and frees kf->data. */
static int keyset_load(cv_keyset *ks, cv_keyfile *kf, struct stat *st) {
    int rc = keyfile_read(ks->key_path, kf, st);
    if (rc == SQLITE_NOTFOUND) {
        cv_error(SQLITE_CANTOPEN, "%s: key file missing", ks->key_path);
        rc = SQLITE_CANTOPEN;
    }
    if (rc == SQLITE_OK) rc = keyset_check(ks, kf);
    if (rc != SQLITE_OK) {
        free(kf->data);
        kf->data = NULL;
    }
    return rc;
}

/* Writes a new generation of the key file: `e`/`n` as the versions, `active`, `file_key` (the
 * current blob of the MAC key, possibly rewrapped). Caller holds cv_mu. */
static int keyset_store(cv_keyset *ks, uint64_t cur_generation, uint32_t active, const cv_entry *e, uint32_t n,
                        const cv_entry *file_key) {
    size_t len = 0;
    uint8_t *data = keyfile_build(ks->mode, active, cur_generation + 1, e, n, file_key, ks->mac, &len);
    int rc = data ? keyfile_write(ks->key_path, data, len, 0) : SQLITE_NOMEM;
    free(data);
    return rc;
}

/* Unwraps the entries of `kf` not loaded yet and makes their ciphers. Caller holds cv_mu and
 * has checked `kf` (keyset_check). */
static int keyset_absorb(cv_keyset *ks, const cv_keyfile *kf) {
    for (uint32_t i = 0; i < kf->n; i++) {
        int known = 0;
        for (uint32_t j = 0; j < ks->nvers; j++) known |= ks->vers[j].version == kf->e[i].version;
        if (known) continue;
        if (ks->nvers == CELLAR_SQLITE_MAX_VERSIONS) return SQLITE_FULL;
        cellar_key *key = NULL;
        uint32_t tenant_version = 0, type = 0;
        cellar_status st = cellar_keyring_unwrap(ks->keyring, kf->e[i].blob, kf->e[i].blob_len, &key, &tenant_version);
        if (st != CELLAR_OK) {
            cv_cellar_error(SQLITE_CANTOPEN, "cannot unwrap the page key (wrong keyring?)", st);
            return SQLITE_CANTOPEN;
        }
        if (cellar_key_type(key, &type) != CELLAR_OK || type != key_type_of(ks->mode)) {
            cellar_key_free(key);
            cv_error(SQLITE_CANTOPEN, "%s: page key type does not match the mode", ks->key_path);
            return SQLITE_CANTOPEN;
        }
        cv_version *v = &ks->vers[ks->nvers];
        memset(v, 0, sizeof *v);
        v->version = kf->e[i].version;
        /* A main-file page must always authenticate: no CELLAR_PAGE_ZERO_IS_EMPTY anywhere. */
        st = cellar_page_cipher_new(key, ks->mode, role_file_id[ROLE_MAIN], v->version, 0, &v->main);
        if (st != CELLAR_OK) {
            cellar_key_free(key);
            cv_cellar_error(SQLITE_CANTOPEN, "cannot make a page cipher", st);
            return SQLITE_CANTOPEN;
        }
        v->key = key;
        ks->nvers++;
    }
    ks->active = kf->active;
    ks->generation = kf->generation;
    return SQLITE_OK;
}

/* Re-reads the key file (another process or connection re-keyed). Caller holds cv_mu. */
static int keyset_reload(cv_keyset *ks) {
    cv_keyfile kf;
    struct stat st;
    int rc = keyset_load(ks, &kf, &st);
    if (rc != SQLITE_OK) return rc;
    rc = keyset_absorb(ks, &kf);
    if (rc == SQLITE_OK) ks->st = st;
    free(kf.data);
    return rc;
}

static int keyfile_changed(const cv_keyset *ks) {
    struct stat st;
    if (stat(ks->key_path, &st) != 0) return 0;
    return st.st_ino != ks->st.st_ino || st.st_size != ks->st.st_size ||
           st.st_mtim.tv_sec != ks->st.st_mtim.tv_sec || st.st_mtim.tv_nsec != ks->st.st_mtim.tv_nsec;
}

/* Makes a new data key of `type`, wraps it under the keyring's active version; optionally
 * returns the key too. */
static int new_wrapped_key(cellar_keyring *kr, uint32_t type, uint8_t *blob, size_t cap, size_t *len,
                           cellar_key **out_key) {
    cellar_key *key = NULL;
    cellar_status st = cellar_key_generate(type, &key);
    if (st == CELLAR_OK) st = cellar_keyring_wrap(kr, key, blob, cap, len);
    if (st == CELLAR_OK && out_key) {
        *out_key = key;
        key = NULL;
    }
    cellar_key_free(key);
    if (st != CELLAR_OK) {
        cv_cellar_error(SQLITE_CANTOPEN, "cannot make a key", st);
        return SQLITE_CANTOPEN;
    }
    return SQLITE_OK;
}

/* Writes a new key file (format 2, generation 1) holding `e`/`n` under a fresh file key.
 * `exclusive`: create only (SQLITE_BUSY when one exists). */
static int keyfile_create(cellar_keyring *kr, const char *key_path, uint32_t mode, uint32_t active, const cv_entry *e,
                          uint32_t n, int exclusive) {
    uint8_t fk_blob[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t fk_len = 0, len = 0;
    cellar_key *fk = NULL;
    cellar_cell_cipher *mac = NULL;
    int rc = new_wrapped_key(kr, CELLAR_KEY_AES256, fk_blob, sizeof fk_blob, &fk_len, &fk);
    if (rc != SQLITE_OK) return rc;
    cellar_status st = cellar_cell_cipher_new(fk, CELLAR_CELL_RANDOMIZED, 1, &mac);
    cellar_key_free(fk);
    if (st != CELLAR_OK) {
        cv_cellar_error(SQLITE_CANTOPEN, "cannot make the key file's MAC", st);
        return SQLITE_CANTOPEN;
    }
    cv_entry fke = {0, (uint16_t)fk_len, fk_blob};
    uint8_t *data = keyfile_build(mode, active, 1, e, n, &fke, mac, &len);
    cellar_cell_cipher_free(mac);
    rc = data ? keyfile_write(key_path, data, len, exclusive) : SQLITE_NOMEM;
    free(data);
    return rc;
}

static void keyset_free(cv_keyset *ks) {
    for (uint32_t i = 0; i < ks->nvers; i++) {
        cellar_page_cipher_free(ks->vers[i].main);
        cellar_key_free(ks->vers[i].key);
    }
    cellar_cell_cipher_free(ks->mac);
    if (ks->peek) {
        if (ks->peek->pMethods) ks->peek->pMethods->xClose(ks->peek);
        free(ks->peek);
    }
    free(ks->db_path);
    free(ks->key_path);
    free(ks);
}

/* Finds the keyset of `db_path` (taking a reference) or, for a main database, loads its key
 * file, creating one in `mode` when `may_create` and none exists; a format-1 key file is
 * upgraded when `migrate`. The key file's generation must be at least `min_generation`. */
static int keyset_acquire(cellar_keyring *kr, sqlite3_vfs *root, const char *db_path, int is_main, int may_create,
                          uint32_t mode, int migrate, uint64_t min_generation, cv_keyset **out) {
    pthread_mutex_lock(&cv_mu);
    for (cv_keyset *k = cv_keysets; k; k = k->next) {
        if (strcmp(k->db_path, db_path) == 0 && k->keyring == kr) {
            if (is_main && k->generation < min_generation) {
                /* Another connection has it open: look at the file as it is now. */
                int rc = keyset_reload(k);
                if (rc == SQLITE_OK && k->generation < min_generation) {
                    cv_error(SQLITE_CANTOPEN, "%s: key file generation %llu is below the %llu the host expects",
                             k->key_path, (unsigned long long)k->generation, (unsigned long long)min_generation);
                    rc = SQLITE_CANTOPEN;
                }
                if (rc != SQLITE_OK) {
                    pthread_mutex_unlock(&cv_mu);
                    return SQLITE_CANTOPEN;
                }
            }
            k->refs++;
            pthread_mutex_unlock(&cv_mu);
            *out = k;
            return SQLITE_OK;
        }
    }
    if (!is_main) {
        pthread_mutex_unlock(&cv_mu);
        cv_error(SQLITE_CANTOPEN, "%s: journal or WAL opened without its database", db_path);
        return SQLITE_CANTOPEN;
    }
    int rc = SQLITE_NOMEM;
    cv_keyset *ks = calloc(1, sizeof *ks);
    if (ks) {
        ks->db_path = strdup(db_path);
        ks->key_path = malloc(strlen(db_path) + sizeof CELLAR_SQLITE_KEYFILE_SUFFIX);
        ks->keyring = kr;
        ks->root = root;
    }
    if (ks && ks->db_path && ks->key_path) {
        strcpy(ks->key_path, db_path);
        strcat(ks->key_path, CELLAR_SQLITE_KEYFILE_SUFFIX);
        cv_keyfile kf;
        for (int attempt = 0; attempt < 3; attempt++) {
            rc = keyfile_read(ks->key_path, &kf, &ks->st);
            if (rc == SQLITE_OK && kf.format == KEYFILE_FORMAT_V1 && migrate) {
                /* Trusted once, on the host's word, and rewritten authenticated. */
                rc = keyfile_create(kr, ks->key_path, kf.mode, kf.active, kf.e, kf.n, 0);
                free(kf.data);
                if (rc != SQLITE_OK) break;
                sqlite3_log(SQLITE_NOTICE, "cellar vfs: %s: key file migrated to format 2", ks->key_path);
                continue;
            }
            if (rc == SQLITE_OK) {
                rc = keyset_check(ks, &kf);
                if (rc == SQLITE_OK) {
                    ks->mode = kf.mode;
                    rc = keyset_absorb(ks, &kf);
                }
                if (rc == SQLITE_OK && ks->generation < min_generation) {
                    cv_error(SQLITE_CANTOPEN, "%s: key file generation %llu is below the %llu the host expects",
                             ks->key_path, (unsigned long long)ks->generation, (unsigned long long)min_generation);
                    rc = SQLITE_CANTOPEN;
                }
                free(kf.data);
                break;
            }
            if (rc != SQLITE_NOTFOUND) break;
            if (!may_create) {
                cv_error(SQLITE_CANTOPEN, "%s: no key file (not a Cellar database)", db_path);
                rc = SQLITE_CANTOPEN;
                break;
            }
            uint8_t blob[CELLAR_KEYRING_MAX_WRAPPED_LEN];
            size_t blob_len = 0;
            rc = new_wrapped_key(kr, key_type_of(mode), blob, sizeof blob, &blob_len, NULL);
            if (rc != SQLITE_OK) break;
            cv_entry e = {1, (uint16_t)blob_len, blob};
            rc = keyfile_create(kr, ks->key_path, mode, 1, &e, 1, 1);
            if (rc == SQLITE_BUSY) continue; /* another process created it: load theirs */
            if (rc != SQLITE_OK) break;
        }
    }
    if (rc == SQLITE_OK) {
        ks->refs = 1;
        ks->next = cv_keysets;
        cv_keysets = ks;
        *out = ks;
    } else if (ks) {
        keyset_free(ks);
    }
    pthread_mutex_unlock(&cv_mu);
    return rc;
}

static void keyset_release(cv_keyset *ks) {
    if (!ks) return;
    pthread_mutex_lock(&cv_mu);
    if (--ks->refs == 0) {
        for (cv_keyset **pp = &cv_keysets; *pp; pp = &(*pp)->next) {
            if (*pp == ks) {
                *pp = ks->next;
                break;
            }
        }
        keyset_free(ks);
    }
    pthread_mutex_unlock(&cv_mu);
}

/* The main-file cipher of `version` (reloading the key file once if the version is new to us);
 * version 0 means the active one. Ciphers live as long as the keyset. */
static cellar_page_cipher *keyset_cipher(cv_keyset *ks, uint32_t version) {
    cellar_page_cipher *c = NULL;
    pthread_mutex_lock(&cv_mu);
    if (version == 0) version = ks->active;
    for (int pass = 0; pass < 2 && !c; pass++) {
        for (uint32_t i = 0; i < ks->nvers; i++)
            if (ks->vers[i].version == version) c = ks->vers[i].main;
        if (!c && pass == 0 && keyset_reload(ks) != SQLITE_OK) break;
    }
    pthread_mutex_unlock(&cv_mu);
    return c;
}

/* A new page cipher of `version` (0: the active one) for a log, under `file_id`. */
static cellar_page_cipher *keyset_log_cipher(cv_keyset *ks, uint32_t *version, uint64_t file_id) {
    cellar_page_cipher *c = NULL;
    pthread_mutex_lock(&cv_mu);
    if (*version == 0) *version = ks->active;
    for (int pass = 0; pass < 2 && !c; pass++) {
        for (uint32_t i = 0; i < ks->nvers && !c; i++)
            if (ks->vers[i].version == *version &&
                cellar_page_cipher_new(ks->vers[i].key, ks->mode, file_id, *version, 0, &c) != CELLAR_OK)
                break;
        if (!c && pass == 0 && keyset_reload(ks) != SQLITE_OK) break;
    }
    pthread_mutex_unlock(&cv_mu);
    return c;
}

/* ---------------------------------------------------------------- files */

typedef struct cv_vfs {
    sqlite3_vfs base;
    sqlite3_vfs *root;
    cellar_keyring *keyring;
    uint32_t default_mode;
} cv_vfs;

#define CV_LOGC 4

typedef struct cv_file {
    sqlite3_file base;
    sqlite3_file *real;
    cv_keyset *ks;
    int role;
    uint32_t pgsz; /* main file: known page size, 0 until found */
    uint8_t *buf;  /* scratch for encrypting (SQLite's buffers are const) */
    size_t bufcap;
    /* logs: page ciphers by (key version, file id), made per log generation */
    struct {
        uint32_t version;
        uint64_t file_id;
        cellar_page_cipher *c;
    } logc[CV_LOGC];
    unsigned logc_next;
    /* journal: the generation this handle wrote into the header at offset 0 */
    uint64_t jgen;
    int jgen_set;
    /* journal: the pin verdict for pin_gen (0 not known, 1 pinned, 2 refused) */
    uint64_t pin_gen;
    int pin_state;
    /* main file: this handle has the WAL index mapped (counted in ks->shm_users) */
    int shm_mapped;
} cv_file;

#define CV_FILE_SZ ((sizeof(cv_file) + 15) & ~(size_t)15)

static const sqlite3_io_methods cv_io_methods;

static int valid_pgsz(sqlite3_int64 n) {
    return n >= 512 && n <= 65536 && (n & (n - 1)) == 0;
}

static uint8_t *file_buf(cv_file *f, size_t need) {
    if (f->bufcap < need) {
        uint8_t *b = realloc(f->buf, need);
        if (!b) return NULL;
        f->buf = b;
        f->bufcap = need;
    }
    return f->buf;
}

/* Decrypts one main-file page in place. GCM: picks the cipher of the version in the trailer. */
static cellar_status main_decrypt(cv_keyset *ks, uint64_t page_no, uint8_t *page, size_t n) {
    uint32_t version = 0;
    if (ks->mode == CELLAR_PAGE_GCM && cellar_page_key_version(page, n, &version) != CELLAR_OK)
        version = 0; /* no trailer: the active cipher decides (and refuses) */
    cellar_page_cipher *c = keyset_cipher(ks, version);
    if (!c) {
        memset(page, 0, n);
        return CELLAR_ERR_KEY_NOT_FOUND;
    }
    return cellar_page_decrypt(c, page_no, page, page, n);
}

static cellar_status page_decrypt(cv_file *f, uint64_t page_no, uint8_t *page, size_t n) {
    return main_decrypt(f->ks, page_no, page, n);
}

static int page_encrypt(cv_file *f, uint64_t page_no, const void *in, size_t n, uint8_t **out) {
    uint8_t *b = file_buf(f, n);
    if (!b) return SQLITE_NOMEM;
    cellar_page_cipher *c = keyset_cipher(f->ks, 0);
    cellar_status st = c ? cellar_page_encrypt(c, page_no, in, b, n) : CELLAR_ERR_KEY_NOT_FOUND;
    if (st != CELLAR_OK) {
        cv_cellar_error(SQLITE_IOERR_WRITE, "page encryption failed", st);
        return SQLITE_IOERR_WRITE;
    }
    *out = b;
    return SQLITE_OK;
}

/* The cipher of a log generation (`file_id`) under key `version` (0: the active one), cached
 * on the handle. */
static cellar_page_cipher *log_cipher(cv_file *f, uint32_t version, uint64_t file_id) {
    if (version == 0) {
        pthread_mutex_lock(&cv_mu);
        version = f->ks->active;
        pthread_mutex_unlock(&cv_mu);
    }
    for (int i = 0; i < CV_LOGC; i++)
        if (f->logc[i].c && f->logc[i].version == version && f->logc[i].file_id == file_id) return f->logc[i].c;
    cellar_page_cipher *c = keyset_log_cipher(f->ks, &version, file_id);
    if (!c) return NULL;
    unsigned slot = f->logc_next++ % CV_LOGC;
    cellar_page_cipher_free(f->logc[slot].c);
    f->logc[slot].version = version;
    f->logc[slot].file_id = file_id;
    f->logc[slot].c = c;
    return c;
}

/* Decrypts a log page image in place; on failure the page is zeros. */
static cellar_status log_decrypt(cv_file *f, uint64_t file_id, uint64_t page_no, uint8_t *page, size_t n) {
    uint32_t version = 0;
    if (f->ks->mode == CELLAR_PAGE_GCM && cellar_page_key_version(page, n, &version) != CELLAR_OK) {
        memset(page, 0, n); /* no trailer: nothing to authenticate */
        return CELLAR_ERR_AUTHENTICATION_FAILED;
    }
    cellar_page_cipher *c = log_cipher(f, version, file_id);
    if (!c) {
        memset(page, 0, n);
        return CELLAR_ERR_KEY_NOT_FOUND;
    }
    return cellar_page_decrypt(c, page_no, page, page, n);
}

static int log_encrypt(cv_file *f, uint64_t file_id, uint64_t page_no, const void *in, size_t n, uint8_t **out) {
    uint8_t *b = file_buf(f, n);
    if (!b) return SQLITE_NOMEM;
    cellar_page_cipher *c = log_cipher(f, 0, file_id);
    cellar_status st = c ? cellar_page_encrypt(c, page_no, in, b, n) : CELLAR_ERR_KEY_NOT_FOUND;
    if (st != CELLAR_OK) {
        cv_cellar_error(SQLITE_IOERR_WRITE, "log page encryption failed", st);
        return SQLITE_IOERR_WRITE;
    }
    *out = b;
    return SQLITE_OK;
}

static uint32_t header_page_size(const uint8_t *p) {
    uint32_t s = (uint32_t)p[16] << 8 | p[17];
    return s == 1 ? 65536 : s;
}

/* Checks a decrypted page 1 of `size` bytes: SQLite's magic, its page size, and (GCM) room for
 * the trailer in the reserved bytes. */
static int page1_plausible_mode(uint32_t mode, const uint8_t *p, uint32_t size) {
    return memcmp(p, "SQLite format 3", 16) == 0 && header_page_size(p) == size &&
           (mode != CELLAR_PAGE_GCM || p[20] >= CELLAR_PAGE_GCM_TRAILER_LEN);
}
static int page1_plausible(const cv_file *f, const uint8_t *p, uint32_t size) {
    return page1_plausible_mode(f->ks->mode, p, size);
}

/* Reads page 1 of the main file as it is on disk, through the keyset's own read-only handle
 * (a root-VFS handle: closing it never drops SQLite's POSIX locks). Returns 1 with the file
 * change counter when page 1 authenticates, 0 when the file is empty, -1 otherwise. */
static pthread_mutex_t cv_peek_mu = PTHREAD_MUTEX_INITIALIZER;
static int main_change_counter(cv_keyset *ks, uint32_t P, uint32_t *out) {
    if (!valid_pgsz(P)) return -1;
    int result = -1;
    pthread_mutex_lock(&cv_peek_mu);
    if (!ks->peek) {
        sqlite3_file *h = calloc(1, (size_t)ks->root->szOsFile);
        int outfl = 0;
        if (h && ks->root->xOpen(ks->root, ks->db_path, h, SQLITE_OPEN_READONLY | SQLITE_OPEN_MAIN_DB, &outfl) == SQLITE_OK)
            ks->peek = h;
        else
            free(h);
    }
    sqlite3_int64 size = 0;
    uint8_t *b = ks->peek ? malloc(P) : NULL;
    if (b && ks->peek->pMethods->xFileSize(ks->peek, &size) == SQLITE_OK) {
        if (size == 0) {
            *out = 0;
            result = 0;
        } else if (ks->peek->pMethods->xRead(ks->peek, b, (int)P, 0) == SQLITE_OK &&
                   main_decrypt(ks, 1, b, P) == CELLAR_OK && page1_plausible_mode(ks->mode, b, P)) {
            *out = get32(b + 24);
            result = 1;
            ks->seen_counter = *out;
            ks->seen_counter_set = 1;
        }
    }
    if (b) cv_free_wiped(b, P);
    pthread_mutex_unlock(&cv_peek_mu);
    return result;
}

/* Finds the page size of a non-empty main file by decrypting page 1 at each candidate size. */
static int detect_pgsz(cv_file *f) {
    sqlite3_int64 fsize = 0;
    int rc = f->real->pMethods->xFileSize(f->real, &fsize);
    if (rc != SQLITE_OK) return rc;
    if (fsize == 0) return SQLITE_IOERR_SHORT_READ;
    size_t n = fsize < 65536 ? (size_t)fsize : 65536;
    uint8_t *raw = malloc(n), *tmp = malloc(n);
    if (!raw || !tmp) {
        free(raw);
        free(tmp);
        return SQLITE_NOMEM;
    }
    rc = f->real->pMethods->xRead(f->real, raw, (int)n, 0);
    if (rc == SQLITE_OK) {
        rc = SQLITE_IOERR_DATA;
        for (uint32_t s = 512; s <= n; s *= 2) {
            memcpy(tmp, raw, s);
            if (page_decrypt(f, 1, tmp, s) == CELLAR_OK && page1_plausible(f, tmp, s)) {
                f->pgsz = s;
                rc = SQLITE_OK;
                break;
            }
        }
        if (rc != SQLITE_OK)
            cv_error(rc, "%s: page 1 does not decrypt at any page size (wrong key or tampered)", f->ks->db_path);
    }
    free(raw);
    cv_free_wiped(tmp, n);
    return rc;
}

/* Reads and decrypts whole page `pgno` (1-based) of the main file into `out`. */
static int main_read_page(cv_file *f, uint8_t *out, uint32_t pgno) {
    uint32_t P = f->pgsz;
    int rc = f->real->pMethods->xRead(f->real, out, (int)P, (sqlite3_int64)(pgno - 1) * P);
    if (rc == SQLITE_IOERR_SHORT_READ) {
        memset(out, 0, P);
        sqlite3_int64 size = 0;
        if (f->ks->mode == CELLAR_PAGE_GCM &&
            (f->real->pMethods->xFileSize(f->real, &size) != SQLITE_OK || size > 0)) {
            /* A page cut short, or missing from a non-empty file, is not an authenticated page:
             * SQLite would take the zeros as its content. */
            cv_error(SQLITE_IOERR_DATA, "%s: page %u is cut short (the file ends at byte %lld): not authenticated",
                     f->ks->db_path, pgno, (long long)size);
            return SQLITE_IOERR_DATA;
        }
        return rc; /* an empty file (a new database): SQLite reads zeros */
    }
    if (rc != SQLITE_OK) return rc;
    cellar_status st = page_decrypt(f, pgno, out, P);
    if (st != CELLAR_OK) {
        cv_cellar_error(SQLITE_IOERR_DATA, "main database page failed to decrypt", st);
        return SQLITE_IOERR_DATA;
    }
    if (pgno == 1 && page1_plausible(f, out, P)) {
        /* Remembered while the database is open in this process (journal_pinned). */
        pthread_mutex_lock(&cv_peek_mu);
        f->ks->seen_counter = get32(out + 24);
        f->ks->seen_counter_set = 1;
        pthread_mutex_unlock(&cv_peek_mu);
    }
    return SQLITE_OK;
}

static int main_read(cv_file *f, void *out, int amt, sqlite3_int64 off) {
    int rc;
    if (f->pgsz == 0 && (rc = detect_pgsz(f)) != SQLITE_OK) {
        memset(out, 0, (size_t)amt);
        return rc;
    }
    if (valid_pgsz(amt) && off % amt == 0) {
        /* SQLite reads whole pages of the size its (decrypted) header gave: that is the size,
         * also after another connection changed it with VACUUM. */
        f->pgsz = (uint32_t)amt;
        return main_read_page(f, out, (uint32_t)(off / amt) + 1);
    }
    /* A partial read (SQLite reads parts of page 1's header): decrypt the pages around it. */
    for (int attempt = 0; attempt < 2; attempt++) {
        uint32_t P = f->pgsz;
        uint8_t *b = malloc(P);
        if (!b) return SQLITE_NOMEM;
        rc = SQLITE_OK;
        sqlite3_int64 pos = off, end = off + amt;
        while (pos < end && (rc == SQLITE_OK || rc == SQLITE_IOERR_SHORT_READ)) {
            uint32_t pgno = (uint32_t)(pos / P) + 1;
            sqlite3_int64 pstart = (sqlite3_int64)(pgno - 1) * P;
            size_t in_page = (size_t)(pos - pstart);
            size_t take = P - in_page < (size_t)(end - pos) ? P - in_page : (size_t)(end - pos);
            int r = main_read_page(f, b, pgno);
            if (r != SQLITE_OK && r != SQLITE_IOERR_SHORT_READ) rc = r;
            else if (r == SQLITE_IOERR_SHORT_READ) rc = r;
            memcpy((uint8_t *)out + (pos - off), b + in_page, take);
            pos += (sqlite3_int64)take;
        }
        cv_free_wiped(b, P);
        /* Page 1 may have changed size under us (VACUUM in another connection): find it again. */
        if (rc == SQLITE_IOERR_DATA && off < f->pgsz && attempt == 0) {
            f->pgsz = 0;
            if (detect_pgsz(f) == SQLITE_OK) continue;
        }
        break;
    }
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) memset(out, 0, (size_t)amt);
    return rc;
}

static int main_write(cv_file *f, const void *in, int amt, sqlite3_int64 off) {
    if (!valid_pgsz(amt) || off % amt != 0) {
        cv_error(SQLITE_IOERR_WRITE, "unaligned write of %d bytes at %lld to the main database", amt, (long long)off);
        return SQLITE_IOERR_WRITE;
    }
    if (off == 0 && !page1_plausible(f, in, (uint32_t)amt)) {
        const uint8_t *p = in;
        if (memcmp(p, "SQLite format 3", 16) == 0 && header_page_size(p) != (uint32_t)amt)
            /* VACUUM to another page size copies the new layout through the pager of the old
             * one: each piece would be sealed as a page of its own. */
            cv_error(SQLITE_IOERR_WRITE, "%s: page 1 of %u bytes written in %d-byte pieces (changing the page size of a database is not supported)",
                     f->ks->db_path, header_page_size(p), amt);
        else
            cv_error(SQLITE_IOERR_WRITE, "%s: page 1 lacks the %d reserved bytes GCM needs (set SQLITE_FCNTL_RESERVE_BYTES on a new database)",
                     f->ks->db_path, CELLAR_PAGE_GCM_TRAILER_LEN);
        return SQLITE_IOERR_WRITE;
    }
    f->pgsz = (uint32_t)amt;
    uint8_t *ct = NULL;
    int rc = page_encrypt(f, (uint64_t)(off / amt) + 1, in, (size_t)amt, &ct);
    if (rc != SQLITE_OK) return rc;
    return f->real->pMethods->xWrite(f->real, ct, amt, off);
}

/* Page images in a rollback journal: whole pages at offsets = 4 mod 8 (after a record's 4-byte
 * page number; headers sit on sector boundaries and records are page size + 8 long). */
static int journal_page_io(int amt, sqlite3_int64 off) { return valid_pgsz(amt) && (off & 7) == 4; }

/* WAL: the page of frame k is at 32 + k * (24 + P) + 24. */
static int wal_page_io(int amt, sqlite3_int64 off) {
    return valid_pgsz(amt) && off >= WAL_HDR + WAL_FRAME_HDR && (off - WAL_HDR - WAL_FRAME_HDR) % (amt + WAL_FRAME_HDR) == 0;
}
/* WAL recovery reads whole frames (24-byte header + page). */
static int wal_frame_io(int amt, sqlite3_int64 off) {
    return amt > WAL_FRAME_HDR && valid_pgsz(amt - WAL_FRAME_HDR) && off >= WAL_HDR && (off - WAL_HDR) % amt == 0;
}

/* ---- journal generation */

/* The generation tag in the journal's first header, and the page size recorded there. */
static int journal_tag_read(cv_file *f, uint64_t *gen, uint32_t *pgsz) {
    uint8_t h[JTAG_OFF + JTAG_LEN];
    if (f->real->pMethods->xRead(f->real, h, (int)sizeof h, 0) != SQLITE_OK) return 0;
    if (memcmp(h + JTAG_OFF, jtag_magic, sizeof jtag_magic) != 0) return 0;
    *gen = get64(h + JTAG_OFF + 8);
    *pgsz = get32(h + 24);
    return 1;
}

static cellar_status log_decrypt(cv_file *f, uint64_t file_id, uint64_t page_no, uint8_t *page, size_t n);
static uint64_t journal_file_id(uint64_t gen);
static uint64_t journal_page_no(sqlite3_int64 off, uint32_t pgno);
static const uint8_t journal_magic[8] = {0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7};

/* For a journal whose database page 1 does not authenticate: 1 when the journal can restore it,
 * that is when it holds an authentic image of page 1 (under its own generation) whose change
 * counter is the journal's C0. SQLite writes page 1 to the database only after journaling it and
 * syncing the journal, so a real torn page 1 always has that image (except in the first
 * transaction of a new database, which journals no page: that database stays unreadable, failed
 * closed, and held nothing committed); a forged or untagged journal never does. Records are
 * walked as SQLite reads them: a header at a sector boundary (magic, record count), its records
 * after one sector, the next header at the next boundary. */
static int journal_restores_page1(cv_file *f, uint64_t gen, uint32_t P) {
    uint32_t c0 = (uint32_t)(gen >> 32);
    uint8_t h[28];
    sqlite3_int64 size = 0;
    if (!valid_pgsz(P) || f->real->pMethods->xFileSize(f->real, &size) != SQLITE_OK ||
        f->real->pMethods->xRead(f->real, h, (int)sizeof h, 0) != SQLITE_OK || memcmp(h, journal_magic, 8) != 0 ||
        get32(h + 24) != P)
        return 0;
    uint32_t sector = get32(h + 20);
    if (sector < 32 || sector > 65536 || (sector & (sector - 1)) != 0) return 0;
    uint8_t *img = malloc(P);
    if (!img) return 0;
    int found = 0, seen = 0;
    sqlite3_int64 hdr = 0;
    for (int seg = 0; seg < 1024 && !seen && hdr + (sqlite3_int64)sector <= size; seg++) {
        if (seg > 0 && (f->real->pMethods->xRead(f->real, h, (int)sizeof h, hdr) != SQLITE_OK ||
                        memcmp(h, journal_magic, 8) != 0))
            break;
        uint32_t nrec = get32(h + 8);
        sqlite3_int64 rec = hdr + sector;
        if (nrec == 0xffffffffu) nrec = (uint32_t)((size - rec) / (P + 8));
        for (uint32_t i = 0; i < nrec && rec + P + 8 <= size; i++, rec += P + 8) {
            uint8_t pn[4];
            if (f->real->pMethods->xRead(f->real, pn, 4, rec) != SQLITE_OK) break;
            if (get32(pn) != 1) continue;
            /* Page 1 is journaled once per transaction: its first image decides. */
            found = f->real->pMethods->xRead(f->real, img, (int)P, rec + 4) == SQLITE_OK &&
                    log_decrypt(f, journal_file_id(gen), journal_page_no(rec + 4, 1), img, P) == CELLAR_OK &&
                    page1_plausible(f, img, P) && get32(img + 24) == c0;
            seen = 1;
            break;
        }
        hdr = (rec + sector - 1) / sector * sector;
    }
    cv_free_wiped(img, P);
    return found;
}

/* Is a journal of generation `gen` the database's current one? Its C0 must be the change
 * counter of page 1 on disk, or one less (the crashed commit had written page 1 already). When
 * page 1 itself does not authenticate (a torn write of page 1, or an attacker who corrupted it),
 * the journal must hold an authentic image of page 1 at C0 (`journal_restores_page1`), and C0
 * must not be older than the last page 1 this process saw authenticate while the database was
 * open here, less one (docs/SECURITY.md: what remains).
 * Cached per generation. */
static int journal_pinned(cv_file *f, uint64_t gen, uint32_t P) {
    if (f->pin_state && f->pin_gen == gen) return f->pin_state == 1;
    uint32_t c0 = (uint32_t)(gen >> 32), cm = 0;
    int r = main_change_counter(f->ks, P, &cm);
    int ok;
    if (r < 0) {
        pthread_mutex_lock(&cv_peek_mu);
        int seen_set = f->ks->seen_counter_set;
        uint32_t seen = f->ks->seen_counter;
        pthread_mutex_unlock(&cv_peek_mu);
        /* The counter only grows (a rollback takes it back by one): a journal that started
         * before the last page 1 seen here, less one, is older than the database. */
        ok = (!seen_set || (int32_t)(c0 + 1 - seen) >= 0) && journal_restores_page1(f, gen, P);
        sqlite3_log(SQLITE_NOTICE, "cellar vfs: %s: page 1 fails to authenticate; the hot journal %s", f->ks->db_path,
                    ok ? "holds an authentic page 1 of its own change counter and is played back"
                       : "cannot restore an authentic page 1 and is ignored");
    } else {
        ok = r == 0 ? c0 == 0 : (c0 == cm || c0 + 1 == cm);
    }
    if (!ok && r >= 0)
        sqlite3_log(SQLITE_NOTICE, "cellar vfs: %s: journal of change counter %u does not belong to the database at %u; ignored",
                    f->ks->db_path, c0, cm);
    f->pin_gen = gen;
    f->pin_state = ok ? 1 : 2;
    return ok;
}

/* Binding of the journal image at `off`: database page number from the record (the 4 bytes
 * before the image), generation from the header (or, when writing, the one this handle made). */
static int journal_binding(cv_file *f, sqlite3_int64 off, int writing, uint32_t *pgno, uint64_t *gen) {
    uint8_t b[4];
    uint32_t P = 0;
    if (off < 4 || f->real->pMethods->xRead(f->real, b, 4, off - 4) != SQLITE_OK) return -1;
    *pgno = get32(b);
    if (writing && f->jgen_set) *gen = f->jgen;
    else if (!journal_tag_read(f, gen, &P)) return -1;
    return *pgno ? 0 : -1;
}

/* file id = 2 | C0 << 8 | R << 40 (R: 24 bits); page_no = record position << 32 | page number,
 * the position being the image's offset / 8 (mod 2^32): a record cannot move within its journal. */
static uint64_t journal_file_id(uint64_t gen) {
    return role_file_id[ROLE_JOURNAL] | (gen >> 32) << 8 | (gen & 0xffffffu) << 40;
}
static uint64_t journal_page_no(sqlite3_int64 off, uint32_t pgno) {
    return ((uint64_t)off >> 3 & 0xffffffffu) << 32 | pgno;
}

/* A journal header piece (SQLite writes the header at a sector boundary, its bytes 28.. zero):
 * the VFS records the journal's generation there. At offset 0 the journal starts a new
 * generation: C0 from page 1 of the database as committed, 32 random bits. */
static int journal_header_write(cv_file *f, const uint8_t *in, int amt, sqlite3_int64 off) {
    if (off == 0) {
        uint32_t c0 = 0, rnd = 0;
        int r = main_change_counter(f->ks, get32(in + 24), &c0);
        if (r < 0) {
            cv_error(SQLITE_IOERR_WRITE, "%s: page 1 of the database does not authenticate: no journal is started", f->ks->db_path);
            return SQLITE_IOERR_WRITE;
        }
        sqlite3_randomness(sizeof rnd, &rnd);
        f->jgen = (uint64_t)c0 << 32 | (rnd & 0xffffffu);
        f->jgen_set = 1;
        f->pin_state = 0;
    } else if (!f->jgen_set) {
        uint32_t P = 0;
        if (!journal_tag_read(f, &f->jgen, &P)) {
            cv_error(SQLITE_IOERR_WRITE, "%s: journal header at %lld without a generation", f->ks->db_path, (long long)off);
            return SQLITE_IOERR_WRITE;
        }
        f->jgen_set = 1;
    }
    uint8_t *b = file_buf(f, (size_t)amt);
    if (!b) return SQLITE_NOMEM;
    memcpy(b, in, (size_t)amt);
    memcpy(b + JTAG_OFF, jtag_magic, sizeof jtag_magic);
    put64(b + JTAG_OFF + 8, f->jgen);
    return f->real->pMethods->xWrite(f->real, b, amt, off);
}

static int is_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* ---- WAL generation: the salts of the WAL header. (A frame header's own salts are zero while
 * SQLite rewrites frames of an open transaction in place; it fills them in at commit, and its
 * recovery accepts only frames whose salts equal the header's.) */

/* Binding of the frame at `frame_off` whose 24-byte header is `fh`: file id = 3 | salt-1 (low 24
 * bits) << 8 | salt-2 << 32, from the WAL header; page_no = frame index << 32 | page number, so a
 * frame cannot move to another position in its WAL either. */
static int wal_binding(cv_file *f, const uint8_t *fh, sqlite3_int64 frame_off, uint32_t P, uint64_t *file_id,
                       uint64_t *page_no) {
    uint8_t salts[8];
    if (!get32(fh) || f->real->pMethods->xRead(f->real, salts, 8, 16) != SQLITE_OK) return -1;
    uint64_t index = (uint64_t)(frame_off - WAL_HDR) / (P + WAL_FRAME_HDR);
    *file_id = role_file_id[ROLE_WAL] | (uint64_t)(get32(salts) & 0xffffffu) << 8 | (uint64_t)get32(salts + 4) << 32;
    *page_no = (index & 0xffffffffu) << 32 | get32(fh);
    return 0;
}

/* The page number SQLite's WAL index records for frame `iframe` (1-based), 0 when not known here
 * (index not mapped by this process, e.g. locking_mode=EXCLUSIVE keeps it in heap memory). The
 * layout is SQLite's stable wal-index format: 32 KiB regions; region 0 starts with a 136-byte
 * header, then 4062 page numbers; region k > 0 holds 4096; native byte order. */
static uint32_t wal_index_pgno(cv_keyset *ks, uint64_t iframe) {
    const uint64_t first = (CV_SHM_REGION / 2 - 136) / 4, per = CV_SHM_REGION / 2 / 4;
    uint64_t region = iframe <= first ? 0 : 1 + (iframe - first - 1) / per;
    uint64_t slot = region == 0 ? 136 / 4 + iframe - 1 : (iframe - first - 1) % per;
    uint32_t pgno = 0;
    pthread_mutex_lock(&cv_mu);
    if (region < CV_SHM_REGIONS && ks->shm[region])
        pgno = __atomic_load_n(&((volatile uint32_t *)ks->shm[region])[slot], __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&cv_mu);
    return pgno;
}

static int cv_read(sqlite3_file *pf, void *out, int amt, sqlite3_int64 off) {
    cv_file *f = (cv_file *)pf;
    if (f->role == ROLE_MAIN) return main_read(f, out, amt, off);
    int rc = f->real->pMethods->xRead(f->real, out, amt, off);
    if (f->role == ROLE_PASS || rc != SQLITE_OK) return rc;
    if (f->role == ROLE_JOURNAL) {
        if (journal_page_io(amt, off)) {
            uint32_t pgno = 0;
            uint64_t gen = 0;
            cellar_status st = CELLAR_ERR_AUTHENTICATION_FAILED;
            if (journal_binding(f, off, 0, &pgno, &gen) == 0 && journal_pinned(f, gen, (uint32_t)amt))
                st = log_decrypt(f, journal_file_id(gen), journal_page_no(off, pgno), out, (size_t)amt);
            if (st != CELLAR_OK) {
                /* Never content: the journal ends here, as for a record cut short by a crash
                 * (SQLite's ordering means the database was not written for it). */
                memset(out, 0, (size_t)amt);
                sqlite3_log(SQLITE_NOTICE, "cellar vfs: %s: journal image at %lld (page %u) does not authenticate; the journal ends there",
                            f->ks->db_path, (long long)off, pgno);
                return SQLITE_IOERR_SHORT_READ;
            }
        } else if (off == 0 && amt <= 8 && !is_zero(out, (size_t)amt)) {
            /* SQLite looking for a hot journal (its first byte, or the header magic): a journal
             * this VFS did not start for the database as it is now is shown as empty. */
            uint64_t gen = 0;
            uint32_t P = 0;
            if (!journal_tag_read(f, &gen, &P) || !journal_pinned(f, gen, P)) {
                memset(out, 0, (size_t)amt);
                sqlite3_log(SQLITE_NOTICE, "cellar vfs: %s: the journal does not authenticate as this database's current one; shown as empty",
                            f->ks->db_path);
            }
        }
        return SQLITE_OK;
    }
    /* WAL */
    if (wal_page_io(amt, off)) {
        /* A frame SQLite has accepted (recovery or another connection indexed it). */
        uint8_t fh[WAL_FRAME_HDR];
        uint64_t file_id = 0, page_no = 0;
        cellar_status st = CELLAR_ERR_AUTHENTICATION_FAILED;
        if (f->real->pMethods->xRead(f->real, fh, WAL_FRAME_HDR, off - WAL_FRAME_HDR) == SQLITE_OK &&
            wal_binding(f, fh, off - WAL_FRAME_HDR, (uint32_t)amt, &file_id, &page_no) == 0) {
            /* The page SQLite wants is the one its index names for this frame: the frame must be
             * that page's (a changed index cannot move a frame to another page). */
            uint32_t want = wal_index_pgno(f->ks, (page_no >> 32) + 1);
            if (want && want != get32(fh)) {
                memset(out, 0, (size_t)amt);
                cv_error(SQLITE_IOERR_DATA, "%s: the WAL index names page %u for frame %llu, which holds page %u",
                         f->ks->db_path, want, (unsigned long long)(page_no >> 32) + 1, get32(fh));
                return SQLITE_IOERR_DATA;
            }
            st = log_decrypt(f, file_id, page_no, out, (size_t)amt);
        }
        if (st != CELLAR_OK) {
            memset(out, 0, (size_t)amt);
            cv_cellar_error(SQLITE_IOERR_DATA, "WAL page failed to authenticate", st);
            return SQLITE_IOERR_DATA;
        }
    } else if (wal_frame_io(amt, off)) {
        uint8_t *fh = out, *page = fh + WAL_FRAME_HDR;
        size_t n = (size_t)amt - WAL_FRAME_HDR;
        uint64_t file_id = 0, page_no = 0;
        cellar_status st = wal_binding(f, fh, off, (uint32_t)n, &file_id, &page_no) == 0
                               ? log_decrypt(f, file_id, page_no, page, n)
                               : CELLAR_ERR_AUTHENTICATION_FAILED;
        if (st != CELLAR_OK) {
            /* Recovery: the frame is returned with its salts inverted, which SQLite's recovery
             * takes for the end of the valid log (as for a torn frame after a crash). */
            memset(page, 0, n);
            for (int i = 8; i < 16; i++) fh[i] ^= 0xff;
            sqlite3_log(SQLITE_NOTICE, "cellar vfs: %s: WAL frame at %lld does not authenticate; the log ends before it",
                        f->ks->db_path, (long long)off);
        }
    }
    return SQLITE_OK;
}

static int cv_write(sqlite3_file *pf, const void *in, int amt, sqlite3_int64 off) {
    cv_file *f = (cv_file *)pf;
    if (f->role == ROLE_MAIN) return main_write(f, in, amt, off);
    if (f->role == ROLE_PASS) return f->real->pMethods->xWrite(f->real, in, amt, off);
    uint8_t *ct = NULL;
    int rc;
    if (f->role == ROLE_JOURNAL && journal_page_io(amt, off)) {
        uint32_t pgno = 0;
        uint64_t gen = 0;
        if (journal_binding(f, off, 1, &pgno, &gen) != 0) {
            cv_error(SQLITE_IOERR_WRITE, "%s: journal image at %lld without its record page number or generation", f->ks->db_path, (long long)off);
            return SQLITE_IOERR_WRITE;
        }
        rc = log_encrypt(f, journal_file_id(gen), journal_page_no(off, pgno), in, (size_t)amt, &ct);
    } else if (f->role == ROLE_WAL && wal_page_io(amt, off)) {
        uint8_t fh[WAL_FRAME_HDR];
        uint64_t file_id = 0, page_no = 0;
        if (f->real->pMethods->xRead(f->real, fh, WAL_FRAME_HDR, off - WAL_FRAME_HDR) != SQLITE_OK ||
            wal_binding(f, fh, off - WAL_FRAME_HDR, (uint32_t)amt, &file_id, &page_no) != 0) {
            cv_error(SQLITE_IOERR_WRITE, "%s: WAL page at %lld without its frame header", f->ks->db_path, (long long)off);
            return SQLITE_IOERR_WRITE;
        }
        rc = log_encrypt(f, file_id, page_no, in, (size_t)amt, &ct);
    } else {
        /* Everything else SQLite writes there is a header (journal headers are written in
         * pieces of up to a page at sector boundaries) or a 4-byte field. Refuse anything else
         * page-sized rather than let a page image reach the disk in clear. */
        if (f->role == ROLE_WAL && amt > WAL_HDR) {
            cv_error(SQLITE_IOERR_WRITE, "unexpected WAL write of %d bytes at %lld", amt, (long long)off);
            return SQLITE_IOERR_WRITE;
        }
        if (f->role == ROLE_JOURNAL && valid_pgsz(amt) && off % 512 != 0) {
            cv_error(SQLITE_IOERR_WRITE, "unexpected journal write of %d bytes at %lld", amt, (long long)off);
            return SQLITE_IOERR_WRITE;
        }
        if (f->role == ROLE_JOURNAL && off % 512 == 0 && amt >= JTAG_OFF + JTAG_LEN &&
            is_zero((const uint8_t *)in + JTAG_OFF, JTAG_LEN))
            return journal_header_write(f, in, amt, off);
        if (f->role == ROLE_JOURNAL && off == 0 && amt <= JTAG_OFF && is_zero(in, (size_t)amt)) {
            /* SQLite ends a journal it keeps (journal_mode=PERSIST, or exclusive locking) by
             * zeroing the header's first 28 bytes, which are not keyed: rewriting them would make
             * the journal hot again, and it would still pin (C0 + 1 is the counter now). The
             * generation tag goes with them, so its images can never authenticate again. */
            uint8_t z[JTAG_OFF + JTAG_LEN];
            memset(z, 0, sizeof z);
            f->jgen_set = 0;
            f->pin_state = 0;
            return f->real->pMethods->xWrite(f->real, z, (int)sizeof z, 0);
        }
        return f->real->pMethods->xWrite(f->real, in, amt, off);
    }
    if (rc != SQLITE_OK) return rc;
    return f->real->pMethods->xWrite(f->real, ct, amt, off);
}

static int cv_shm_unmap(sqlite3_file *pf, int del);

static int cv_close(sqlite3_file *pf) {
    cv_file *f = (cv_file *)pf;
    if (f->shm_mapped) cv_shm_unmap(pf, 0); /* SQLite unmaps first; this is only a safety net */
    int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    for (int i = 0; i < CV_LOGC; i++) cellar_page_cipher_free(f->logc[i].c);
    keyset_release(f->ks);
    free(f->buf);
    f->ks = NULL;
    f->buf = NULL;
    return rc;
}

static int cv_truncate(sqlite3_file *pf, sqlite3_int64 size) {
    cv_file *f = (cv_file *)pf;
    return f->real->pMethods->xTruncate(f->real, size);
}
static int cv_sync(sqlite3_file *pf, int flags) {
    cv_file *f = (cv_file *)pf;
    return f->real->pMethods->xSync(f->real, flags);
}
static int cv_file_size(sqlite3_file *pf, sqlite3_int64 *size) {
    cv_file *f = (cv_file *)pf;
    return f->real->pMethods->xFileSize(f->real, size);
}
static int cv_lock(sqlite3_file *pf, int level) {
    cv_file *f = (cv_file *)pf;
    /* Each transaction starts with a SHARED lock: pick up a key file another process changed
     * (a re-key), so that writes use the new version. */
    if (f->role == ROLE_MAIN && level == SQLITE_LOCK_SHARED) {
        pthread_mutex_lock(&cv_mu);
        if (keyfile_changed(f->ks)) keyset_reload(f->ks);
        pthread_mutex_unlock(&cv_mu);
    }
    return f->real->pMethods->xLock(f->real, level);
}
static int cv_unlock(sqlite3_file *pf, int level) {
    cv_file *f = (cv_file *)pf;
    return f->real->pMethods->xUnlock(f->real, level);
}
static int cv_check_reserved(sqlite3_file *pf, int *out) {
    cv_file *f = (cv_file *)pf;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}
static int cv_file_control(sqlite3_file *pf, int op, void *arg) {
    cv_file *f = (cv_file *)pf;
    if (op == SQLITE_FCNTL_VFSNAME) {
        int rc = f->real->pMethods->xFileControl(f->real, op, arg);
        if (rc == SQLITE_OK) {
            char *inner = *(char **)arg;
            *(char **)arg = sqlite3_mprintf("cellar/%z", inner);
        }
        return rc;
    }
    return f->real->pMethods->xFileControl(f->real, op, arg);
}
static int cv_sector_size(sqlite3_file *pf) {
    cv_file *f = (cv_file *)pf;
    return f->real->pMethods->xSectorSize(f->real);
}
static int cv_device_characteristics(sqlite3_file *pf) {
    cv_file *f = (cv_file *)pf;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}
static int cv_shm_map(sqlite3_file *pf, int pg, int pgsz, int extend, void volatile **pp) {
    cv_file *f = (cv_file *)pf;
    int rc = f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, pp);
    if (rc == SQLITE_OK && f->role == ROLE_MAIN && f->ks && pgsz == CV_SHM_REGION && pg >= 0 && *pp) {
        pthread_mutex_lock(&cv_mu);
        if (!f->shm_mapped) {
            f->shm_mapped = 1;
            f->ks->shm_users++;
        }
        if (pg < CV_SHM_REGIONS) f->ks->shm[pg] = *pp;
        pthread_mutex_unlock(&cv_mu);
    }
    return rc;
}
static int cv_shm_lock(sqlite3_file *pf, int offset, int n, int flags) {
    cv_file *f = (cv_file *)pf;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}
static void cv_shm_barrier(sqlite3_file *pf) {
    cv_file *f = (cv_file *)pf;
    f->real->pMethods->xShmBarrier(f->real);
}
static int cv_shm_unmap(sqlite3_file *pf, int del) {
    cv_file *f = (cv_file *)pf;
    if (f->role == ROLE_MAIN && f->ks && f->shm_mapped) {
        /* The regions stay mapped while any connection of this process has them. */
        pthread_mutex_lock(&cv_mu);
        f->shm_mapped = 0;
        if (--f->ks->shm_users == 0) memset((void *)f->ks->shm, 0, sizeof f->ks->shm);
        pthread_mutex_unlock(&cv_mu);
    }
    return f->real->pMethods->xShmUnmap(f->real, del);
}

/* Version 2: no xFetch, so SQLite never memory-maps the (encrypted) file. */
static const sqlite3_io_methods cv_io_methods = {
    2,
    cv_close,
    cv_read,
    cv_write,
    cv_truncate,
    cv_sync,
    cv_file_size,
    cv_lock,
    cv_unlock,
    cv_check_reserved,
    cv_file_control,
    cv_sector_size,
    cv_device_characteristics,
    cv_shm_map,
    cv_shm_lock,
    cv_shm_barrier,
    cv_shm_unmap,
    NULL,
    NULL,
};

static int cv_open(sqlite3_vfs *pv, sqlite3_filename name, sqlite3_file *pf, int flags, int *out_flags) {
    cv_vfs *v = (cv_vfs *)pv;
    cv_file *f = (cv_file *)pf;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)((char *)f + CV_FILE_SZ);
    int role;
    if (flags & SQLITE_OPEN_MAIN_DB) role = ROLE_MAIN;
    else if (flags & SQLITE_OPEN_MAIN_JOURNAL) role = ROLE_JOURNAL;
    else if (flags & SQLITE_OPEN_WAL) role = ROLE_WAL;
    else if (flags & SQLITE_OPEN_SUPER_JOURNAL) role = ROLE_PASS; /* holds file names only */
    else {
        cv_error(SQLITE_CANTOPEN, "refusing a temporary file, which would hold pages in clear (use PRAGMA temp_store=MEMORY)");
        return SQLITE_CANTOPEN;
    }
    if (!name) return SQLITE_CANTOPEN;
    int rc = SQLITE_OK;
    if (role == ROLE_MAIN) {
        struct stat st;
        int exists = stat(name, &st) == 0;
        int may_create = (!exists && (flags & SQLITE_OPEN_CREATE)) || (exists && st.st_size == 0);
        /* A new database may ask for its mode: file:x.db?cellar_mode=xts (or gcm). */
        const char *m = sqlite3_uri_parameter(name, "cellar_mode");
        uint32_t mode = !m ? v->default_mode : strcmp(m, "xts") == 0 ? CELLAR_PAGE_XTS
                      : strcmp(m, "gcm") == 0 ? CELLAR_PAGE_GCM : 0;
        if (!mode) {
            cv_error(SQLITE_CANTOPEN, "cellar_mode must be xts or gcm");
            return SQLITE_CANTOPEN;
        }
        if (!exists && !(flags & SQLITE_OPEN_CREATE)) {
            cv_error(SQLITE_CANTOPEN, "%s: no such database", name);
            return SQLITE_CANTOPEN;
        }
        /* A format-1 key file is upgraded only when the host asks (?cellar_migrate=1); a host that
         * keeps the generation it last saw outside the directory passes ?cellar_min_generation=N. */
        int migrate = sqlite3_uri_boolean(name, "cellar_migrate", 0);
        sqlite3_int64 min_gen = sqlite3_uri_int64(name, "cellar_min_generation", 0);
        rc = keyset_acquire(v->keyring, v->root, name, 1, may_create, mode, migrate, min_gen > 0 ? (uint64_t)min_gen : 0, &f->ks);
    } else if (role != ROLE_PASS) {
        rc = keyset_acquire(v->keyring, v->root, sqlite3_filename_database(name), 0, 0, 0, 0, 0, &f->ks);
    }
    if (rc != SQLITE_OK) return rc;
    f->role = role;
    rc = v->root->xOpen(v->root, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        keyset_release(f->ks);
        f->ks = NULL;
        return rc;
    }
    f->base.pMethods = &cv_io_methods;
    return SQLITE_OK;
}

static int cv_delete(sqlite3_vfs *pv, const char *name, int sync_dir) {
    cv_vfs *v = (cv_vfs *)pv;
    return v->root->xDelete(v->root, name, sync_dir);
}
static int cv_access(sqlite3_vfs *pv, const char *name, int flags, int *out) {
    cv_vfs *v = (cv_vfs *)pv;
    return v->root->xAccess(v->root, name, flags, out);
}
static int cv_full_pathname(sqlite3_vfs *pv, const char *name, int n, char *out) {
    cv_vfs *v = (cv_vfs *)pv;
    return v->root->xFullPathname(v->root, name, n, out);
}
static void *cv_dlopen(sqlite3_vfs *pv, const char *name) {
    cv_vfs *v = (cv_vfs *)pv;
    return v->root->xDlOpen(v->root, name);
}
static void cv_dlerror(sqlite3_vfs *pv, int n, char *out) {
    cv_vfs *v = (cv_vfs *)pv;
    v->root->xDlError(v->root, n, out);
}
static void (*cv_dlsym(sqlite3_vfs *pv, void *h, const char *sym))(void) {
    cv_vfs *v = (cv_vfs *)pv;
    return v->root->xDlSym(v->root, h, sym);
}
static void cv_dlclose(sqlite3_vfs *pv, void *h) {
    cv_vfs *v = (cv_vfs *)pv;
    v->root->xDlClose(v->root, h);
}
static int cv_randomness(sqlite3_vfs *pv, int n, char *out) {
    cv_vfs *v = (cv_vfs *)pv;
    return v->root->xRandomness(v->root, n, out);
}
static int cv_sleep(sqlite3_vfs *pv, int us) {
    cv_vfs *v = (cv_vfs *)pv;
    return v->root->xSleep(v->root, us);
}
static int cv_current_time(sqlite3_vfs *pv, double *out) {
    cv_vfs *v = (cv_vfs *)pv;
    return v->root->xCurrentTime(v->root, out);
}
static int cv_get_last_error(sqlite3_vfs *pv, int n, char *out) {
    cv_vfs *v = (cv_vfs *)pv;
    return v->root->xGetLastError ? v->root->xGetLastError(v->root, n, out) : 0;
}
static int cv_current_time_int64(sqlite3_vfs *pv, sqlite3_int64 *out) {
    cv_vfs *v = (cv_vfs *)pv;
    return v->root->xCurrentTimeInt64(v->root, out);
}

/* ---------------------------------------------------------------- connections */

/* Returns our file under `db`'s main database, or NULL when it is not on a Cellar VFS. */
static cv_file *cv_main_file(sqlite3 *db) {
    sqlite3_file *pf = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &pf) != SQLITE_OK || !pf ||
        pf->pMethods != &cv_io_methods)
        return NULL;
    return (cv_file *)pf;
}

/* Auto-extension: every connection on a Cellar VFS keeps temporary data in memory, and a new
 * GCM database gets the 48 reserved bytes per page the trailer needs. */
static int cv_connection_init(sqlite3 *db, const char **err, const struct sqlite3_api_routines *api) {
    (void)err;
    (void)api;
    cv_file *f = cv_main_file(db);
    if (!f) return SQLITE_OK;
    sqlite3_exec(db, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL);
    sqlite3_int64 size = 0;
    if (f->ks->mode == CELLAR_PAGE_GCM && f->real->pMethods->xFileSize(f->real, &size) == SQLITE_OK && size == 0) {
        int reserve = CELLAR_PAGE_GCM_TRAILER_LEN;
        sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
    }
    return SQLITE_OK;
}

typedef void (*cv_entry_point)(void);

int cellar_sqlite_register(const char *vfs_name, cellar_keyring *keyring, uint32_t default_mode, int make_default) {
    if (!vfs_name || !keyring || (default_mode != CELLAR_PAGE_XTS && default_mode != CELLAR_PAGE_GCM))
        return SQLITE_MISUSE;
    sqlite3_vfs *root = sqlite3_vfs_find(NULL);
    if (!root) return SQLITE_ERROR;
    cv_vfs *v = calloc(1, sizeof *v + strlen(vfs_name) + 1);
    if (!v) return SQLITE_NOMEM;
    char *name = (char *)(v + 1);
    strcpy(name, vfs_name);
    v->root = root;
    v->keyring = keyring;
    v->default_mode = default_mode;
    v->base.iVersion = 2;
    v->base.szOsFile = (int)(CV_FILE_SZ + (size_t)root->szOsFile);
    v->base.mxPathname = root->mxPathname;
    v->base.zName = name;
    v->base.xOpen = cv_open;
    v->base.xDelete = cv_delete;
    v->base.xAccess = cv_access;
    v->base.xFullPathname = cv_full_pathname;
    v->base.xDlOpen = cv_dlopen;
    v->base.xDlError = cv_dlerror;
    v->base.xDlSym = cv_dlsym;
    v->base.xDlClose = cv_dlclose;
    v->base.xRandomness = cv_randomness;
    v->base.xSleep = cv_sleep;
    v->base.xCurrentTime = cv_current_time;
    v->base.xGetLastError = cv_get_last_error;
    v->base.xCurrentTimeInt64 = cv_current_time_int64;
    int rc = sqlite3_auto_extension((cv_entry_point)cv_connection_init);
    if (rc == SQLITE_OK) rc = sqlite3_vfs_register(&v->base, make_default);
    if (rc != SQLITE_OK) free(v); /* registered VFSes live for the process */
    return rc;
}

/* ---------------------------------------------------------------- re-keying */

static int cellar_sqlite_rewrap_locked(sqlite3 *db, uint32_t *out_count);

static int cellar_sqlite_scan_locked(sqlite3 *db, cellar_sqlite_scan_result *out) {
    cv_file *f = cv_main_file(db);
    if (!f || !out) return SQLITE_MISUSE;
    memset(out, 0, sizeof *out);
    int rc = f->pgsz ? SQLITE_OK : detect_pgsz(f);
    sqlite3_int64 fsize = 0;
    if (rc == SQLITE_OK) rc = f->real->pMethods->xFileSize(f->real, &fsize);
    if (rc != SQLITE_OK) return rc;
    uint32_t P = f->pgsz;
    pthread_mutex_lock(&cv_mu);
    out->mode = f->ks->mode;
    out->active_version = f->ks->active;
    pthread_mutex_unlock(&cv_mu);
    /* The key file's versions (not the ones this process has ever loaded), authenticated. */
    cv_keyfile kf;
    struct stat st;
    pthread_mutex_lock(&cv_mu);
    rc = keyset_load(f->ks, &kf, &st);
    pthread_mutex_unlock(&cv_mu);
    if (rc != SQLITE_OK) return rc;
    out->keyfile_generation = kf.generation;
    out->nversions = kf.n;
    for (uint32_t i = 0; i < kf.n; i++) out->versions[i] = kf.e[i].version;
    free(kf.data);
    out->page_size = P;
    out->pages = (uint64_t)fsize / P;
    if ((uint64_t)fsize % P) { /* a page cut short (torn or truncated) is never a valid page */
        out->pages++;
        out->failed++;
    }
    uint8_t *b = malloc(P), *zero = calloc(1, P);
    if (!b || !zero) {
        free(b);
        free(zero);
        return SQLITE_NOMEM;
    }
    for (uint64_t i = 0; i < (uint64_t)fsize / P && rc == SQLITE_OK; i++) {
        rc = f->real->pMethods->xRead(f->real, b, (int)P, (sqlite3_int64)(i * P));
        if (rc != SQLITE_OK) break;
        if (memcmp(b, zero, P) == 0) {
            /* Never written (XTS); in GCM an all-zero page does not authenticate: SQLite would
             * get an I/O error reading it, so it counts as failed. */
            if (f->ks->mode == CELLAR_PAGE_GCM) out->failed++;
            else out->empty++;
            continue;
        }
        uint32_t version = out->active_version;
        if (f->ks->mode == CELLAR_PAGE_GCM && cellar_page_key_version(b, P, &version) != CELLAR_OK) {
            out->failed++;
            continue;
        }
        if (page_decrypt(f, i + 1, b, P) != CELLAR_OK || (i == 0 && !page1_plausible(f, b, P))) {
            out->failed++;
            continue;
        }
        for (uint32_t j = 0; j < out->nversions; j++)
            if (out->versions[j] == version) out->counts[j]++;
    }
    cv_free_wiped(b, P);
    free(zero);
    return rc;
}

static int cellar_sqlite_add_page_key_locked(sqlite3 *db, uint32_t *out_version) {
    cv_file *f = cv_main_file(db);
    if (!f || !out_version) return SQLITE_MISUSE;
    if (f->ks->mode != CELLAR_PAGE_GCM) {
        cv_error(SQLITE_MISUSE, "XTS pages carry no key version: re-key an XTS database by copying it");
        return SQLITE_MISUSE;
    }
    pthread_mutex_lock(&cv_mu);
    cv_keyfile kf;
    struct stat st;
    int rc = keyset_load(f->ks, &kf, &st);
    if (rc == SQLITE_OK && kf.n >= CELLAR_SQLITE_MAX_VERSIONS) rc = SQLITE_FULL;
    if (rc == SQLITE_OK) {
        uint32_t next = 0;
        for (uint32_t i = 0; i < kf.n; i++)
            if (kf.e[i].version > next) next = kf.e[i].version;
        for (uint32_t i = 0; i < f->ks->nvers; i++) /* never reuse a retired number */
            if (f->ks->vers[i].version > next) next = f->ks->vers[i].version;
        next++;
        uint8_t blob[CELLAR_KEYRING_MAX_WRAPPED_LEN];
        size_t blob_len = 0;
        rc = new_wrapped_key(f->ks->keyring, key_type_of(f->ks->mode), blob, sizeof blob, &blob_len, NULL);
        if (rc == SQLITE_OK) {
            kf.e[kf.n].version = next;
            kf.e[kf.n].blob_len = (uint16_t)blob_len;
            kf.e[kf.n].blob = blob;
            rc = keyset_store(f->ks, kf.generation, next, kf.e, kf.n + 1, &kf.file_key);
        }
        if (rc == SQLITE_OK) rc = keyset_reload(f->ks);
        if (rc == SQLITE_OK) *out_version = next;
    }
    free(kf.data);
    pthread_mutex_unlock(&cv_mu);
    return rc;
}

static int cellar_sqlite_retire_unused_locked(sqlite3 *db, uint32_t *out_removed) {
    cv_file *f = cv_main_file(db);
    if (!f || !out_removed) return SQLITE_MISUSE;
    cellar_sqlite_scan_result *scan = malloc(sizeof *scan);
    if (!scan) return SQLITE_NOMEM;
    int rc = cellar_sqlite_scan_locked(db, scan);
    if (rc == SQLITE_OK && scan->failed) {
        cv_error(SQLITE_CORRUPT, "%llu pages failed to decrypt: nothing retired", (unsigned long long)scan->failed);
        rc = SQLITE_CORRUPT;
    }
    if (rc == SQLITE_OK) {
        pthread_mutex_lock(&cv_mu);
        cv_keyfile kf;
        struct stat st;
        rc = keyset_load(f->ks, &kf, &st);
        if (rc == SQLITE_OK) {
            cv_entry keep[CELLAR_SQLITE_MAX_VERSIONS];
            uint32_t n = 0;
            for (uint32_t i = 0; i < kf.n; i++) {
                uint64_t used = 0;
                for (uint32_t j = 0; j < scan->nversions; j++)
                    if (scan->versions[j] == kf.e[i].version) used = scan->counts[j];
                if (used || kf.e[i].version == kf.active) keep[n++] = kf.e[i];
            }
            *out_removed = kf.n - n;
            if (n != kf.n) {
                rc = keyset_store(f->ks, kf.generation, kf.active, keep, n, &kf.file_key);
                if (rc == SQLITE_OK) rc = keyset_reload(f->ks);
            }
            free(kf.data);
        }
        pthread_mutex_unlock(&cv_mu);
    }
    free(scan);
    return rc;
}

/* The public calls hold the connection's mutex, so SQLite does not use the file meanwhile. */
#define CV_LOCKED_CALL(call)                                  \
    do {                                                      \
        sqlite3_mutex *mu_ = db ? sqlite3_db_mutex(db) : NULL; \
        sqlite3_mutex_enter(mu_);                             \
        int rc_ = (call);                                     \
        sqlite3_mutex_leave(mu_);                             \
        return rc_;                                           \
    } while (0)

int cellar_sqlite_scan(sqlite3 *db, cellar_sqlite_scan_result *out) { CV_LOCKED_CALL(cellar_sqlite_scan_locked(db, out)); }
int cellar_sqlite_add_page_key(sqlite3 *db, uint32_t *out_version) {
    CV_LOCKED_CALL(cellar_sqlite_add_page_key_locked(db, out_version));
}
int cellar_sqlite_retire_unused(sqlite3 *db, uint32_t *out_removed) {
    CV_LOCKED_CALL(cellar_sqlite_retire_unused_locked(db, out_removed));
}
int cellar_sqlite_rewrap(sqlite3 *db, uint32_t *out_count) { CV_LOCKED_CALL(cellar_sqlite_rewrap_locked(db, out_count)); }

int cellar_sqlite_rekey(sqlite3 *db, uint32_t *out_version) {
    uint32_t version = 0, removed = 0;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = cellar_sqlite_add_page_key(db, &version);
    sqlite3_exec(db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "VACUUM", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        rc = cellar_sqlite_retire_unused(db, &removed);
        sqlite3_exec(db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) *out_version = version;
    return rc;
}

static int cellar_sqlite_rewrap_locked(sqlite3 *db, uint32_t *out_count) {
    cv_file *f = cv_main_file(db);
    if (!f || !out_count) return SQLITE_MISUSE;
    pthread_mutex_lock(&cv_mu);
    cv_keyfile kf;
    struct stat st;
    int rc = keyset_load(f->ks, &kf, &st);
    /* every page key, then the key file's own key (slot kf.n) */
    uint8_t(*blobs)[CELLAR_KEYRING_MAX_WRAPPED_LEN] = rc == SQLITE_OK ? malloc(sizeof *blobs * (kf.n + 1)) : NULL;
    if (rc == SQLITE_OK && !blobs) rc = SQLITE_NOMEM;
    for (uint32_t i = 0; rc == SQLITE_OK && i <= kf.n; i++) {
        size_t len = 0;
        cv_entry *e = i < kf.n ? &kf.e[i] : &kf.file_key;
        cellar_status cs = cellar_keyring_rewrap(f->ks->keyring, e->blob, e->blob_len, blobs[i],
                                                 CELLAR_KEYRING_MAX_WRAPPED_LEN, &len);
        if (cs != CELLAR_OK) {
            cv_cellar_error(SQLITE_ERROR, "cannot rewrap a page key", cs);
            rc = SQLITE_ERROR;
        } else {
            e->blob = blobs[i];
            e->blob_len = (uint16_t)len;
        }
    }
    if (rc == SQLITE_OK) {
        rc = keyset_store(f->ks, kf.generation, kf.active, kf.e, kf.n, &kf.file_key);
        if (rc == SQLITE_OK) rc = keyset_reload(f->ks);
        if (rc == SQLITE_OK) *out_count = kf.n;
    }
    free(blobs);
    free(kf.data);
    pthread_mutex_unlock(&cv_mu);
    return rc;
}

/* ---------------------------------------------------------------- extension */

#ifdef CELLAR_VFS_EXTENSION
/* Loadable as `.load cellarvfs`: reads an exported keyring from $CELLAR_KEYRING sealed under
 * $CELLAR_PASSWORD, and registers the VFS "cellar" (new databases in $CELLAR_SQLITE_MODE,
 * "gcm" by default, or "xts"); the default VFS too when $CELLAR_SQLITE_DEFAULT is 1. */
static cellar_keyring *ext_keyring;

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_cellarvfs_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
    (void)db;
    SQLITE_EXTENSION_INIT2(api);
    if (sqlite3_vfs_find(CELLAR_SQLITE_VFS_NAME)) return SQLITE_OK_LOAD_PERMANENTLY;
    const char *path = getenv("CELLAR_KEYRING"), *pw = getenv("CELLAR_PASSWORD");
    const char *mode_s = getenv("CELLAR_SQLITE_MODE"), *def = getenv("CELLAR_SQLITE_DEFAULT");
    if (!path || !pw) {
        *err = sqlite3_mprintf("cellarvfs: set CELLAR_KEYRING and CELLAR_PASSWORD");
        return SQLITE_ERROR;
    }
    uint32_t mode = mode_s && strcmp(mode_s, "xts") == 0 ? CELLAR_PAGE_XTS : CELLAR_PAGE_GCM;
    FILE *fp = fopen(path, "rb");
    uint8_t blob[1 << 16];
    size_t n = fp ? fread(blob, 1, sizeof blob, fp) : 0;
    if (fp) fclose(fp);
    cellar_status st = n ? cellar_keyring_import(blob, n, NULL, (const uint8_t *)pw, strlen(pw), &ext_keyring)
                         : CELLAR_ERR_INVALID_ARGUMENT;
    if (st != CELLAR_OK) {
        *err = sqlite3_mprintf("cellarvfs: cannot open keyring %s: %s", path, cellar_status_name(st));
        return SQLITE_ERROR;
    }
    int rc = cellar_sqlite_register(CELLAR_SQLITE_VFS_NAME, ext_keyring, mode, def && strcmp(def, "1") == 0);
    return rc == SQLITE_OK ? SQLITE_OK_LOAD_PERMANENTLY : rc;
}
#endif
