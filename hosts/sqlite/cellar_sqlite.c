/* cellar-sqlite: create, open (run SQL), re-key and verify SQLite databases encrypted by the
 * Cellar VFS. The tenant keyring lives in the file $CELLAR_KEYRING, sealed under the password
 * $CELLAR_PASSWORD (PBKDF2, $CELLAR_KDF_ITERATIONS, default 600000). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cellar_vfs.h"

#define VFS "cellar"

static const char *usage =
    "usage: cellar-sqlite COMMAND ...\n"
    "  keyring-new                      create the tenant keyring $CELLAR_KEYRING\n"
    "  keyring-rotate DB...             new tenant key version; rewrap each database's page keys\n"
    "  create DB [gcm|xts] [PAGE_SIZE]  create an empty encrypted database (default gcm, 4096)\n"
    "  import PLAIN DB [gcm|xts]        copy a plaintext SQLite database into a new encrypted one\n"
    "  sql DB SQL...                    run SQL statements, print rows (columns joined by |)\n"
    "  rekey DB                         new page key; re-encrypt every page; retire the old key\n"
    "  verify DB                        PRAGMA integrity_check and decrypt every page\n"
    "  migrate DB                       authenticate a format-1 key file (format 2, generation 1)\n"
    "environment: CELLAR_KEYRING (file), CELLAR_PASSWORD (>= 14 bytes), CELLAR_KDF_ITERATIONS\n"
    "HSM-held tenant key (PKCS#11): CELLAR_PKCS11_MODULE (module path), CELLAR_PKCS11_TOKEN (token\n"
    "  label), CELLAR_PKCS11_PIN_FILE (file holding the user PIN), CELLAR_PKCS11_KEY (key label for\n"
    "  keyring-new; keyring-rotate names the new key KEY-vN), CELLAR_PKCS11_ALLOW_ZERO_PADDED=1\n"
    "  (SoftHSM 2.6; docs/KEYS.md 6a)\n"
    "Tenant key on a KMIP server: CELLAR_KMIP_HOST, CELLAR_KMIP_PORT (default 5696), CELLAR_KMIP_CA\n"
    "  (CA bundle, PEM), CELLAR_KMIP_CERT and CELLAR_KMIP_KEY (client certificate and key, PEM),\n"
    "  CELLAR_KMIP_SERVER_NAME (name in the server certificate; default the host), CELLAR_KMIP_MODE\n"
    "  (fetch or delegated; default fetch), CELLAR_KMIP_KEY_NAME (server key name for keyring-new;\n"
    "  keyring-rotate names the new key NAME-vN), CELLAR_KMIP_TIMEOUT_MS (default 5000)\n";

static int fail(const char *what, cellar_status st) {
    char detail[256];
    cellar_last_error(detail, sizeof detail);
    fprintf(stderr, "cellar-sqlite: %s: %s (%s)\n", what, cellar_status_name(st), detail);
    return 1;
}

static const char *env_or_die(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "cellar-sqlite: set %s\n", name);
        exit(2);
    }
    return v;
}

/* The name of the keyring's next tenant key held outside the process: "$ENV-vN", N the version
 * it will get. *n is its length, or -1 (status CELLAR_ERR_INVALID_ARGUMENT, message printed)
 * when it does not fit. */
static cellar_status next_version_name(const cellar_keyring *kr, const char *env, char *out, size_t cap, int *n) {
    uint32_t active = 0;
    cellar_status st = cellar_keyring_active_version(kr, &active);
    if (st != CELLAR_OK) return st;
    *n = snprintf(out, cap, "%s-v%u", env_or_die(env), (unsigned)active + 1);
    if (*n <= 0 || (size_t)*n >= cap) {
        fprintf(stderr, "cellar-sqlite: %s is too long\n", env);
        *n = -1;
        return CELLAR_ERR_INVALID_ARGUMENT;
    }
    return CELLAR_OK;
}

static uint32_t iterations(void) {
    const char *s = getenv("CELLAR_KDF_ITERATIONS");
    return s ? (uint32_t)strtoul(s, NULL, 10) : CELLAR_PASSWORD_DEFAULT_ITERATIONS;
}

static int save_keyring(cellar_keyring *kr, const char *path, int exclusive) {
    const char *pw = env_or_die("CELLAR_PASSWORD");
    size_t len = 0;
    cellar_status st = cellar_keyring_export(kr, NULL, (const uint8_t *)pw, strlen(pw), iterations(), NULL, 0, &len);
    if (st != CELLAR_OK && st != CELLAR_ERR_BUFFER_TOO_SMALL) return fail("keyring export", st);
    uint8_t *blob = malloc(len);
    st = blob ? cellar_keyring_export(kr, NULL, (const uint8_t *)pw, strlen(pw), iterations(), blob, len, &len)
              : CELLAR_ERR_INTERNAL;
    if (st != CELLAR_OK) {
        free(blob);
        return fail("keyring export", st);
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wbx");
    int ok = f && fwrite(blob, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f) fclose(f);
    free(blob);
    if (ok) ok = exclusive ? link(tmp, path) == 0 : rename(tmp, path) == 0;
    unlink(tmp);
    if (!ok) fprintf(stderr, "cellar-sqlite: cannot write %s: %s\n", path, strerror(errno));
    return ok ? 0 : 1;
}

/* The PKCS#11 settings from the environment, or 0 when CELLAR_PKCS11_MODULE is unset. The PIN is
 * read from a file (never from the command line or the environment) into `pin`. */
static int pkcs11_config(cellar_pkcs11_config *c, char *pin, size_t pin_cap) {
    const char *module = getenv("CELLAR_PKCS11_MODULE");
    if (!module || !*module) return 0;
    const char *token = env_or_die("CELLAR_PKCS11_TOKEN"), *pin_file = env_or_die("CELLAR_PKCS11_PIN_FILE");
    FILE *f = fopen(pin_file, "rb");
    size_t n = f ? fread(pin, 1, pin_cap - 1, f) : 0;
    if (f) fclose(f);
    while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r')) n--;
    if (n == 0) {
        fprintf(stderr, "cellar-sqlite: cannot read a PIN from %s\n", pin_file);
        exit(1);
    }
    memset(c, 0, sizeof *c);
    c->module_path = (const uint8_t *)module;
    c->module_path_len = strlen(module);
    c->token_label = (const uint8_t *)token;
    c->token_label_len = strlen(token);
    c->pin = (const uint8_t *)pin;
    c->pin_len = n;
    const char *z = getenv("CELLAR_PKCS11_ALLOW_ZERO_PADDED");
    if (z && strcmp(z, "1") == 0) c->flags |= CELLAR_PKCS11_ALLOW_ZERO_PADDED_KWP;
    return 1;
}

/* A KMIP client from the environment, or NULL when CELLAR_KMIP_HOST is unset. Exits on a bad
 * setting or a client that cannot be made (the TLS files are read here). */
static cellar_kmip_client *kmip_client(uint32_t *mode) {
    const char *host = getenv("CELLAR_KMIP_HOST");
    if (!host || !*host) return NULL;
    const char *ca = env_or_die("CELLAR_KMIP_CA"), *cert = env_or_die("CELLAR_KMIP_CERT"),
               *key = env_or_die("CELLAR_KMIP_KEY");
    const char *port_s = getenv("CELLAR_KMIP_PORT"), *name = getenv("CELLAR_KMIP_SERVER_NAME");
    const char *mode_s = getenv("CELLAR_KMIP_MODE"), *timeout_s = getenv("CELLAR_KMIP_TIMEOUT_MS");
    char *end = NULL;
    unsigned long port = port_s && *port_s ? strtoul(port_s, &end, 10) : 5696;
    if ((port_s && *port_s && *end) || port == 0 || port > 65535) {
        fprintf(stderr, "cellar-sqlite: CELLAR_KMIP_PORT must be 1 to 65535\n");
        exit(2);
    }
    unsigned long timeout = timeout_s && *timeout_s ? strtoul(timeout_s, &end, 10) : 5000;
    if ((timeout_s && *timeout_s && *end) || timeout == 0 || timeout > 600000) {
        fprintf(stderr, "cellar-sqlite: CELLAR_KMIP_TIMEOUT_MS must be 1 to 600000\n");
        exit(2);
    }
    if (!mode_s || !*mode_s || strcmp(mode_s, "fetch") == 0) {
        *mode = CELLAR_KMIP_FETCH;
    } else if (strcmp(mode_s, "delegated") == 0) {
        *mode = CELLAR_KMIP_DELEGATED;
    } else {
        fprintf(stderr, "cellar-sqlite: CELLAR_KMIP_MODE must be fetch or delegated\n");
        exit(2);
    }
    cellar_kmip_config c;
    memset(&c, 0, sizeof c);
    c.host = (const uint8_t *)host;
    c.host_len = strlen(host);
    c.port = (uint16_t)port;
    if (name && *name) {
        c.server_name = (const uint8_t *)name;
        c.server_name_len = strlen(name);
    }
    c.client_cert_path = (const uint8_t *)cert;
    c.client_cert_path_len = strlen(cert);
    c.client_key_path = (const uint8_t *)key;
    c.client_key_path_len = strlen(key);
    c.ca_path = (const uint8_t *)ca;
    c.ca_path_len = strlen(ca);
    c.connect_timeout_ms = (uint32_t)timeout;
    c.io_timeout_ms = (uint32_t)timeout;
    cellar_kmip_client *client = NULL;
    cellar_status st = cellar_kmip_client_new(&c, &client);
    if (st != CELLAR_OK) exit(fail("KMIP client", st));
    return client;
}

static cellar_keyring *load_keyring(void) {
    const char *path = env_or_die("CELLAR_KEYRING"), *pw = env_or_die("CELLAR_PASSWORD");
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cellar-sqlite: cannot read %s: %s (make one with keyring-new)\n", path, strerror(errno));
        exit(1);
    }
    static uint8_t blob[1 << 20];
    size_t n = fread(blob, 1, sizeof blob, f);
    fclose(f);
    cellar_keyring *kr = NULL;
    cellar_status st = cellar_keyring_import(blob, n, NULL, (const uint8_t *)pw, strlen(pw), &kr);
    if (st != CELLAR_OK) exit(fail("cannot open the keyring (wrong password?)", st));
    /* Token versions come back as references: log in to the HSM and reconnect them. */
    cellar_pkcs11_config c;
    char pin[257];
    if (pkcs11_config(&c, pin, sizeof pin)) {
        size_t attached = 0;
        st = cellar_keyring_unlock_pkcs11(kr, &c, &attached);
        memset(pin, 0, sizeof pin);
        if (st != CELLAR_OK) exit(fail("cannot reconnect the HSM-held tenant key", st));
    }
    /* KMIP versions likewise: fetch mode Gets the key material again (its state is checked:
     * a revoked or destroyed key is refused), delegated mode reattaches the server key. */
    uint32_t kmode = 0;
    cellar_kmip_client *kc = kmip_client(&kmode);
    if (kc) {
        size_t attached = 0;
        st = cellar_keyring_unlock_kmip(kr, kc, &attached);
        cellar_kmip_client_free(kc);
        if (st != CELLAR_OK) exit(fail("cannot reconnect the KMIP-held tenant key", st));
    }
    return kr;
}

static sqlite3 *open_db(const char *path, int flags) {
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_URI, VFS);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "cellar-sqlite: cannot open %s: %s (%s)\n", path, sqlite3_errstr(rc), cellar_sqlite_last_error());
        exit(1);
    }
    sqlite3_busy_timeout(db, 10000);
    return db;
}

static int print_row(void *arg, int n, char **vals, char **names) {
    (void)arg;
    (void)names;
    for (int i = 0; i < n; i++) printf("%s%s", i ? "|" : "", vals[i] ? vals[i] : "");
    printf("\n");
    return 0;
}

static int run_sql(sqlite3 *db, const char *sql) {
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, print_row, NULL, &err);
    if (rc != SQLITE_OK) {
        const char *vfs_err = cellar_sqlite_last_error();
        fprintf(stderr, "cellar-sqlite: %s%s%s\n", err ? err : sqlite3_errstr(rc), *vfs_err ? " | vfs: " : "", vfs_err);
    }
    sqlite3_free(err);
    return rc == SQLITE_OK ? 0 : 1;
}

static void print_scan(const cellar_sqlite_scan_result *s) {
    printf("mode %s, page size %u, %llu pages (%llu never written), active page key version %u\n",
           s->mode == CELLAR_PAGE_GCM ? "gcm" : "xts", s->page_size, (unsigned long long)s->pages,
           (unsigned long long)s->empty, s->active_version);
    printf("key file generation %llu (keep it outside the directory; open file:DB?cellar_min_generation=N to refuse an older copy)\n",
           (unsigned long long)s->keyfile_generation);
    for (uint32_t i = 0; i < s->nversions; i++) {
        if (s->mode == CELLAR_PAGE_GCM) printf("  page key version %u: %llu pages\n", s->versions[i], (unsigned long long)s->counts[i]);
        else printf("  page key version %u (XTS pages do not record it): %llu pages\n", s->versions[i], (unsigned long long)s->counts[i]);
    }
}

static int cmd_verify(const char *path) {
    sqlite3 *db = open_db(path, SQLITE_OPEN_READWRITE);
    char *err = NULL;
    int ok = 1;
    printf("integrity_check: ");
    fflush(stdout);
    if (sqlite3_exec(db, "PRAGMA integrity_check", print_row, NULL, &err) != SQLITE_OK) {
        printf("error: %s (%s)\n", err ? err : "?", cellar_sqlite_last_error());
        ok = 0;
    }
    sqlite3_free(err);
    /* Fold the WAL in, then read every page of the file back through the page cipher. */
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    cellar_sqlite_scan_result s;
    int rc = cellar_sqlite_scan(db, &s);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "cellar-sqlite: scan failed: %s (%s)\n", sqlite3_errstr(rc), cellar_sqlite_last_error());
        ok = 0;
    } else {
        print_scan(&s);
        printf("decrypt pass: %llu of %llu pages decrypted%s\n", (unsigned long long)(s.pages - s.empty - s.failed),
               (unsigned long long)(s.pages - s.empty), s.failed ? ", FAILURES" : "");
        ok &= s.failed == 0;
    }
    sqlite3_close(db);
    printf("%s: %s\n", path, ok ? "verified" : "NOT verified");
    return ok ? 0 : 1;
}

/* Copies every table (rows included), index, trigger and view of a plaintext database, read
 * through the default VFS, into `db`, in one transaction. */
static int import_plain(sqlite3 *db, const char *plain) {
    char *sql = sqlite3_mprintf("ATTACH 'file:%q?mode=ro&vfs=%q' AS src", plain, sqlite3_vfs_find(NULL)->zName);
    int rc = run_sql(db, sql);
    sqlite3_free(sql);
    if (rc) return rc;
    rc = run_sql(db, "BEGIN");
    sqlite3_stmt *st = NULL;
    /* Tables first (in creation order), then what refers to them. */
    const char *list =
        "SELECT type, name, sql FROM src.sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid";
    if (!rc && sqlite3_prepare_v2(db, list, -1, &st, NULL) != SQLITE_OK) rc = run_sql(db, list);
    int tables = 0;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 0), *name = (const char *)sqlite3_column_text(st, 1);
        rc = run_sql(db, (const char *)sqlite3_column_text(st, 2));
        if (!rc && strcmp(type, "table") == 0 && strncmp((const char *)sqlite3_column_text(st, 2), "CREATE VIRTUAL", 14) != 0) {
            char *copy = sqlite3_mprintf("INSERT INTO main.\"%w\" SELECT * FROM src.\"%w\"", name, name);
            rc = run_sql(db, copy);
            sqlite3_free(copy);
            tables++;
        }
    }
    sqlite3_finalize(st);
    if (!rc && sqlite3_exec(db, "SELECT 1 FROM src.sqlite_sequence", NULL, NULL, NULL) == SQLITE_OK)
        rc = run_sql(db, "DELETE FROM main.sqlite_sequence; INSERT INTO main.sqlite_sequence SELECT * FROM src.sqlite_sequence");
    rc = rc ? (run_sql(db, "ROLLBACK"), rc) : run_sql(db, "COMMIT");
    run_sql(db, "DETACH src");
    if (!rc) printf("imported %d tables from %s\n", tables, plain);
    return rc;
}

/* XTS pages do not record their key: copy the database under a fresh page key (VACUUM INTO,
 * which the VFS encrypts with the new file's own key), then swap files, keeping the old pair
 * as DB.old and DB.old-cellarkey until the swap is done. Offline: no other connection. */
static int rekey_by_copy(sqlite3 *db, const char *path) {
    char tmp[4096], tmpkey[4200], key[4200], old[4200], oldkey[4300];
    snprintf(tmp, sizeof tmp, "%s.rekey", path);
    snprintf(tmpkey, sizeof tmpkey, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, tmp);
    snprintf(key, sizeof key, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, path);
    snprintf(old, sizeof old, "%s.old", path);
    snprintf(oldkey, sizeof oldkey, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, old);
    unlink(tmp);
    unlink(tmpkey);
    char *uri = sqlite3_mprintf("file:%s?cellar_mode=xts", tmp);
    char *sql = sqlite3_mprintf("VACUUM INTO %Q", uri);
    int rc = run_sql(db, sql);
    sqlite3_free(sql);
    sqlite3_free(uri);
    sqlite3_close(db);
    if (rc != 0) {
        unlink(tmp);
        unlink(tmpkey);
        return rc;
    }
    if (link(path, old) != 0 || link(key, oldkey) != 0 || rename(tmpkey, key) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "cellar-sqlite: swap failed (%s); the previous database is in %s\n", strerror(errno), old);
        return 1;
    }
    unlink(old);
    unlink(oldkey);
    printf("re-keyed %s by copying under a new page key (XTS)\n", path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (cellar_init(CELLAR_INIT_REQUIRE_FIPS) != CELLAR_OK) return fail("FIPS mode required", CELLAR_ERR_NOT_FIPS);
    if (strcmp(cmd, "keyring-new") == 0) {
        cellar_keyring *kr = NULL;
        cellar_pkcs11_config c;
        char pin[257];
        cellar_status st;
        uint32_t kmode = 0;
        cellar_kmip_client *kc = NULL;
        if (pkcs11_config(&c, pin, sizeof pin)) { /* the tenant key is generated in the HSM */
            const char *label = env_or_die("CELLAR_PKCS11_KEY");
            st = cellar_keyring_new_pkcs11(&c, (const uint8_t *)label, strlen(label), &kr);
            memset(pin, 0, sizeof pin);
        } else if ((kc = kmip_client(&kmode)) != NULL) { /* created and activated on the server */
            const char *name = env_or_die("CELLAR_KMIP_KEY_NAME");
            st = cellar_keyring_new_kmip(kc, kmode, (const uint8_t *)name, strlen(name), &kr);
            cellar_kmip_client_free(kc);
        } else {
            st = cellar_keyring_new(NULL, &kr);
        }
        if (st != CELLAR_OK) return fail("keyring", st);
        int rc = save_keyring(kr, env_or_die("CELLAR_KEYRING"), 1);
        if (rc == 0) printf("created keyring %s (tenant key version 1)\n", getenv("CELLAR_KEYRING"));
        cellar_keyring_free(kr);
        return rc;
    }
    if (argc < 3) {
        fputs(usage, stderr);
        return 2;
    }
    const char *path = argv[2];
    cellar_keyring *kr = load_keyring();
    uint32_t mode = CELLAR_PAGE_GCM;
    if (strcmp(cmd, "create") == 0 && argc > 3 && strcmp(argv[3], "xts") == 0) mode = CELLAR_PAGE_XTS;
    if (strcmp(cmd, "import") == 0 && argc > 4 && strcmp(argv[4], "xts") == 0) mode = CELLAR_PAGE_XTS;
    if (cellar_sqlite_register(VFS, kr, mode, 0) != SQLITE_OK) {
        fprintf(stderr, "cellar-sqlite: cannot register the VFS\n");
        return 1;
    }
    int rc = 2;
    if (strcmp(cmd, "create") == 0) {
        struct stat st;
        if (stat(path, &st) == 0) {
            fprintf(stderr, "cellar-sqlite: %s exists\n", path);
            return 1;
        }
        if (argc > 3 && strcmp(argv[3], "xts") != 0 && strcmp(argv[3], "gcm") != 0) {
            fputs(usage, stderr);
            return 2;
        }
        sqlite3 *db = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        char sql[128];
        snprintf(sql, sizeof sql, "PRAGMA page_size=%d; PRAGMA application_id=1128614988", argc > 4 ? atoi(argv[4]) : 4096);
        rc = run_sql(db, sql); /* application_id writes page 1: the database now exists */
        sqlite3_close(db);
        if (rc == 0) printf("created %s (%s pages) with its wrapped page key in %s" CELLAR_SQLITE_KEYFILE_SUFFIX "\n", path,
                            mode == CELLAR_PAGE_GCM ? "AES-256-GCM" : "AES-256-XTS", path);
    } else if (strcmp(cmd, "import") == 0 && argc > 3) {
        /* argv[2] is the plaintext source, argv[3] the new encrypted database. */
        struct stat st;
        if (stat(argv[3], &st) == 0) {
            fprintf(stderr, "cellar-sqlite: %s exists\n", argv[3]);
            return 1;
        }
        sqlite3 *db = open_db(argv[3], SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        char sql[128];
        sqlite3 *src = NULL;
        int page_size = 4096;
        if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
            sqlite3_stmt *q = NULL;
            if (sqlite3_prepare_v2(src, "PRAGMA page_size", -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
                page_size = sqlite3_column_int(q, 0);
            sqlite3_finalize(q);
        }
        sqlite3_close(src);
        snprintf(sql, sizeof sql, "PRAGMA page_size=%d", page_size < 1024 ? 1024 : page_size);
        rc = run_sql(db, sql);
        if (rc == 0) rc = import_plain(db, path);
        sqlite3_close(db);
        if (rc != 0) {
            char key[4200];
            snprintf(key, sizeof key, "%s" CELLAR_SQLITE_KEYFILE_SUFFIX, argv[3]);
            unlink(argv[3]);
            unlink(key);
        }
    } else if (strcmp(cmd, "sql") == 0 && argc > 3) {
        sqlite3 *db = open_db(path, SQLITE_OPEN_READWRITE);
        rc = 0;
        for (int i = 3; i < argc && rc == 0; i++) rc = run_sql(db, argv[i]);
        sqlite3_close(db);
    } else if (strcmp(cmd, "rekey") == 0) {
        sqlite3 *db = open_db(path, SQLITE_OPEN_READWRITE);
        cellar_sqlite_scan_result s;
        if (cellar_sqlite_scan(db, &s) != SQLITE_OK) {
            fprintf(stderr, "cellar-sqlite: %s\n", cellar_sqlite_last_error());
            return 1;
        }
        if (s.mode == CELLAR_PAGE_XTS) {
            rc = rekey_by_copy(db, path);
        } else {
            uint32_t version = 0;
            int r = cellar_sqlite_rekey(db, &version);
            if (r != SQLITE_OK) fprintf(stderr, "cellar-sqlite: rekey failed: %s (%s)\n", sqlite3_errstr(r), cellar_sqlite_last_error());
            else printf("re-keyed %s: every page now under page key version %u; older versions retired\n", path, version);
            sqlite3_close(db);
            rc = r == SQLITE_OK ? 0 : 1;
        }
    } else if (strcmp(cmd, "verify") == 0) {
        rc = cmd_verify(path);
    } else if (strcmp(cmd, "migrate") == 0) {
        /* The VFS rewrites a format-1 key file as format 2 when asked through the URI. */
        char *uri = sqlite3_mprintf("file:%s?cellar_migrate=1", path);
        sqlite3 *db = open_db(uri, SQLITE_OPEN_READWRITE);
        sqlite3_free(uri);
        cellar_sqlite_scan_result s;
        rc = cellar_sqlite_scan(db, &s) == SQLITE_OK ? 0 : 1;
        if (rc == 0) printf("%s: key file authenticated (format 2, generation %llu)\n", path, (unsigned long long)s.keyfile_generation);
        else fprintf(stderr, "cellar-sqlite: %s\n", cellar_sqlite_last_error());
        sqlite3_close(db);
    } else if (strcmp(cmd, "keyring-rotate") == 0) {
        uint32_t tv = 0, kmode = 0;
        cellar_status st;
        cellar_kmip_client *kc = kmip_client(&kmode);
        cellar_pkcs11_config pc;
        char pin[257];
        if (pkcs11_config(&pc, pin, sizeof pin)) { /* the new tenant key is made in the HSM, KEY-vN */
            char label[1200];
            int n = 0;
            st = next_version_name(kr, "CELLAR_PKCS11_KEY", label, sizeof label, &n);
            if (st == CELLAR_OK) st = cellar_keyring_rotate_pkcs11(kr, &pc, (const uint8_t *)label, (size_t)n, &tv);
            memset(pin, 0, sizeof pin);
            if (kc) cellar_kmip_client_free(kc);
            if (n < 0) return 2;
        } else if (kc) { /* the new tenant key is made on the KMIP server too, named NAME-vN */
            char name[1200];
            int n = 0;
            st = next_version_name(kr, "CELLAR_KMIP_KEY_NAME", name, sizeof name, &n);
            if (st == CELLAR_OK) st = cellar_keyring_rotate_kmip(kr, kc, kmode, (const uint8_t *)name, (size_t)n, &tv);
            cellar_kmip_client_free(kc);
            if (n < 0) return 2;
        } else {
            st = cellar_keyring_rotate(kr, NULL, &tv);
        }
        if (st != CELLAR_OK) return fail("keyring rotate", st);
        /* Persist the new tenant version before any blob depends on it; old versions stay. */
        rc = save_keyring(kr, getenv("CELLAR_KEYRING"), 0);
        for (int i = 2; i < argc && rc == 0; i++) {
            sqlite3 *db = open_db(argv[i], SQLITE_OPEN_READWRITE);
            uint32_t n = 0;
            int r = cellar_sqlite_rewrap(db, &n);
            if (r != SQLITE_OK) {
                fprintf(stderr, "cellar-sqlite: rewrap %s failed: %s (%s)\n", argv[i], sqlite3_errstr(r), cellar_sqlite_last_error());
                rc = 1;
            } else {
                printf("%s: %u page keys rewrapped under tenant key version %u\n", argv[i], n, tv);
            }
            sqlite3_close(db);
        }
    } else {
        fputs(usage, stderr);
    }
    /* The VFS stays registered, and keeps using the keyring, until exit. */
    return rc;
}
