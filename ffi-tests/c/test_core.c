/* The library-wide C entry points: ABI version, version strings, status names, the thread's
 * last-error text (length and truncation), cellar_init flags, FIPS status and the per-thread
 * approval indicator. */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include "check.h"

/* The last error text contains `needle`. */
static int last_error_has(const char *needle) {
    char buf[512];
    cellar_last_error(buf, sizeof buf);
    if (strstr(buf, needle) != NULL) return 1;
    fprintf(stderr, "  last error \"%s\" lacks \"%s\"\n", buf, needle);
    return 0;
}

static void test_versions(void) {
    CHECK(cellar_abi_version() == CELLAR_ABI_VERSION);
    CHECK((cellar_abi_version() >> 16) == 1);
    CHECK((CELLAR_ABI_VERSION >> 16) == 1);

    const char *v = cellar_version();
    CHECK(v != NULL);
    CHECK(strncmp(v, "cellar ", 7) == 0);
    CHECK(strstr(v, "AWS-LC") != NULL);
    CHECK(cellar_version() == v); /* static: the same pointer every time */

    const char *m = cellar_fips_module_version();
    CHECK(m != NULL);
    CHECK(strstr(m, "AWS-LC") != NULL);
    CHECK(strstr(m, "FIPS") != NULL);
    CHECK(strstr(v, m) != NULL); /* the version string names the module's */
    printf("version: %s; module: %s\n", v, m);

    /* The default build is on the validated FIPS 3 line at the version its security policies
       name (docs/FIPS.md): this fails if any other AWS-LC was linked. */
    CHECK(strcmp(m, "AWS-LC FIPS 3.1.0") == 0);
    const char *c = cellar_fips_module_certificate();
    CHECK(c != NULL);
    CHECK(cellar_fips_module_certificate() == c); /* static */
    CHECK(strcmp(c, "AWS-LC FIPS 3 line, module AWS-LC FIPS 3.1.0: FIPS 140-3 certificate #5314 "
                    "(static module; #5298 dynamic)") == 0);
    CHECK(strstr(v, "#5314") != NULL && strstr(v, "#5298") != NULL);
    printf("certificate: %s\n", c);
}

static void test_status_names(void) {
    static const char *const names[] = {
        "CELLAR_OK", "CELLAR_ERR_NULL_POINTER", "CELLAR_ERR_INVALID_ARGUMENT",
        "CELLAR_ERR_BUFFER_TOO_SMALL", "CELLAR_ERR_AUTHENTICATION_FAILED", "CELLAR_ERR_INVALID_KEY",
        "CELLAR_ERR_UNSUPPORTED_FORMAT", "CELLAR_ERR_KEY_NOT_FOUND", "CELLAR_ERR_TENANT_LOCKED",
        "CELLAR_ERR_USAGE_LIMIT", "CELLAR_ERR_NOT_FIPS", "CELLAR_ERR_PROVIDER_FAILED",
        "CELLAR_ERR_RANDOM_FAILED", "CELLAR_ERR_INTERNAL",
    };
    /* The fixed numbering of SPEC section 8. */
    CHECK(CELLAR_OK == 0 && CELLAR_ERR_NULL_POINTER == 1 && CELLAR_ERR_INVALID_ARGUMENT == 2);
    CHECK(CELLAR_ERR_BUFFER_TOO_SMALL == 3 && CELLAR_ERR_AUTHENTICATION_FAILED == 4);
    CHECK(CELLAR_ERR_INVALID_KEY == 5 && CELLAR_ERR_UNSUPPORTED_FORMAT == 6);
    CHECK(CELLAR_ERR_KEY_NOT_FOUND == 7 && CELLAR_ERR_TENANT_LOCKED == 8);
    CHECK(CELLAR_ERR_USAGE_LIMIT == 9 && CELLAR_ERR_NOT_FIPS == 10);
    CHECK(CELLAR_ERR_PROVIDER_FAILED == 11 && CELLAR_ERR_RANDOM_FAILED == 12);
    CHECK(CELLAR_ERR_INTERNAL == 13);
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        const char *n = cellar_status_name(i);
        CHECK(n != NULL && strcmp(n, names[i]) == 0);
    }
    const cellar_status unknown[] = {-1, 14, 99, 1000, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *n = cellar_status_name(unknown[i]);
        CHECK(n != NULL && strcmp(n, "CELLAR_ERR_UNKNOWN") == 0);
    }
}

static void test_last_error(void) {
    char buf[256];
    cellar_key *k = NULL;

    /* After a success the text is empty. */
    CHECK_OK(cellar_init(0));
    memset(buf, 'x', sizeof buf);
    CHECK(cellar_last_error(buf, sizeof buf) == 0);
    CHECK(buf[0] == '\0' && buf[1] == 'x');
    CHECK(cellar_last_error(NULL, 0) == 0);

    /* A failure explains itself, naming the function and the argument. */
    CHECK_STATUS(cellar_key_generate(CELLAR_KEY_AES256, NULL), CELLAR_ERR_NULL_POINTER);
    size_t len = cellar_last_error(NULL, 0);
    CHECK(len > 10);
    CHECK(last_error_has("cellar_key_generate"));
    CHECK(last_error_has("out_key"));

    /* Full copy: the returned length excludes the NUL. */
    memset(buf, 'x', sizeof buf);
    CHECK(cellar_last_error(buf, sizeof buf) == len);
    CHECK(strlen(buf) == len);
    CHECK(buf[len] == '\0' && buf[len + 1] == 'x');
    char full[256];
    memcpy(full, buf, len + 1);

    /* Exactly fitting buffer (len + 1). */
    memset(buf, 'x', sizeof buf);
    CHECK(cellar_last_error(buf, len + 1) == len);
    CHECK(strcmp(buf, full) == 0);

    /* Truncation: cap - 1 bytes and a NUL, nothing past cap written, full length returned. */
    memset(buf, 'x', sizeof buf);
    CHECK(cellar_last_error(buf, len) == len);
    CHECK(strlen(buf) == len - 1 && strncmp(buf, full, len - 1) == 0);
    CHECK(buf[len] == 'x');
    memset(buf, 'x', sizeof buf);
    CHECK(cellar_last_error(buf, 5) == len);
    CHECK(strlen(buf) == 4 && strncmp(buf, full, 4) == 0 && buf[5] == 'x');
    memset(buf, 'x', sizeof buf);
    CHECK(cellar_last_error(buf, 1) == len);
    CHECK(buf[0] == '\0' && buf[1] == 'x');
    /* cap 0 writes nothing, even with a buffer. */
    memset(buf, 'x', sizeof buf);
    CHECK(cellar_last_error(buf, 0) == len);
    CHECK(buf[0] == 'x');
    /* Reading it does not clear it. */
    CHECK(cellar_last_error(NULL, 0) == len);

    /* Another failure replaces it; a success clears it. */
    CHECK_STATUS(cellar_key_generate(77, &k), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(k == NULL);
    CHECK(last_error_has("key type"));
    CHECK(cellar_last_error(NULL, 0) != len);
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &k));
    CHECK(cellar_last_error(NULL, 0) == 0);
    cellar_key_free(k);
}

struct thread_result {
    int32_t approved_at_start;
    size_t error_len_at_start;
    int32_t approved_after;
    cellar_status status;
};

static void *other_thread(void *arg) {
    struct thread_result *r = arg;
    r->approved_at_start = cellar_last_operation_approved();
    r->error_len_at_start = cellar_last_error(NULL, 0);
    cellar_key *k = NULL;
    r->status = cellar_key_generate(CELLAR_KEY_AES256_XTS, &k);
    r->approved_after = cellar_last_operation_approved();
    cellar_key_free(k);
    return NULL;
}

/* The last error and the approval indicator are per thread. */
static void test_per_thread_state(void) {
    CHECK_STATUS(cellar_key_generate(0, NULL), CELLAR_ERR_NULL_POINTER);
    size_t mine = cellar_last_error(NULL, 0);
    CHECK(mine > 0);
    CHECK(cellar_last_operation_approved() == -1);

    struct thread_result r;
    memset(&r, 0, sizeof r);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, &r) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(r.approved_at_start == -1); /* nothing has run on a new thread */
    CHECK(r.error_len_at_start == 0);
    CHECK(r.status == CELLAR_OK);
    CHECK(r.approved_after == 1);

    /* This thread's state did not change. */
    CHECK(cellar_last_error(NULL, 0) == mine);
    CHECK(cellar_last_operation_approved() == -1);
}

static void test_init_and_fips(void) {
    CHECK(cellar_fips_mode() == 1);
    CHECK(cellar_fips_self_test_passed() == 1);
    CHECK(cellar_fips_self_test_passed() == 1); /* cached, still true */
    CHECK(CELLAR_INIT_REQUIRE_FIPS == 1);
    CHECK_OK(cellar_init(0));
    CHECK_OK(cellar_init(CELLAR_INIT_REQUIRE_FIPS));
    CHECK_OK(cellar_init(CELLAR_INIT_REQUIRE_FIPS)); /* idempotent */
    const uint32_t bad[] = {2, 3, 0x100, 0x80000000u, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(cellar_init(bad[i]), CELLAR_ERR_INVALID_ARGUMENT);
        CHECK(last_error_has("cellar_init"));
        CHECK(last_error_has("flag"));
    }
}

/* The indicator: approved after a counted operation, unchanged by calls that do no cryptography,
 * -1 after any failure. */
static void test_indicator_semantics(void) {
    cellar_key *k = NULL;
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &k));
    CHECK_APPROVED();
    /* No cryptography: unchanged. */
    CHECK_OK(cellar_init(0));
    (void)cellar_version();
    (void)cellar_status_name(3);
    (void)cellar_key_wrapped_len(CELLAR_KEY_AES256);
    (void)cellar_fips_mode();
    uint8_t id[CELLAR_KEY_ID_LEN];
    CHECK_OK(cellar_key_id(k, id));
    CHECK_APPROVED();
    /* Any failure: -1, also one found before any cryptography. */
    CHECK_STATUS(cellar_init(0xFF), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(cellar_last_operation_approved() == -1);
    /* ... and a non-crypto success keeps -1. */
    CHECK_OK(cellar_key_id(k, id));
    CHECK(cellar_last_operation_approved() == -1);
    cellar_key_free(k);
}

/* A host may call Cellar from a thread-exit destructor, after the library's own thread-locals
 * are gone: the calls must still return statuses (not abort). */
static pthread_key_t exit_key;
static cellar_status exit_status_fail = -100, exit_status_ok = -100;
static size_t exit_error_len = 999;

static void at_thread_exit(void *arg) {
    (void)arg;
    cellar_key *k = NULL;
    exit_status_fail = cellar_key_generate(CELLAR_KEY_AES256, NULL);
    char buf[64];
    exit_error_len = cellar_last_error(buf, sizeof buf);
    exit_status_ok = cellar_key_generate(CELLAR_KEY_AES256, &k);
    cellar_key_free(k);
}

static void *exiting_thread(void *arg) {
    (void)arg;
    cellar_key *k = NULL;
    /* Use the library first so its thread-locals exist and are destroyed at exit. */
    CHECK_STATUS(cellar_key_generate(0, &k), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &k));
    cellar_key_free(k);
    pthread_setspecific(exit_key, (void *)1);
    return NULL;
}

static void test_calls_during_thread_exit(void) {
    CHECK(pthread_key_create(&exit_key, at_thread_exit) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, exiting_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(exit_status_fail == CELLAR_ERR_NULL_POINTER);
    CHECK(exit_status_ok == CELLAR_OK);
    CHECK(exit_error_len != 999);
    pthread_key_delete(exit_key);
}

int main(void) {
    /* Before anything ran on this thread the indicator is unknown and the error empty. */
    CHECK(cellar_last_operation_approved() == -1);
    CHECK(cellar_last_error(NULL, 0) == 0);
    test_versions();
    test_status_names();
    test_last_error();
    test_per_thread_state();
    test_init_and_fips();
    test_indicator_semantics();
    test_calls_during_thread_exit();
    CHECK_SUMMARY();
}
