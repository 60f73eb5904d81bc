/*
 * cellar_vfs.h: transparent page encryption for SQLite through a Cellar VFS.
 *
 * The VFS is a shim over SQLite's default VFS. Every database page, every page image in a
 * rollback journal and every WAL frame's page is encrypted with a Cellar page cipher (AES-256-XTS
 * or AES-256-GCM, see README.md beside this file). The page keys are data keys wrapped under a
 * tenant keyring and stored beside the database in "<db>-cellarkey".
 *
 * Link: cellar_vfs.c, libcellar and libsqlite3; or load cellarvfs.so as a SQLite extension
 * (it reads its keyring from the environment, see README.md).
 */
#ifndef CELLAR_VFS_H
#define CELLAR_VFS_H

#include <stdint.h>
#include <sqlite3.h>
#include "cellar.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default name the extension registers. */
#define CELLAR_SQLITE_VFS_NAME "cellar"

/* Suffix of the key file stored beside each database. */
#define CELLAR_SQLITE_KEYFILE_SUFFIX "-cellarkey"

/* Most page key versions one key file holds. */
#define CELLAR_SQLITE_MAX_VERSIONS 64

/*
 * Registers a Cellar VFS named `vfs_name` over the default VFS. `keyring` (borrowed: it must
 * outlive every connection that uses this VFS) unwraps the page keys of existing databases and
 * wraps the key of each new one, created in `default_mode` (CELLAR_PAGE_XTS or CELLAR_PAGE_GCM).
 * Database URI parameters: cellar_mode=xts|gcm (a new database), cellar_min_generation=N (refuse a
 * key file whose generation is below N: the host keeps the last one it saw, see the scan result),
 * cellar_migrate=1 (upgrade a format-1, unauthenticated key file to format 2 once).
 * Also registers, once per process, an auto-extension that gives each new connection on a Cellar
 * VFS `PRAGMA temp_store=MEMORY` (temporary files are refused, see README.md) and, for a new GCM
 * database, 48 reserved bytes per page. Returns a SQLite result code.
 */
int cellar_sqlite_register(const char *vfs_name, cellar_keyring *keyring, uint32_t default_mode,
                           int make_default);

/* What a full pass over the main database file found (see cellar_sqlite_scan). */
typedef struct cellar_sqlite_scan_result {
    uint32_t mode;            /* CELLAR_PAGE_XTS or CELLAR_PAGE_GCM */
    uint32_t page_size;       /* bytes */
    uint32_t active_version;  /* page key version new writes use */
    uint64_t pages;           /* pages in the file */
    uint64_t empty;           /* all-zero pages (never written; XTS only: in GCM they count as failed) */
    uint64_t failed;          /* pages that did not decrypt (GCM: authenticate, all-zero pages included) */
    uint32_t nversions;       /* page key versions in the key file */
    uint32_t versions[CELLAR_SQLITE_MAX_VERSIONS];
    uint64_t counts[CELLAR_SQLITE_MAX_VERSIONS]; /* pages per version (GCM; XTS: all active) */
    uint64_t keyfile_generation; /* of the (authenticated) key file: keep it outside the directory
                                    and pass it back as ?cellar_min_generation=N to refuse an older copy */
} cellar_sqlite_scan_result;

/*
 * Reads and decrypts every page of `db`'s main file (a connection on a Cellar VFS), counting
 * pages per key version. Checkpoint a WAL first to include its pages. Returns a SQLite code;
 * SQLITE_MISUSE when `db` is not on a Cellar VFS.
 */
int cellar_sqlite_scan(sqlite3 *db, cellar_sqlite_scan_result *out);

/*
 * Adds a new page key version (a fresh data key wrapped under the keyring's active tenant
 * version) and makes it the one new writes use. Pages already written keep their version and
 * stay readable (GCM pages carry it in their trailer). GCM only: an XTS page does not say which
 * key encrypted it, so XTS databases are re-keyed by copying (see cellar-sqlite rekey).
 */
int cellar_sqlite_add_page_key(sqlite3 *db, uint32_t *out_version);

/*
 * Removes from the key file every version except the active one that no page uses any more
 * (found by a scan). Run it after checkpointing (no WAL frames), under a write transaction.
 * Writes the number removed to *out_removed.
 */
int cellar_sqlite_retire_unused(sqlite3 *db, uint32_t *out_removed);

/*
 * Online re-key of a GCM database: add_page_key, VACUUM (every page rewritten under the new
 * version through SQLite's own journal or WAL, readers continue), checkpoint, then under a write
 * transaction scan and retire the versions left unused. Writes the new version to *out_version.
 */
int cellar_sqlite_rekey(sqlite3 *db, uint32_t *out_version);

/*
 * Rewraps every page key in `db`'s key file under the keyring's active tenant version (after
 * cellar_keyring_rotate), so older tenant versions can be retired. Pages are untouched. Writes the
 * number of keys rewrapped to *out_count.
 */
int cellar_sqlite_rewrap(sqlite3 *db, uint32_t *out_count);

/* The text of the last failure inside the VFS on this thread (never a secret). */
const char *cellar_sqlite_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
