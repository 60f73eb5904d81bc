/* The PKCS#11 keyring calls from C against a real SoftHSM2 token (make test-pkcs11 prepares the
 * token directory and SOFTHSM2_CONF, initialises tokens "c-main" and "c-lock" with user PIN
 * CELLAR_TEST_PIN, then runs this). Round trip with the indicator, rotation to a second token
 * key, the PKCS11 version flag, lock / wrong PIN / unlock, export and import with reconnect, 8
 * threads wrapping and unwrapping, retire with destroy, and the error cases that reach the
 * module (missing token, wrong PIN, missing key). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"

static const char *MODULE = "/usr/lib/softhsm/libsofthsm2.so";
static const char *PIN = "4711-cellar";

static cellar_pkcs11_config config(const char *token, const char *pin) {
    cellar_pkcs11_config c;
    memset(&c, 0, sizeof c);
    c.module_path = (const uint8_t *)MODULE;
    c.module_path_len = strlen(MODULE);
    c.token_label = (const uint8_t *)token;
    c.token_label_len = strlen(token);
    c.pin = (const uint8_t *)pin;
    c.pin_len = strlen(pin);
    c.max_sessions = 4;
    /* SoftHSM 2.6 zero-pads its RFC 5649 input (docs/KEYS.md): allowed explicitly. */
    c.flags = CELLAR_PKCS11_ALLOW_ZERO_PADDED_KWP;
    return c;
}

static int error_mentions(const char *needle) {
    char buf[512];
    cellar_last_error(buf, sizeof buf);
    return strstr(buf, needle) != NULL;
}

static cellar_keyring *shared;

/* Threads count their own failures (the CHECK counters are not thread-safe). */
static void *worker(void *arg) {
    int *failures = arg;
    for (int i = 0; i < 20; i++) {
        cellar_key *dek = NULL, *back = NULL;
        uint8_t blob[CELLAR_KEYRING_MAX_WRAPPED_LEN];
        size_t n = 0;
        uint32_t v = 0;
        uint8_t a[16], b[16];
        if (cellar_key_generate(CELLAR_KEY_AES256, &dek) != CELLAR_OK ||
            cellar_keyring_wrap(shared, dek, blob, sizeof blob, &n) != CELLAR_OK ||
            cellar_last_operation_approved() != 0 ||
            cellar_keyring_unwrap(shared, blob, n, &back, &v) != CELLAR_OK ||
            cellar_last_operation_approved() != 0 || cellar_key_id(dek, a) != CELLAR_OK ||
            cellar_key_id(back, b) != CELLAR_OK || memcmp(a, b, 16) != 0)
            (*failures)++;
        cellar_key_free(dek);
        cellar_key_free(back);
    }
    return NULL;
}

int main(void) {
    cellar_pkcs11_config c = config("c-main", PIN);
    cellar_keyring *kr = NULL;
    CHECK_OK(cellar_keyring_new_pkcs11(&c, (const uint8_t *)"c-tenant", 8, &kr));
    CHECK(cellar_last_operation_approved() == 0);
    uint8_t id[16];
    uint32_t flags = 0;
    CHECK_OK(cellar_keyring_version_info(kr, 1, id, &flags));
    CHECK(flags & CELLAR_KEYRING_VERSION_PKCS11);
    CHECK(flags & CELLAR_KEYRING_VERSION_PROVIDER);

    /* Round trip inside the token; the blob is a SPEC 3 blob naming version 1. */
    cellar_key *dek = NULL, *back = NULL;
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &dek));
    uint8_t blob[CELLAR_KEYRING_MAX_WRAPPED_LEN], blob2[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t n = 0, n2 = 0;
    uint32_t v = 0;
    CHECK_OK(cellar_keyring_wrap(kr, dek, blob, sizeof blob, &n));
    CHECK(cellar_last_operation_approved() == 0);
    CHECK(n == 82 && blob[0] == 0x57 && blob[1] == 0x01 && memcmp(blob + 2, id, 16) == 0);
    CHECK_OK(cellar_keyring_unwrap(kr, blob, n, &back, &v));
    CHECK(cellar_last_operation_approved() == 0 && v == 1);
    cellar_key_free(back);

    /* Rotation to a second token key; rewrap; the old version still unwraps. */
    CHECK_OK(cellar_keyring_rotate_pkcs11(kr, &c, (const uint8_t *)"c-tenant-2", 10, &v));
    CHECK(v == 2);
    CHECK_OK(cellar_keyring_rewrap(kr, blob, n, blob2, sizeof blob2, &n2));
    CHECK_OK(cellar_keyring_unwrap(kr, blob2, n2, &back, &v));
    CHECK(v == 2);
    cellar_key_free(back);
    /* Adopting the same key again is refused (already a version). */
    CHECK_STATUS(cellar_keyring_rotate_pkcs11_adopt(kr, &c, (const uint8_t *)"c-tenant", 8, NULL, 0, &v),
                 CELLAR_ERR_INVALID_KEY);
    /* No such key. */
    cellar_keyring *r2 = NULL;
    CHECK_STATUS(cellar_keyring_adopt_pkcs11(&c, (const uint8_t *)"nobody", 6, NULL, 0, &r2), CELLAR_ERR_KEY_NOT_FOUND);
    CHECK(r2 == NULL);
    /* BYOK: a second keyring on the same token key, by label. */
    CHECK_OK(cellar_keyring_adopt_pkcs11(&c, (const uint8_t *)"c-tenant", 8, NULL, 0, &r2));
    uint8_t id2[16];
    CHECK_OK(cellar_keyring_version_info(r2, 1, id2, &flags));
    CHECK(memcmp(id, id2, 16) == 0);
    cellar_keyring_free(r2);

    /* 8 threads share the keyring (4 sessions). */
    shared = kr;
    pthread_t t[8];
    int failures[8] = {0};
    for (int i = 0; i < 8; i++) CHECK(pthread_create(&t[i], NULL, worker, &failures[i]) == 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        CHECK(failures[i] == 0);
    }

    /* Export (references, no material), import, reconnect. */
    cellar_key *root = NULL;
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &root));
    static uint8_t st[4096];
    size_t stl = 0;
    CHECK_OK(cellar_keyring_export(kr, root, NULL, 0, 0, st, sizeof st, &stl));
    cellar_keyring *imp = NULL;
    CHECK_OK(cellar_keyring_import(st, stl, root, NULL, 0, &imp));
    CHECK_STATUS(cellar_keyring_unwrap(imp, blob2, n2, &back, &v), CELLAR_ERR_TENANT_LOCKED);
    cellar_pkcs11_config wrong = config("", "wrong-pin-123");
    wrong.module_path_len = 0; /* the recorded path */
    size_t attached = 99;
    /* The keyring `kr` keeps this process logged in with the right PIN: another PIN is refused. */
    CHECK_STATUS(cellar_keyring_unlock_pkcs11(imp, &wrong, &attached), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(error_mentions("CKR_PIN_INCORRECT"));
    CHECK(attached == 99);
    cellar_pkcs11_config right = config("", PIN);
    right.module_path_len = 0;
    CHECK_OK(cellar_keyring_unlock_pkcs11(imp, &right, &attached));
    CHECK(attached == 2);
    CHECK_OK(cellar_keyring_unwrap(imp, blob2, n2, &back, &v));
    CHECK(v == 2);
    cellar_key_free(back);
    cellar_keyring_free(imp);

    /* Retire version 1 destroying its token object: a new adoption no longer finds it. */
    CHECK_OK(cellar_keyring_retire_pkcs11(kr, 1, CELLAR_KEYRING_RETIRE_DESTROY));
    CHECK_STATUS(cellar_keyring_unwrap(kr, blob, n, &back, &v), CELLAR_ERR_KEY_NOT_FOUND);
    CHECK_STATUS(cellar_keyring_adopt_pkcs11(&c, (const uint8_t *)"c-tenant", 8, NULL, 0, &r2), CELLAR_ERR_KEY_NOT_FOUND);
    cellar_keyring_free(kr);

    /* Lock / wrong PIN / unlock on a token no other keyring here holds (so lock logs out). */
    cellar_pkcs11_config cl = config("c-lock", PIN);
    CHECK_OK(cellar_keyring_new_pkcs11(&cl, (const uint8_t *)"k", 1, &kr));
    CHECK_OK(cellar_keyring_wrap(kr, dek, blob, sizeof blob, &n));
    CHECK_OK(cellar_keyring_lock(kr));
    CHECK_STATUS(cellar_keyring_wrap(kr, dek, blob2, sizeof blob2, &n2), CELLAR_ERR_TENANT_LOCKED);
    cellar_pkcs11_config bad = config("", "wrong-pin-123");
    bad.module_path_len = 0;
    CHECK_STATUS(cellar_keyring_unlock_pkcs11(kr, &bad, &attached), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(error_mentions("CKR_PIN_INCORRECT"));
    CHECK_STATUS(cellar_keyring_unwrap(kr, blob, n, &back, &v), CELLAR_ERR_TENANT_LOCKED);
    CHECK_OK(cellar_keyring_unlock_pkcs11(kr, &right, &attached));
    CHECK(attached == 1);
    CHECK_OK(cellar_keyring_unwrap(kr, blob, n, &back, &v));
    cellar_key_free(back);
    cellar_keyring_free(kr);

    /* Errors that reach the module: no such token; wrong PIN at creation. */
    cellar_pkcs11_config none = config("no-such-token", PIN);
    CHECK_STATUS(cellar_keyring_new_pkcs11(&none, (const uint8_t *)"k", 1, &kr), CELLAR_ERR_PROVIDER_FAILED);
    CHECK(error_mentions("no token"));
    cellar_pkcs11_config strict = config("c-lock", PIN);
    strict.flags = 0;
    CHECK_STATUS(cellar_keyring_new_pkcs11(&strict, (const uint8_t *)"k", 1, &kr), CELLAR_ERR_PROVIDER_FAILED);
    CHECK(error_mentions("zero-pads"));

    cellar_key_free(dek);
    cellar_key_free(root);
    CHECK_SUMMARY();
}
