/* The KMIP provider through the C API, against a running PyKMIP server started by
 * `make test-kmip` (scripts/kmip_server.sh). The server's directory and port come from the
 * environment: KMIP_DIR (certificates: ca.pem, client.pem/.key, other-ca.pem) and KMIP_PORT.
 * Built with -Wall -Wextra -Wpedantic -Werror and run under ASan+UBSan. */
#include "check.h"
#include <stdlib.h>
#include <unistd.h>

static char dir[512];
static char cert[600], key[600], ca[600], other_ca[600];

static cellar_kmip_config config(const char *ca_path) {
    cellar_kmip_config c;
    memset(&c, 0, sizeof c);
    c.host = (const uint8_t *)"127.0.0.1";
    c.host_len = 9;
    c.port = (uint16_t)atoi(getenv("KMIP_PORT"));
    c.client_cert_path = (const uint8_t *)cert;
    c.client_cert_path_len = strlen(cert);
    c.client_key_path = (const uint8_t *)key;
    c.client_key_path_len = strlen(key);
    c.ca_path = (const uint8_t *)ca_path;
    c.ca_path_len = strlen(ca_path);
    c.io_timeout_ms = 10000;
    return c;
}

static void unique(char *buf, size_t cap, const char *what) {
    static int n = 0;
    snprintf(buf, cap, "cellar-c-%ld-%d-%s", (long)getpid(), n++, what);
}

static void round_trip(cellar_keyring *kr, int32_t expect_approved) {
    cellar_key *dk = NULL, *back = NULL;
    uint8_t blob[600];
    size_t blob_len = 0;
    uint32_t version = 0;
    uint8_t id1[16], id2[16];
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &dk));
    CHECK_OK(cellar_keyring_wrap(kr, dk, blob, sizeof blob, &blob_len));
    CHECK(cellar_last_operation_approved() == expect_approved);
    CHECK_OK(cellar_keyring_unwrap(kr, blob, blob_len, &back, &version));
    CHECK(cellar_last_operation_approved() == expect_approved);
    CHECK_OK(cellar_key_id(dk, id1));
    CHECK_OK(cellar_key_id(back, id2));
    CHECK(memcmp(id1, id2, 16) == 0);
    blob[blob_len - 1] ^= 1;
    cellar_key_free(back);
    back = NULL;
    CHECK_STATUS(cellar_keyring_unwrap(kr, blob, blob_len, &back, &version), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(back == NULL);
    CHECK(cellar_last_operation_approved() == -1);
    cellar_key_free(dk);
}

int main(void) {
    const char *d = getenv("KMIP_DIR");
    if (!d || !getenv("KMIP_PORT")) {
        fprintf(stderr, "KMIP_DIR and KMIP_PORT must be set (make test-kmip)\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", d);
    snprintf(cert, sizeof cert, "%s/client.pem", dir);
    snprintf(key, sizeof key, "%s/client.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(other_ca, sizeof other_ca, "%s/other-ca.pem", dir);

    cellar_kmip_config cfg = config(ca);
    cellar_kmip_client *client = NULL;
    CHECK_OK(cellar_kmip_client_new(&cfg, &client));

    /* The operator's check: TLS inside the FIPS module, a KMIP version negotiated. */
    cellar_kmip_status status;
    memset(&status, 0xAB, sizeof status);
    CHECK_OK(cellar_kmip_client_check(client, &status));
    CHECK(status.tls_fips == 1);
    CHECK(status.tls_version == 0x0303 || status.tls_version == 0x0304);
    CHECK(status.cipher_suite != 0);
    CHECK(status.kmip_version >= 0x00010002u);

    uint32_t modes[2] = {CELLAR_KMIP_FETCH, CELLAR_KMIP_DELEGATED};
    for (int m = 0; m < 2; m++) {
        char name[128];
        unique(name, sizeof name, "c");
        cellar_keyring *kr = NULL;
        CHECK_OK(cellar_keyring_new_kmip(client, modes[m], (const uint8_t *)name, strlen(name), &kr));
        round_trip(kr, modes[m] == CELLAR_KMIP_FETCH ? 1 : 0);

        /* Which versions a key manager holds. */
        uint32_t mode = 0;
        char uid[256];
        size_t uid_len = 0;
        CHECK_STATUS(cellar_keyring_kmip_uid(kr, 1, &mode, (uint8_t *)uid, 0, &uid_len), CELLAR_ERR_BUFFER_TOO_SMALL);
        CHECK(uid_len > 0);
        CHECK_OK(cellar_keyring_kmip_uid(kr, 1, &mode, (uint8_t *)uid, sizeof uid - 1, &uid_len));
        uid[uid_len] = 0;
        CHECK(mode == modes[m]);
        CHECK_STATUS(cellar_keyring_kmip_uid(kr, 9, &mode, (uint8_t *)uid, sizeof uid, &uid_len), CELLAR_ERR_KEY_NOT_FOUND);

        /* A blob under version 1, for the retire-with-destroy check below. */
        cellar_key *dk1 = NULL;
        uint8_t blob1[600];
        size_t blob1_len = 0;
        CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &dk1));
        CHECK_OK(cellar_keyring_wrap(kr, dk1, blob1, sizeof blob1, &blob1_len));
        cellar_key_free(dk1);

        /* Rotate to a new server key, then adopt the first one again by unique identifier
         * into a second keyring (bring your own key). */
        uint32_t v2 = 0;
        char name2[128];
        unique(name2, sizeof name2, "rot");
        CHECK_OK(cellar_keyring_rotate_kmip(kr, client, modes[m], (const uint8_t *)name2, strlen(name2), &v2));
        CHECK(v2 == 2);
        cellar_keyring *adopted = NULL;
        CHECK_OK(cellar_keyring_adopt_kmip(client, modes[m], NULL, 0, (const uint8_t *)uid, uid_len, &adopted));
        round_trip(adopted, modes[m] == CELLAR_KMIP_FETCH ? 1 : 0);
        cellar_keyring_free(adopted);
        adopted = NULL;
        CHECK_OK(cellar_keyring_adopt_kmip(client, modes[m], (const uint8_t *)name, strlen(name), NULL, 0, &adopted));
        cellar_keyring_free(adopted);

        /* Lock drops the server keys; unlock_kmip reattaches them. */
        CHECK_OK(cellar_keyring_lock(kr));
        cellar_key *dk = NULL;
        uint8_t blob[600];
        size_t blob_len = 0;
        CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &dk));
        CHECK_STATUS(cellar_keyring_wrap(kr, dk, blob, sizeof blob, &blob_len), CELLAR_ERR_TENANT_LOCKED);
        size_t attached = 0;
        CHECK_OK(cellar_keyring_unlock_kmip(kr, client, &attached));
        CHECK(attached == 2);
        round_trip(kr, modes[m] == CELLAR_KMIP_FETCH ? 1 : 0);

        /* Export records references; import comes back locked and reconnects. */
        cellar_key *root = NULL;
        CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &root));
        uint8_t sealed[4096];
        size_t sealed_len = 0;
        CHECK_OK(cellar_keyring_wrap(kr, dk, blob, sizeof blob, &blob_len));
        CHECK_OK(cellar_keyring_export(kr, root, NULL, 0, 0, sealed, sizeof sealed, &sealed_len));
        cellar_keyring *imported = NULL;
        CHECK_OK(cellar_keyring_import(sealed, sealed_len, root, NULL, 0, &imported));
        cellar_key *back = NULL;
        uint32_t ver = 0;
        CHECK_STATUS(cellar_keyring_unwrap(imported, blob, blob_len, &back, &ver), CELLAR_ERR_TENANT_LOCKED);
        CHECK_OK(cellar_keyring_unlock_kmip(imported, client, &attached));
        CHECK(attached == 2);
        CHECK_OK(cellar_keyring_unwrap(imported, blob, blob_len, &back, &ver));
        CHECK(ver == 2);
        cellar_key_free(back);
        back = NULL;

        /* Retire version 2 destroying the server key: blobs under it are gone everywhere. */
        CHECK_STATUS(cellar_keyring_retire_kmip(kr, 2, 77), CELLAR_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(cellar_keyring_rotate_kmip(kr, client, modes[m], (const uint8_t *)"x", 0, &v2), CELLAR_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(cellar_keyring_retire_kmip(imported, 2, CELLAR_KEYRING_RETIRE_DESTROY), CELLAR_ERR_INVALID_ARGUMENT);
        CHECK_OK(cellar_keyring_retire_kmip(imported, 1, CELLAR_KEYRING_RETIRE_DESTROY));
        CHECK_STATUS(cellar_keyring_unwrap(imported, blob1, blob1_len, &back, &ver), CELLAR_ERR_KEY_NOT_FOUND);
        CHECK(back == NULL);
        CHECK_OK(cellar_keyring_unwrap(imported, blob, blob_len, &back, &ver));
        cellar_key_free(back);
        back = NULL;
        /* The other keyring still names the destroyed key: once locked, it cannot come back
         * (a destroyed key is refused on unlock, and nothing is attached). */
        CHECK_OK(cellar_keyring_lock(kr));
        CHECK_STATUS(cellar_keyring_unlock_kmip(kr, client, &attached), CELLAR_ERR_KEY_NOT_FOUND);
        CHECK_STATUS(cellar_keyring_unwrap(kr, blob1, blob1_len, &back, &ver), CELLAR_ERR_TENANT_LOCKED);
        CHECK(back == NULL);

        cellar_keyring_free(imported);
        cellar_key_free(root);
        cellar_key_free(dk);
        cellar_keyring_free(kr);
    }

    /* Bad input: NULLs, zero lengths, out-of-range modes, name and uid both or neither, wrong
     * handle kinds, a server certificate from another CA. */
    cellar_keyring *kr = NULL;
    CHECK_STATUS(cellar_kmip_client_new(NULL, &client), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_kmip_client_new(&cfg, NULL), CELLAR_ERR_NULL_POINTER);
    cellar_kmip_config bad = cfg;
    bad.host_len = 0;
    cellar_kmip_client *c2 = NULL;
    CHECK_STATUS(cellar_kmip_client_new(&bad, &c2), CELLAR_ERR_INVALID_ARGUMENT);
    bad = cfg;
    bad.port = 0;
    CHECK_STATUS(cellar_kmip_client_new(&bad, &c2), CELLAR_ERR_INVALID_ARGUMENT);
    bad = cfg;
    bad.ca_path = (const uint8_t *)"/nonexistent/ca.pem";
    bad.ca_path_len = strlen("/nonexistent/ca.pem");
    CHECK_STATUS(cellar_kmip_client_new(&bad, &c2), CELLAR_ERR_INVALID_ARGUMENT);
    bad = cfg;
    bad.host = NULL;
    CHECK_STATUS(cellar_kmip_client_new(&bad, &c2), CELLAR_ERR_NULL_POINTER);
    CHECK(c2 == NULL);
    CHECK_STATUS(cellar_keyring_new_kmip(client, 0, (const uint8_t *)"n", 1, &kr), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_new_kmip(client, 3, (const uint8_t *)"n", 1, &kr), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_new_kmip(client, 0xFFFFFFFFu, (const uint8_t *)"n", 1, &kr), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_new_kmip(NULL, CELLAR_KMIP_FETCH, (const uint8_t *)"n", 1, &kr), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_new_kmip(client, CELLAR_KMIP_FETCH, NULL, 1, &kr), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_new_kmip(client, CELLAR_KMIP_FETCH, (const uint8_t *)"n", 0, &kr), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_new_kmip(client, CELLAR_KMIP_FETCH, (const uint8_t *)"n", 1, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_adopt_kmip(client, CELLAR_KMIP_FETCH, NULL, 0, NULL, 0, &kr), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_adopt_kmip(client, CELLAR_KMIP_FETCH, (const uint8_t *)"a", 1, (const uint8_t *)"1", 1, &kr),
                 CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_adopt_kmip(client, CELLAR_KMIP_DELEGATED, (const uint8_t *)"no-such-name-c", 14, NULL, 0, &kr),
                 CELLAR_ERR_KEY_NOT_FOUND);
    CHECK_STATUS(cellar_keyring_adopt_kmip(client, CELLAR_KMIP_DELEGATED, NULL, 0, (const uint8_t *)"999999", 6, &kr),
                 CELLAR_ERR_KEY_NOT_FOUND);
    CHECK_HAS_ERROR_TEXT();
    {
        char msg[256];
        cellar_last_error(msg, sizeof msg);
        CHECK(strstr(msg, "KMIP result reason: Item Not Found") != NULL);
    }
    CHECK(kr == NULL);
    /* A keyring handle where a client is expected is refused, not misread. */
    cellar_keyring *local = NULL;
    CHECK_OK(cellar_keyring_new(NULL, &local));
    CHECK_STATUS(cellar_keyring_new_kmip((const cellar_kmip_client *)(const void *)local, CELLAR_KMIP_FETCH,
                                         (const uint8_t *)"n", 1, &kr),
                 CELLAR_ERR_INVALID_ARGUMENT);
    uint32_t mode = 0;
    size_t n = 0;
    CHECK_STATUS(cellar_keyring_kmip_uid(local, 1, &mode, NULL, 0, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_kmip_uid(local, 1, NULL, NULL, 0, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_retire_kmip(local, 1, 0), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_unlock_kmip(local, client, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_OK(cellar_keyring_unlock_kmip(local, client, &n));
    CHECK(n == 0);
    CHECK_STATUS(cellar_keyring_rotate_kmip(NULL, client, CELLAR_KMIP_FETCH, (const uint8_t *)"n", 1, &mode), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_rotate_kmip_adopt(local, client, 9, (const uint8_t *)"n", 1, NULL, 0, &mode),
                 CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_kmip_client_check(NULL, &status), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_kmip_client_check(client, NULL), CELLAR_ERR_NULL_POINTER);
    cellar_keyring_free(local);

    cellar_kmip_config foreign = config(other_ca);
    cellar_kmip_client *fc = NULL;
    CHECK_OK(cellar_kmip_client_new(&foreign, &fc));
    CHECK_STATUS(cellar_kmip_client_check(fc, &status), CELLAR_ERR_PROVIDER_FAILED);
    {
        char msg[256];
        cellar_last_error(msg, sizeof msg);
        CHECK(strstr(msg, "not trusted") != NULL);
    }
    cellar_kmip_client_free(fc);
    cellar_kmip_client_free(NULL);
    cellar_kmip_client_free(client);
    CHECK_SUMMARY();
}
