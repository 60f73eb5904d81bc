/* The PKCS#11 keyring calls from C against a real SoftHSM2 token (make test-pkcs11 prepares the
 * token directory and SOFTHSM2_CONF, initialises tokens "c-main" and "c-lock" with user PIN
 * CELLAR_TEST_PIN, then runs this). Round trip with the indicator, data keys of every purpose and
 * both sizes, rotation to a second token key, the PKCS11 version flag, BYOK adoption by label and
 * by CKA_ID, refusal of an extractable key and of a key without CKA_UNWRAP (with the reason),
 * lock (checked from outside: a session of the test's own sees the token logged out) / wrong PIN
 * / unlock, export and import with reconnect in this process and in a new one (this binary run
 * again with --reimport DIR), 8 threads wrapping and unwrapping, retire with destroy, and the
 * error cases that reach the module (missing token, wrong PIN at creation and at unlock, missing
 * key, the zero-padding refusal, a token offering neither mechanism through the test-only filter
 * module p11_filter.c). The test's own PKCS#11 calls (to make keys for Cellar to adopt
 * and to look at the login state) go straight to the module through its function list
 * (p11_min.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "p11_min.h"

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

/* ---- The test's own view of the module (the same library instance libcellar loaded). ---- */

static CK_FUNCTION_LIST *p11(void) {
    static CK_FUNCTION_LIST *list;
    if (list) return list;
    void *h = dlopen(MODULE, RTLD_NOW);
    if (!h) return NULL;
    void *sym = dlsym(h, "C_GetFunctionList");
    P11_GetFunctionList_fn get;
    if (!sym) return NULL;
    memcpy(&get, &sym, sizeof get);
    if (get(&list) != CKR_OK) return NULL;
    /* Already initialised by libcellar (with OS locking) by the time this runs: that is fine. */
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = P11_CALL(list, Initialize)(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) list = NULL;
    return list;
}

static int find_slot(const char *token, CK_SLOT_ID *out) {
    CK_FUNCTION_LIST *l = p11();
    CK_SLOT_ID slots[32];
    CK_ULONG n = 32;
    if (!l || P11_CALL(l, GetSlotList)(1, slots, &n) != CKR_OK) return 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        char want[32];
        memset(want, ' ', sizeof want);
        memcpy(want, token, strlen(token));
        if (P11_CALL(l, GetTokenInfo)(slots[i], &info) == CKR_OK && memcmp(info.label, want, 32) == 0) {
            *out = slots[i];
            return 1;
        }
    }
    return 0;
}

/* A session of the test's own on `token`, opened without logging in: its state says whether the
 * process is logged in to the token (login state is per application and token). 0 on failure. */
static CK_STATE login_state(const char *token) {
    CK_FUNCTION_LIST *l = p11();
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_SESSION_INFO info;
    if (!find_slot(token, &slot) || P11_CALL(l, OpenSession)(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK)
        return 0;
    CK_RV rv = P11_CALL(l, GetSessionInfo)(s, &info);
    P11_CALL(l, CloseSession)(s);
    return rv == CKR_OK ? info.state : 0;
}

/* Generates an AES-256 token key labelled `label` with CKA_ID `id`, as a customer would for BYOK
 * (or wrongly: extractable, or without CKA_UNWRAP). Returns 1 on success. */
static int make_token_key(const char *token, const char *label, const char *id, CK_BBOOL extractable, CK_BBOOL unwrap) {
    CK_FUNCTION_LIST *l = p11();
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    if (!find_slot(token, &slot) || P11_CALL(l, OpenSession)(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK)
        return 0;
    CK_RV rv = P11_CALL(l, Login)(s, CKU_USER, (CK_BYTE *)PIN, strlen(PIN));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        P11_CALL(l, CloseSession)(s);
        return 0;
    }
    CK_BBOOL yes = 1, sensitive = !extractable;
    CK_ULONG len = 32;
    CK_ATTRIBUTE t[] = {
        {CKA_TOKEN, &yes, 1},
        {CKA_PRIVATE, &yes, 1},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)id, strlen(id)},
        {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_SENSITIVE, &sensitive, 1},
        {CKA_EXTRACTABLE, &extractable, 1},
        {CKA_WRAP, &yes, 1},
        {CKA_UNWRAP, &unwrap, 1},
    };
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE h;
    rv = P11_CALL(l, GenerateKey)(s, &m, t, sizeof t / sizeof t[0], &h);
    P11_CALL(l, CloseSession)(s);
    return rv == CKR_OK;
}

/* ---- Export re-imported in a new process ---- */

static const char *EXPORT_PASSWORD = "c-export-password-0815";

static int write_file(const char *dir, const char *name, const void *data, size_t len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static size_t read_file(const char *dir, const char *name, void *data, size_t cap) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(data, 1, cap, f);
    fclose(f);
    return n;
}

/* The child: it has only the export (sealed under a password), a blob, the data key's id, the
 * PIN and the token. Imports (token versions come back detached), is refused with a wrong PIN by
 * the token itself (nothing in this process is logged in), reconnects with the right one and
 * unwraps. */
static int child_reimport(const char *dir) {
    static uint8_t st[4096];
    uint8_t blob[CELLAR_KEYRING_MAX_WRAPPED_LEN], want_id[16], got_id[16];
    size_t stl = read_file(dir, "state", st, sizeof st);
    size_t n = read_file(dir, "blob", blob, sizeof blob);
    CHECK(stl > 0 && n > 0 && read_file(dir, "dk", want_id, 16) == 16);
    cellar_keyring *kr = NULL;
    cellar_key *back = NULL;
    uint32_t v = 0, flags = 0;
    uint8_t id[16];
    CHECK_OK(cellar_keyring_import(st, stl, NULL, (const uint8_t *)EXPORT_PASSWORD, strlen(EXPORT_PASSWORD), &kr));
    CHECK_OK(cellar_keyring_version_info(kr, 2, id, &flags));
    CHECK(flags & CELLAR_KEYRING_VERSION_PKCS11);
    CHECK_STATUS(cellar_keyring_unwrap(kr, blob, n, &back, &v), CELLAR_ERR_TENANT_LOCKED);
    cellar_pkcs11_config c = config("", "wrong-pin-123");
    c.module_path_len = 0;
    size_t attached = 99;
    CHECK_STATUS(cellar_keyring_unlock_pkcs11(kr, &c, &attached), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(error_mentions("CKR_PIN_INCORRECT"));
    CHECK(attached == 99);
    CHECK_STATUS(cellar_keyring_unwrap(kr, blob, n, &back, &v), CELLAR_ERR_TENANT_LOCKED);
    c = config("", PIN);
    c.module_path_len = 0;
    CHECK_OK(cellar_keyring_unlock_pkcs11(kr, &c, &attached));
    CHECK(attached == 2);
    CHECK_OK(cellar_keyring_unwrap(kr, blob, n, &back, &v));
    CHECK(v == 2);
    CHECK(cellar_last_operation_approved() == 0);
    CHECK_OK(cellar_key_id(back, got_id));
    CHECK(memcmp(got_id, want_id, 16) == 0);
    cellar_key_free(back);
    cellar_keyring_free(kr);
    printf("child: re-imported the export and reconnected %zu token versions\n", attached);
    CHECK_SUMMARY();
}

/* Runs this binary again as `--reimport DIR`; returns its exit status (-1 if it did not run). */
static int run_child(const char *dir) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execl("/proc/self/exe", "test_pkcs11", "--reimport", dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
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

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--reimport") == 0) return child_reimport(argv[2]);
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

    /* Data keys of every purpose and both sizes (records of 53/85 bytes without a purpose, 54/86
     * with one: blob format 0x01 / 0x02) wrap and unwrap through the token, keeping the purpose. */
    for (uint32_t kt = CELLAR_KEY_AES256; kt <= CELLAR_KEY_AES256_XTS; kt++) {
        for (uint32_t p = CELLAR_KEY_PURPOSE_NONE; p <= CELLAR_KEY_PURPOSE_KEY_DERIVATION; p++) {
            if (kt == CELLAR_KEY_AES256_XTS && p == CELLAR_KEY_PURPOSE_KEY_WRAPPING) continue;
            cellar_key *pk = NULL, *pb = NULL;
            uint8_t a[16], b[16];
            uint32_t got = 99;
            CHECK_OK(cellar_key_generate_purpose(kt, p, &pk));
            CHECK_OK(cellar_keyring_wrap(kr, pk, blob2, sizeof blob2, &n2));
            CHECK(blob2[1] == (p == CELLAR_KEY_PURPOSE_NONE ? 0x01 : 0x02));
            CHECK_OK(cellar_keyring_unwrap(kr, blob2, n2, &pb, &v));
            CHECK(v == 1 && cellar_last_operation_approved() == 0);
            CHECK_OK(cellar_key_id(pk, a));
            CHECK_OK(cellar_key_id(pb, b));
            CHECK(memcmp(a, b, 16) == 0);
            CHECK_OK(cellar_key_purpose(pb, &got));
            CHECK(got == p);
            cellar_key_free(pk);
            cellar_key_free(pb);
        }
    }

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
    /* BYOK by CKA_ID: a customer key made in the token outside Cellar, found by its id alone;
     * by its label it is the same key (same fingerprint), and it wraps and unwraps. */
    CHECK(make_token_key("c-main", "c-customer", "customer-id-0001", 0, 1));
    r2 = NULL;
    CHECK_OK(cellar_keyring_adopt_pkcs11(&c, NULL, 0, (const uint8_t *)"customer-id-0001", 16, &r2));
    CHECK_OK(cellar_keyring_version_info(r2, 1, id2, &flags));
    CHECK(flags & CELLAR_KEYRING_VERSION_PKCS11);
    uint8_t blob3[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t n3 = 0;
    CHECK_OK(cellar_keyring_wrap(r2, dek, blob3, sizeof blob3, &n3));
    CHECK(cellar_last_operation_approved() == 0);
    cellar_keyring_free(r2);
    r2 = NULL;
    CHECK_OK(cellar_keyring_adopt_pkcs11(&c, (const uint8_t *)"c-customer", 10, NULL, 0, &r2));
    uint8_t id3[16];
    CHECK_OK(cellar_keyring_version_info(r2, 1, id3, &flags));
    CHECK(memcmp(id2, id3, 16) == 0);
    CHECK_OK(cellar_keyring_unwrap(r2, blob3, n3, &back, &v));
    CHECK(v == 1);
    cellar_key_free(back);
    cellar_keyring_free(r2);
    r2 = NULL;
    CHECK_STATUS(cellar_keyring_adopt_pkcs11(&c, NULL, 0, (const uint8_t *)"no-such-id", 10, &r2), CELLAR_ERR_KEY_NOT_FOUND);
    /* A customer key that is extractable, or that cannot unwrap, is refused with the reason. */
    CHECK(make_token_key("c-main", "c-leaky", "leaky-id", 1, 1));
    CHECK_STATUS(cellar_keyring_adopt_pkcs11(&c, (const uint8_t *)"c-leaky", 7, NULL, 0, &r2), CELLAR_ERR_INVALID_KEY);
    CHECK(error_mentions("CKA_EXTRACTABLE"));
    CHECK_STATUS(cellar_keyring_adopt_pkcs11(&c, NULL, 0, (const uint8_t *)"leaky-id", 8, &r2), CELLAR_ERR_INVALID_KEY);
    CHECK(error_mentions("CKA_EXTRACTABLE"));
    CHECK(make_token_key("c-main", "c-wrap-only", "wrap-only-id", 0, 0));
    CHECK_STATUS(cellar_keyring_adopt_pkcs11(&c, (const uint8_t *)"c-wrap-only", 11, NULL, 0, &r2), CELLAR_ERR_INVALID_KEY);
    CHECK(error_mentions("CKA_UNWRAP"));
    CHECK_STATUS(cellar_keyring_rotate_pkcs11_adopt(kr, &c, (const uint8_t *)"c-wrap-only", 11, NULL, 0, &v), CELLAR_ERR_INVALID_KEY);
    CHECK(error_mentions("CKA_UNWRAP"));
    CHECK(r2 == NULL);

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

    /* The same export, sealed under a password, re-imported in a NEW process (this binary run
     * again) that reconnects to the token with the PIN and unwraps blob2. */
    const char *conf = getenv("SOFTHSM2_CONF");
    char dir[1024];
    CHECK(conf != NULL && strlen(conf) < sizeof dir);
    if (conf) {
        snprintf(dir, sizeof dir, "%s", conf);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        static uint8_t pst[4096];
        size_t pstl = 0;
        uint8_t dk_id[16];
        CHECK_OK(cellar_keyring_export(kr, NULL, (const uint8_t *)EXPORT_PASSWORD, strlen(EXPORT_PASSWORD),
                                       CELLAR_PASSWORD_MIN_ITERATIONS, pst, sizeof pst, &pstl));
        CHECK_OK(cellar_key_id(dek, dk_id));
        CHECK(write_file(dir, "state", pst, pstl) && write_file(dir, "blob", blob2, n2) && write_file(dir, "dk", dk_id, 16));
        CHECK(run_child(dir) == 0);
    }

    /* Retire version 1 destroying its token object: a new adoption no longer finds it. */
    CHECK_OK(cellar_keyring_retire_pkcs11(kr, 1, CELLAR_KEYRING_RETIRE_DESTROY));
    CHECK_STATUS(cellar_keyring_unwrap(kr, blob, n, &back, &v), CELLAR_ERR_KEY_NOT_FOUND);
    CHECK_STATUS(cellar_keyring_adopt_pkcs11(&c, (const uint8_t *)"c-tenant", 8, NULL, 0, &r2), CELLAR_ERR_KEY_NOT_FOUND);
    cellar_keyring_free(kr);

    /* Wrong PIN at creation, on a token nobody in this process is logged in to: the token
     * itself refuses it. */
    CHECK(login_state("c-lock") == CKS_RW_PUBLIC_SESSION);
    cellar_pkcs11_config badc = config("c-lock", "wrong-pin-123");
    CHECK_STATUS(cellar_keyring_new_pkcs11(&badc, (const uint8_t *)"k", 1, &kr), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(error_mentions("CKR_PIN_INCORRECT"));
    CHECK(login_state("c-lock") == CKS_RW_PUBLIC_SESSION);

    /* Lock / wrong PIN / unlock on a token no other keyring here holds (so lock logs out). The
     * test's own fresh sessions (never logged in or out by the test) see Cellar's login state. */
    cellar_pkcs11_config cl = config("c-lock", PIN);
    CHECK_OK(cellar_keyring_new_pkcs11(&cl, (const uint8_t *)"k", 1, &kr));
    CHECK_OK(cellar_keyring_wrap(kr, dek, blob, sizeof blob, &n));
    CHECK(login_state("c-lock") == CKS_RW_USER_FUNCTIONS);
    CHECK_OK(cellar_keyring_lock(kr));
    CHECK(login_state("c-lock") == CKS_RW_PUBLIC_SESSION);
    CHECK_STATUS(cellar_keyring_wrap(kr, dek, blob2, sizeof blob2, &n2), CELLAR_ERR_TENANT_LOCKED);
    cellar_pkcs11_config bad = config("", "wrong-pin-123");
    bad.module_path_len = 0;
    CHECK_STATUS(cellar_keyring_unlock_pkcs11(kr, &bad, &attached), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(error_mentions("CKR_PIN_INCORRECT"));
    CHECK_STATUS(cellar_keyring_unwrap(kr, blob, n, &back, &v), CELLAR_ERR_TENANT_LOCKED);
    CHECK(login_state("c-lock") == CKS_RW_PUBLIC_SESSION);
    CHECK_OK(cellar_keyring_unlock_pkcs11(kr, &right, &attached));
    CHECK(attached == 1);
    CHECK(login_state("c-lock") == CKS_RW_USER_FUNCTIONS);
    CHECK_OK(cellar_keyring_unwrap(kr, blob, n, &back, &v));
    cellar_key_free(back);
    cellar_keyring_free(kr);

    /* Errors that reach the module: no such token; a token that zero-pads, without the flag. */
    cellar_pkcs11_config none = config("no-such-token", PIN);
    CHECK_STATUS(cellar_keyring_new_pkcs11(&none, (const uint8_t *)"k", 1, &kr), CELLAR_ERR_PROVIDER_FAILED);
    CHECK(error_mentions("no token"));
    cellar_pkcs11_config strict = config("c-lock", PIN);
    strict.flags = 0;
    CHECK_STATUS(cellar_keyring_new_pkcs11(&strict, (const uint8_t *)"k", 1, &kr), CELLAR_ERR_PROVIDER_FAILED);
    CHECK(error_mentions("zero-pads"));

    /* A token that offers neither RFC 5649 mechanism: the test-only filter module over the real
     * SoftHSM2 (p11_filter.c; make test-pkcs11 builds it and sets CELLAR_P11_FILTER_HIDE=210a,210b)
     * hides CKM_AES_KEY_WRAP_PAD and CKM_AES_KEY_WRAP_KWP; everything else is SoftHSM2's own. */
    const char *filter = getenv("CELLAR_TEST_FILTER_MODULE");
    CHECK(filter != NULL);
    if (filter) {
        cellar_pkcs11_config fc = config("c-main", PIN);
        fc.module_path = (const uint8_t *)filter;
        fc.module_path_len = strlen(filter);
        CHECK_STATUS(cellar_keyring_new_pkcs11(&fc, (const uint8_t *)"never", 5, &kr), CELLAR_ERR_PROVIDER_FAILED);
        CHECK(error_mentions("neither CKM_AES_KEY_WRAP_KWP nor CKM_AES_KEY_WRAP_PAD"));
        CHECK_STATUS(cellar_keyring_adopt_pkcs11(&fc, (const uint8_t *)"c-customer", 10, NULL, 0, &kr), CELLAR_ERR_PROVIDER_FAILED);
        CHECK(error_mentions("neither"));
    }

    cellar_key_free(dek);
    cellar_key_free(root);
    CHECK_SUMMARY();
}
