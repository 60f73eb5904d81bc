/* Bad-input matrix over every function of include/cellar.h: NULL for each pointer argument in
 * turn, zero and huge lengths, short output buffers, unknown enum integers, wrong key types and
 * handles of the wrong kind. Each failing call must return the exact status, leave a non-empty
 * last-error text, and leave out-parameters/buffers as the contract says (untouched, or zeroed
 * where documented). Freed handles are not tested: reading a freed handle's magic is use after
 * free in C terms, so it is not defined behaviour for a host to rely on.
 * scripts/check_matrix.sh checks that every cellar_* function in the header appears here. */
#include <stdint.h>
#include <stdlib.h>
#include "check.h"

#define SENT 0xA5
#define HUGE SIZE_MAX
#define HALF (SIZE_MAX / 2)

/* A failing call: exact status, a non-empty last error and an indicator of -1. */
#define BAD(call, expected)                                   \
    do {                                                      \
        CHECK_STATUS(call, expected);                         \
        CHECK_HAS_ERROR_TEXT();                               \
        CHECK(cellar_last_operation_approved() == -1);        \
    } while (0)

/* A size query (out_cap 0, issue 20 item 8): BUFFER_TOO_SMALL with the size, and neither the
 * last-error text nor the indicator changes, after a failure (-1, its text) and after an
 * approved success (1, no text). */
static void probe_after_failure(void) {
    cellar_key *k = NULL;
    (void)cellar_key_generate(99u, &k);
}
static void probe_after_success(void) {
    cellar_key *k = NULL;
    if (cellar_key_generate(CELLAR_KEY_AES256, &k) == CELLAR_OK) cellar_key_free(k);
}
#define PROBE(call)                                                   \
    do {                                                              \
        char pe1_[256], pe2_[256];                                    \
        probe_after_failure();                                        \
        cellar_last_error(pe1_, sizeof pe1_);                         \
        CHECK_STATUS(call, CELLAR_ERR_BUFFER_TOO_SMALL);              \
        cellar_last_error(pe2_, sizeof pe2_);                         \
        CHECK(pe1_[0] != '\0' && strcmp(pe1_, pe2_) == 0);            \
        CHECK(cellar_last_operation_approved() == -1);                \
        probe_after_success();                                        \
        CHECK_STATUS(call, CELLAR_ERR_BUFFER_TOO_SMALL);              \
        CHECK(cellar_last_error(NULL, 0) == 0);                       \
        CHECK(cellar_last_operation_approved() == 1);                 \
    } while (0)

static int all_is(const uint8_t *p, size_t n, uint8_t v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

static const uint32_t BAD_ENUMS[] = {0u, 99u, (uint32_t)-1, (uint32_t)INT32_MAX};
#define N_BAD_ENUMS (sizeof BAD_ENUMS / sizeof BAD_ENUMS[0])

static cellar_status prov_wrap(void *c, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                               size_t *out_len) {
    (void)c;
    if (cap < in_len) return CELLAR_ERR_BUFFER_TOO_SMALL;
    for (size_t i = 0; i < in_len; i++) out[i] = in[i] ^ 0x5a;
    *out_len = in_len;
    return CELLAR_OK;
}
static cellar_status prov_unwrap(void *c, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                                 size_t *out_len) {
    return prov_wrap(c, in, in_len, out, cap, out_len);
}

static cellar_key *aes, *xts;
static cellar_page_cipher *pgcm, *pxts;
static cellar_cell_cipher *cell;
static cellar_keyring *ring;
static cellar_key *k2; /* the keyring's version 2 */

static void matrix_core(void) {
    /* cellar_abi_version, cellar_version, cellar_fips_*: no arguments; never fail. */
    CHECK(cellar_abi_version() >> 16 == CELLAR_ABI_VERSION >> 16);
    CHECK(cellar_version() != NULL && cellar_version()[0] != '\0');
    CHECK(cellar_fips_module_version() != NULL);
    CHECK(cellar_fips_module_certificate() != NULL && cellar_fips_module_certificate()[0] != '\0');
    CHECK(cellar_fips_mode() == 0 || cellar_fips_mode() == 1);
    CHECK(cellar_fips_self_test_passed() == 0 || cellar_fips_self_test_passed() == 1);
    /* cellar_status_name: unknown integers. */
    const int32_t odd[] = {-1, 14, 99, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        CHECK(strcmp(cellar_status_name(odd[i]), "CELLAR_ERR_UNKNOWN") == 0);
    /* cellar_init: unknown flag bits. */
    const uint32_t flags[] = {2u, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < 3; i++) BAD(cellar_init(flags[i]), CELLAR_ERR_INVALID_ARGUMENT);
    /* cellar_last_error: NULL/0 gives the length; a short buffer is NUL-terminated. */
    BAD(cellar_key_generate(99, NULL), CELLAR_ERR_NULL_POINTER);
    size_t n = cellar_last_error(NULL, 0);
    CHECK(n > 0);
    CHECK(cellar_last_error(NULL, 100) == n);
    char small[4];
    memset(small, SENT, sizeof small);
    CHECK(cellar_last_error(small, sizeof small) == n);
    CHECK(small[3] == '\0');
    char one[1] = {'x'};
    cellar_last_error(one, 1);
    CHECK(one[0] == '\0');
    (void)cellar_last_operation_approved();
}

static void matrix_keys(void) {
    uint8_t mat[64];
    for (int i = 0; i < 64; i++) mat[i] = (uint8_t)i;
    cellar_key *k = (cellar_key *)(uintptr_t)0x1;  /* must stay untouched on failure */
    cellar_key *const K0 = k;

    /* cellar_key_generate */
    BAD(cellar_key_generate(CELLAR_KEY_AES256, NULL), CELLAR_ERR_NULL_POINTER);
    for (size_t i = 0; i < N_BAD_ENUMS; i++) {
        BAD(cellar_key_generate(BAD_ENUMS[i], &k), CELLAR_ERR_INVALID_ARGUMENT);
        CHECK(k == K0);
    }
    /* cellar_key_import */
    BAD(cellar_key_import(CELLAR_KEY_AES256, NULL, 32, &k), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_import(CELLAR_KEY_AES256, mat, 32, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_import(CELLAR_KEY_AES256, mat, 0, &k), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_key_import(CELLAR_KEY_AES256, mat, 31, &k), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_key_import(CELLAR_KEY_AES256, mat, 64, &k), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_key_import(CELLAR_KEY_AES256_XTS, mat, 32, &k), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_key_import(CELLAR_KEY_AES256, mat, HUGE, &k), CELLAR_ERR_INVALID_ARGUMENT);
    uint8_t same[64];
    memset(same, 7, sizeof same);
    BAD(cellar_key_import(CELLAR_KEY_AES256_XTS, same, 64, &k), CELLAR_ERR_INVALID_KEY);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        BAD(cellar_key_import(BAD_ENUMS[i], mat, 32, &k), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(k == K0);
    /* cellar_key_derive */
    const uint8_t label[] = "tbl";
    BAD(cellar_key_derive(NULL, CELLAR_KEY_AES256, label, 3, &k), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_derive(aes, CELLAR_KEY_AES256, NULL, 3, &k), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_derive(aes, CELLAR_KEY_AES256, label, 3, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_derive(aes, CELLAR_KEY_AES256, label, 0, &k), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_derive(aes, CELLAR_KEY_AES256, label, HUGE, &k), CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        BAD(cellar_key_derive(aes, BAD_ENUMS[i], label, 3, &k), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_derive((const cellar_key *)pgcm, CELLAR_KEY_AES256, label, 3, &k),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(k == K0);
    /* cellar_key_derive_v1 (same rules as cellar_key_derive) */
    BAD(cellar_key_derive_v1(NULL, CELLAR_KEY_AES256, label, 3, &k), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_derive_v1(aes, CELLAR_KEY_AES256, NULL, 3, &k), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_derive_v1(aes, CELLAR_KEY_AES256, label, 3, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_derive_v1(aes, CELLAR_KEY_AES256, label, 0, &k), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_derive_v1(aes, CELLAR_KEY_AES256, label, HUGE, &k), CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        BAD(cellar_key_derive_v1(aes, BAD_ENUMS[i], label, 3, &k), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_derive_v1((const cellar_key *)pgcm, CELLAR_KEY_AES256, label, 3, &k),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(k == K0);
    /* cellar_key_generate_purpose: NULL out, unknown types and purposes (0 is NONE, valid), an
     * XTS key-wrapping key */
    static const uint32_t BAD_PURPOSES[] = {4u, 99u, (uint32_t)-1, (uint32_t)INT32_MAX};
    const size_t n_bad_purposes = sizeof BAD_PURPOSES / sizeof BAD_PURPOSES[0];
    BAD(cellar_key_generate_purpose(CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_DATA_ENCRYPTION, NULL),
        CELLAR_ERR_NULL_POINTER);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        BAD(cellar_key_generate_purpose(BAD_ENUMS[i], CELLAR_KEY_PURPOSE_NONE, &k), CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < n_bad_purposes; i++)
        BAD(cellar_key_generate_purpose(CELLAR_KEY_AES256, BAD_PURPOSES[i], &k), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_generate_purpose(CELLAR_KEY_AES256_XTS, CELLAR_KEY_PURPOSE_KEY_WRAPPING, &k),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(k == K0);
    /* cellar_key_import_purpose: as cellar_key_import, plus purposes */
    BAD(cellar_key_import_purpose(CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_KEY_WRAPPING, NULL, 32, &k),
        CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_import_purpose(CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_KEY_WRAPPING, mat, 32, NULL),
        CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_import_purpose(CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_KEY_WRAPPING, mat, 0, &k),
        CELLAR_ERR_INVALID_KEY);
    BAD(cellar_key_import_purpose(CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_KEY_WRAPPING, mat, 31, &k),
        CELLAR_ERR_INVALID_KEY);
    BAD(cellar_key_import_purpose(CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_KEY_WRAPPING, mat, HUGE, &k),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_import_purpose(CELLAR_KEY_AES256_XTS, CELLAR_KEY_PURPOSE_DATA_ENCRYPTION, same, 64, &k),
        CELLAR_ERR_INVALID_KEY);
    BAD(cellar_key_import_purpose(CELLAR_KEY_AES256_XTS, CELLAR_KEY_PURPOSE_KEY_WRAPPING, mat, 64, &k),
        CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        BAD(cellar_key_import_purpose(BAD_ENUMS[i], CELLAR_KEY_PURPOSE_NONE, mat, 32, &k),
            CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < n_bad_purposes; i++)
        BAD(cellar_key_import_purpose(CELLAR_KEY_AES256, BAD_PURPOSES[i], mat, 32, &k),
            CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(k == K0);
    /* cellar_key_derive_purpose: as cellar_key_derive, plus purposes and a parent of the wrong
     * purpose */
    BAD(cellar_key_derive_purpose(NULL, CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_DATA_ENCRYPTION, label, 3, &k),
        CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_derive_purpose(aes, CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_DATA_ENCRYPTION, NULL, 3, &k),
        CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_derive_purpose(aes, CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_DATA_ENCRYPTION, label, 3, NULL),
        CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_derive_purpose(aes, CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_DATA_ENCRYPTION, label, 0, &k),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_derive_purpose(aes, CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_DATA_ENCRYPTION, label, HUGE, &k),
        CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        BAD(cellar_key_derive_purpose(aes, BAD_ENUMS[i], CELLAR_KEY_PURPOSE_DATA_ENCRYPTION, label, 3, &k),
            CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < n_bad_purposes; i++)
        BAD(cellar_key_derive_purpose(aes, CELLAR_KEY_AES256, BAD_PURPOSES[i], label, 3, &k),
            CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_derive_purpose(aes, CELLAR_KEY_AES256_XTS, CELLAR_KEY_PURPOSE_KEY_WRAPPING, label, 3, &k),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_derive_purpose((const cellar_key *)pgcm, CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_NONE, label, 3, &k),
        CELLAR_ERR_INVALID_ARGUMENT);
    {
        cellar_key *dek = NULL;
        CHECK_OK(cellar_key_generate_purpose(CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_DATA_ENCRYPTION, &dek));
        BAD(cellar_key_derive_purpose(dek, CELLAR_KEY_AES256, CELLAR_KEY_PURPOSE_DATA_ENCRYPTION, label, 3, &k),
            CELLAR_ERR_INVALID_KEY);
        cellar_key_free(dek);
    }
    CHECK(k == K0);
    /* cellar_key_purpose */
    uint32_t pur = 0xdeadbeef;
    BAD(cellar_key_purpose(NULL, &pur), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_purpose(aes, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_purpose((const cellar_key *)cell, &pur), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(pur == 0xdeadbeef);
    /* cellar_key_id */
    uint8_t id[CELLAR_KEY_ID_LEN];
    memset(id, SENT, sizeof id);
    BAD(cellar_key_id(NULL, id), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_id(aes, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_id((const cellar_key *)cell, id), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_id((const cellar_key *)ring, id), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(all_is(id, sizeof id, SENT));
    /* cellar_key_type */
    uint32_t t = 0xdeadbeef;
    BAD(cellar_key_type(NULL, &t), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_type(aes, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_type((const cellar_key *)pxts, &t), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(t == 0xdeadbeef);
    /* cellar_key_wrapped_len, cellar_key_password_file_len: 0 for unknown types */
    for (size_t i = 0; i < N_BAD_ENUMS; i++) {
        CHECK(cellar_key_wrapped_len(BAD_ENUMS[i]) == 0);
        CHECK(cellar_key_password_file_len(BAD_ENUMS[i]) == 0);
    }
    /* cellar_key_wrap */
    uint8_t out[256];
    size_t ol = 12345;
    size_t need = cellar_key_wrapped_len(CELLAR_KEY_AES256);
    CHECK(need > 0);
    BAD(cellar_key_wrap(NULL, aes, 1, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_wrap(aes, NULL, 1, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_wrap(aes, aes, 1, NULL, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_wrap(aes, aes, 1, out, sizeof out, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK(ol == 12345);
    memset(out, SENT, sizeof out);
    BAD(cellar_key_wrap(aes, aes, 1, out, need - 1, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == need);
    PROBE(cellar_key_wrap(aes, aes, 1, out, 0, &ol));
    CHECK(ol == need);
    CHECK(all_is(out, sizeof out, SENT));
    ol = 12345;
    BAD(cellar_key_wrap(xts, aes, 1, out, sizeof out, &ol), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_key_wrap((const cellar_key *)pgcm, aes, 1, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_wrap(aes, (const cellar_key *)cell, 1, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    CHECK(all_is(out, sizeof out, SENT));
    /* a real blob for unwrap */
    uint8_t blob[256];
    size_t bl = 0;
    CHECK_OK(cellar_key_wrap(aes, xts, 3, blob, sizeof blob, &bl));
    /* cellar_key_unwrap */
    uint32_t v = 77;
    BAD(cellar_key_unwrap(NULL, blob, bl, &k, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_unwrap(aes, NULL, bl, &k, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_unwrap(aes, blob, bl, NULL, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_unwrap(aes, blob, bl, &k, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_unwrap(aes, blob, 0, &k, &v), CELLAR_ERR_AUTHENTICATION_FAILED);
    BAD(cellar_key_unwrap(aes, blob, bl - 1, &k, &v), CELLAR_ERR_AUTHENTICATION_FAILED);
    BAD(cellar_key_unwrap(aes, blob, HUGE, &k, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_unwrap(xts, blob, bl, &k, &v), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_key_unwrap((const cellar_key *)ring, blob, bl, &k, &v), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(k == K0 && v == 77);
    /* cellar_key_export_password */
    const uint8_t pw[] = "correct horse battery staple";
    size_t pwl = sizeof pw - 1;
    uint32_t it = CELLAR_PASSWORD_MIN_ITERATIONS;
    size_t pneed = cellar_key_password_file_len(CELLAR_KEY_AES256);
    ol = 12345;
    memset(out, SENT, sizeof out);
    BAD(cellar_key_export_password(NULL, 1, pw, pwl, it, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_export_password(aes, 1, NULL, pwl, it, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_export_password(aes, 1, pw, pwl, it, NULL, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_export_password(aes, 1, pw, pwl, it, out, sizeof out, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_export_password(aes, 1, pw, 0, it, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_export_password(aes, 1, pw, CELLAR_PASSWORD_MIN_LEN - 1, it, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_export_password(aes, 1, pw, HUGE, it, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_export_password(aes, 1, pw, pwl, 0, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_export_password(aes, 1, pw, pwl, CELLAR_PASSWORD_MIN_ITERATIONS - 1, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_export_password(aes, 1, pw, pwl, UINT32_MAX, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_export_password((const cellar_key *)pgcm, 1, pw, pwl, it, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    BAD(cellar_key_export_password(aes, 1, pw, pwl, it, out, pneed - 1, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == pneed);
    CHECK(all_is(out, sizeof out, SENT));
    uint8_t pfile[256];
    size_t pfl = 0;
    CHECK_OK(cellar_key_export_password(aes, 5, pw, pwl, it, pfile, sizeof pfile, &pfl));
    /* cellar_key_import_password */
    v = 77;
    BAD(cellar_key_import_password(NULL, pfl, pw, pwl, &k, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_import_password(pfile, pfl, NULL, pwl, &k, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_import_password(pfile, pfl, pw, pwl, NULL, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_import_password(pfile, pfl, pw, pwl, &k, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_import_password(pfile, 0, pw, pwl, &k, &v), CELLAR_ERR_AUTHENTICATION_FAILED);
    BAD(cellar_key_import_password(pfile, pfl - 1, pw, pwl, &k, &v), CELLAR_ERR_AUTHENTICATION_FAILED);
    BAD(cellar_key_import_password(pfile, HUGE, pw, pwl, &k, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_import_password(pfile, pfl, pw, 0, &k, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_import_password(pfile, pfl, pw, HUGE, &k, &v), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(k == K0 && v == 77);
    /* cellar_key_dangerous_export_raw */
    ol = 12345;
    memset(out, SENT, sizeof out);
    BAD(cellar_key_dangerous_export_raw(NULL, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_dangerous_export_raw(aes, NULL, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_dangerous_export_raw(aes, out, sizeof out, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_dangerous_export_raw((const cellar_key *)cell, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    BAD(cellar_key_dangerous_export_raw(aes, out, 31, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == 32);
    BAD(cellar_key_dangerous_export_raw(xts, out, 63, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == 64);
    PROBE(cellar_key_dangerous_export_raw(xts, out, 0, &ol));
    CHECK(all_is(out, sizeof out, SENT));
    /* cellar_key_usage */
    uint64_t c = 11, l = 22;
    BAD(cellar_key_usage(NULL, &c, &l), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_usage(aes, NULL, &l), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_usage(aes, &c, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_usage((const cellar_key *)ring, &c, &l), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(c == 11 && l == 22);
    /* cellar_key_set_usage_limit */
    BAD(cellar_key_set_usage_limit(NULL, 10), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_set_usage_limit(aes, 0), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_set_usage_limit(aes, (1ull << 32) + 1), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_set_usage_limit(aes, UINT64_MAX), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_key_set_usage_limit((const cellar_key *)pxts, 10), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_OK(cellar_key_usage(aes, &c, &l));
    CHECK(l == (1ull << 32));
    /* cellar_key_free: NULL and a handle of another kind do nothing (the cipher still works). */
    cellar_key_free(NULL);
    cellar_key_free((cellar_key *)cell);
    uint32_t kv = 0;
    uint8_t ct[64];
    size_t ctl = 0;
    CHECK_OK(cellar_cell_encrypt(cell, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &ctl));
    CHECK_OK(cellar_cell_key_version(ct, ctl, &kv));
}

static void matrix_page(void) {
    enum { PS = 4096 };
    uint8_t *in = malloc(2 * PS), *out = malloc(2 * PS);
    memset(in, 0x33, 2 * PS);
    cellar_page_cipher *pc = (cellar_page_cipher *)(uintptr_t)0x1;
    cellar_page_cipher *const P0 = pc;

    /* cellar_page_cipher_new */
    BAD(cellar_page_cipher_new(NULL, CELLAR_PAGE_GCM, 1, 1, 0, &pc), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_page_cipher_new(aes, CELLAR_PAGE_GCM, 1, 1, 0, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_page_cipher_new(xts, CELLAR_PAGE_GCM, 1, 1, 0, &pc), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_page_cipher_new(aes, CELLAR_PAGE_XTS, 1, 1, 0, &pc), CELLAR_ERR_INVALID_KEY);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        BAD(cellar_page_cipher_new(aes, BAD_ENUMS[i], 1, 1, 0, &pc), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_page_cipher_new(aes, CELLAR_PAGE_GCM, 1, 1, 2, &pc), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_page_cipher_new(aes, CELLAR_PAGE_GCM, 1, 1, UINT32_MAX, &pc), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_page_cipher_new((const cellar_key *)cell, CELLAR_PAGE_GCM, 1, 1, 0, &pc),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(pc == P0);
    /* cellar_page_reserved_bytes: SIZE_MAX for unknown modes (never mistaken for XTS's 0) */
    for (size_t i = 0; i < N_BAD_ENUMS; i++) CHECK(cellar_page_reserved_bytes(BAD_ENUMS[i]) == SIZE_MAX);
    CHECK(cellar_page_reserved_bytes(CELLAR_PAGE_GCM) == CELLAR_PAGE_GCM_TRAILER_LEN);

    const size_t bad_sizes[] = {0, 1, 511, 513, 4095, 65536 + 16, HALF, HUGE};
    const size_t n_bad_sizes = sizeof bad_sizes / sizeof bad_sizes[0];
    cellar_page_cipher *pcs[2] = {pgcm, pxts};
    for (int w = 0; w < 2; w++) {
        cellar_page_cipher *p = pcs[w];
        /* cellar_page_encrypt */
        memset(out, SENT, PS);
        BAD(cellar_page_encrypt(NULL, 0, in, out, PS), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_encrypt(p, 0, NULL, out, PS), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_encrypt(p, 0, in, NULL, PS), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_encrypt((const cellar_page_cipher *)aes, 0, in, out, PS), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_encrypt((const cellar_page_cipher *)cell, 0, in, out, PS), CELLAR_ERR_INVALID_ARGUMENT);
        for (size_t i = 0; i < n_bad_sizes; i++)
            BAD(cellar_page_encrypt(p, 0, in, out, bad_sizes[i]), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_encrypt(p, 0, in, in + 16, PS), CELLAR_ERR_INVALID_ARGUMENT);
        /* cellar_page_decrypt: failures leave out all zeros */
        uint8_t *ct = in + PS;
        CHECK_OK(cellar_page_encrypt(p, 4, in, ct, PS));
        BAD(cellar_page_decrypt(NULL, 4, ct, out, PS), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt(p, 4, NULL, out, PS), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt(p, 4, ct, NULL, PS), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt((const cellar_page_cipher *)ring, 4, ct, out, PS), CELLAR_ERR_INVALID_ARGUMENT);
        for (size_t i = 0; i < n_bad_sizes; i++)
            BAD(cellar_page_decrypt(p, 4, ct, out, bad_sizes[i]), CELLAR_ERR_INVALID_ARGUMENT);
        if (p == pgcm) {
            memset(out, SENT, PS);
            BAD(cellar_page_decrypt(p, 5, ct, out, PS), CELLAR_ERR_AUTHENTICATION_FAILED);
            CHECK(all_is(out, PS, 0));
            memset(out, SENT, PS);
            BAD(cellar_page_decrypt(p, UINT64_MAX, ct, out, PS), CELLAR_ERR_AUTHENTICATION_FAILED);
            CHECK(all_is(out, PS, 0));
        }
        /* cellar_page_encrypt_pages / cellar_page_decrypt_pages */
        BAD(cellar_page_encrypt_pages(NULL, 0, in, out, PS, 1, 1), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_encrypt_pages(p, 0, NULL, out, PS, 1, 1), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_encrypt_pages(p, 0, in, NULL, PS, 1, 1), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_encrypt_pages((const cellar_page_cipher *)xts, 0, in, out, PS, 1, 1),
            CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_encrypt_pages(p, 0, in, out, PS, HALF, 1), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_encrypt_pages(p, 0, in, out, PS, HUGE, 4), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_encrypt_pages(p, 0, in, out, 100, 1, 1), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_encrypt_pages(p, UINT64_MAX, in, out, PS, 2, 1), CELLAR_ERR_INVALID_ARGUMENT);
        CHECK_OK(cellar_page_encrypt_pages(p, 0, NULL, NULL, PS, 0, 1));
        BAD(cellar_page_decrypt_pages(NULL, 0, in, out, PS, 1, 1), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt_pages(p, 0, NULL, out, PS, 1, 1), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt_pages(p, 0, in, NULL, PS, 1, 1), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt_pages((const cellar_page_cipher *)cell, 0, in, out, PS, 1, 1),
            CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_decrypt_pages(p, 0, in, out, PS, HALF, 1), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_decrypt_pages(p, 0, in, out, PS, HUGE, 2), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_decrypt_pages(p, UINT64_MAX, in, out, PS, 2, 1), CELLAR_ERR_INVALID_ARGUMENT);
        CHECK_OK(cellar_page_decrypt_pages(p, 0, NULL, NULL, PS, 0, 1));
        /* cellar_page_decrypt_pages_status: refused arguments touch neither status nor failed */
        cellar_status pst[2] = {-5, -5};
        size_t pf = 77;
        BAD(cellar_page_decrypt_pages_status(NULL, 0, in, out, PS, 1, 1, pst, &pf), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt_pages_status(p, 0, NULL, out, PS, 1, 1, pst, &pf), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt_pages_status(p, 0, in, NULL, PS, 1, 1, pst, &pf), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt_pages_status(p, 0, in, out, PS, 1, 1, NULL, &pf), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt_pages_status(p, 0, in, out, PS, 1, 1, pst, NULL), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_page_decrypt_pages_status((const cellar_page_cipher *)cell, 0, in, out, PS, 1, 1, pst, &pf),
            CELLAR_ERR_INVALID_ARGUMENT);
        for (size_t i = 0; i < n_bad_sizes; i++)
            BAD(cellar_page_decrypt_pages_status(p, 0, in, out, bad_sizes[i], 1, 1, pst, &pf), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_decrypt_pages_status(p, 0, in, out, PS, HALF, 1, pst, &pf), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_decrypt_pages_status(p, 0, in, out, PS, HUGE, 2, pst, &pf), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_decrypt_pages_status(p, UINT64_MAX, in, out, PS, 2, 1, pst, &pf), CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_decrypt_pages_status(p, 0, in, out, PS, 1, 1, (cellar_status *)(out + 4), &pf),
            CELLAR_ERR_INVALID_ARGUMENT);
        BAD(cellar_page_decrypt_pages_status(p, 0, in, out, PS, 1, 1, (cellar_status *)(in + 1), &pf),
            CELLAR_ERR_INVALID_ARGUMENT);
        CHECK(pst[0] == -5 && pst[1] == -5 && pf == 77);
        CHECK_OK(cellar_page_decrypt_pages_status(p, 0, NULL, NULL, PS, 0, 1, NULL, &pf));
        CHECK(pf == 0);
        if (p == pgcm) {
            /* two pages, the second sealed at the wrong number: both outputs zeroed */
            uint8_t *two = malloc(2 * PS);
            CHECK_OK(cellar_page_encrypt(p, 0, in, two, PS));
            CHECK_OK(cellar_page_encrypt(p, 9, in, two + PS, PS));
            memset(out, SENT, 2 * PS);
            BAD(cellar_page_decrypt_pages(p, 0, two, out, PS, 2, 2), CELLAR_ERR_AUTHENTICATION_FAILED);
            CHECK(all_is(out, 2 * PS, 0));
            free(two);
        }
    }
    /* cellar_page_key_version */
    uint32_t v = 77;
    uint8_t *ct = in + PS;
    CHECK_OK(cellar_page_encrypt(pgcm, 1, in, ct, PS));
    BAD(cellar_page_key_version(NULL, PS, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_page_key_version(ct, PS, NULL), CELLAR_ERR_NULL_POINTER);
    for (size_t i = 0; i < n_bad_sizes; i++)
        BAD(cellar_page_key_version(ct, bad_sizes[i], &v), CELLAR_ERR_INVALID_ARGUMENT);
    memset(out, 0, PS);
    BAD(cellar_page_key_version(out, PS, &v), CELLAR_ERR_UNSUPPORTED_FORMAT);
    CHECK(v == 77);
    /* cellar_page_cipher_set_written_mark / cellar_page_cipher_written_mark (ABI 1.2) */
    uint64_t mk = 77;
    BAD(cellar_page_cipher_set_written_mark(NULL, 4), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_page_cipher_set_written_mark((const cellar_page_cipher *)cell, 4), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_page_cipher_set_written_mark((const cellar_page_cipher *)aes, 4), CELLAR_ERR_INVALID_ARGUMENT);
    /* the matrix's ciphers have no CELLAR_PAGE_ZERO_IS_EMPTY: the mark is refused */
    BAD(cellar_page_cipher_set_written_mark(pgcm, 4), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_page_cipher_set_written_mark(pxts, UINT64_MAX), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_page_cipher_written_mark(NULL, &mk), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_page_cipher_written_mark(pgcm, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_page_cipher_written_mark((const cellar_page_cipher *)cell, &mk), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(mk == 77);
    CHECK_OK(cellar_page_cipher_written_mark(pgcm, &mk));
    CHECK(mk == 0);
    /* cellar_page_cipher_free: NULL and another kind do nothing */
    cellar_page_cipher_free(NULL);
    cellar_page_cipher_free((cellar_page_cipher *)aes);
    uint32_t t = 0;
    CHECK_OK(cellar_key_type(aes, &t));
    free(in);
    free(out);
}

static void matrix_cell(void) {
    const uint32_t modes[] = {CELLAR_CELL_RANDOMIZED, CELLAR_CELL_DETERMINISTIC, CELLAR_CELL_MSSQL_RANDOMIZED,
                              CELLAR_CELL_MSSQL_DETERMINISTIC};
    cellar_cell_cipher *cc = (cellar_cell_cipher *)(uintptr_t)0x1;
    cellar_cell_cipher *const C0 = cc;
    /* cellar_cell_cipher_new */
    BAD(cellar_cell_cipher_new(NULL, CELLAR_CELL_RANDOMIZED, 1, &cc), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_cipher_new(aes, CELLAR_CELL_RANDOMIZED, 1, NULL), CELLAR_ERR_NULL_POINTER);
    for (size_t m = 0; m < 4; m++)
        BAD(cellar_cell_cipher_new(xts, modes[m], 1, &cc), CELLAR_ERR_INVALID_KEY);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        BAD(cellar_cell_cipher_new(aes, BAD_ENUMS[i], 1, &cc), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_cipher_new((const cellar_key *)pgcm, CELLAR_CELL_RANDOMIZED, 1, &cc),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(cc == C0);
    /* cellar_cell_ciphertext_len / cellar_cell_plaintext_max_len: 0 for unknown modes and
     * lengths whose result would overflow */
    for (size_t i = 0; i < N_BAD_ENUMS; i++) {
        CHECK(cellar_cell_ciphertext_len(BAD_ENUMS[i], 10) == 0);
        CHECK(cellar_cell_plaintext_max_len(BAD_ENUMS[i], 100) == 0);
    }
    for (size_t m = 0; m < 4; m++) {
        CHECK(cellar_cell_ciphertext_len(modes[m], HUGE) == 0);
        CHECK(cellar_cell_plaintext_max_len(modes[m], 0) == 0);
    }
    /* cellar_cell_batch_ciphertext_len / cellar_cell_batch_plaintext_max_len */
    size_t offs[3] = {0, 2, 5};
    CHECK(cellar_cell_batch_ciphertext_len(CELLAR_CELL_RANDOMIZED, NULL, 2) == 0);
    CHECK(cellar_cell_batch_plaintext_max_len(CELLAR_CELL_RANDOMIZED, NULL, 2) == 0);
    CHECK(cellar_cell_batch_ciphertext_len(99, offs, 2) == 0);
    CHECK(cellar_cell_batch_plaintext_max_len(99, offs, 2) == 0);
    size_t decreasing[3] = {0, 5, 2};
    CHECK(cellar_cell_batch_ciphertext_len(CELLAR_CELL_RANDOMIZED, decreasing, 2) == 0);
    CHECK(cellar_cell_batch_ciphertext_len(CELLAR_CELL_RANDOMIZED, offs, HUGE) == 0);

    uint8_t ctx[] = "ctx", pt[] = "secret-plaintext";
    size_t ptl = sizeof pt - 1;
    uint8_t out[512], ct[512];
    size_t ol = 12345, ctl = 0;
    size_t need = cellar_cell_ciphertext_len(CELLAR_CELL_RANDOMIZED, ptl);
    /* cellar_cell_encrypt */
    BAD(cellar_cell_encrypt(NULL, ctx, 3, pt, ptl, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt(cell, NULL, 3, pt, ptl, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt(cell, ctx, 3, NULL, ptl, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt(cell, ctx, 3, pt, ptl, NULL, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt(cell, ctx, 3, pt, ptl, out, sizeof out, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt((const cellar_cell_cipher *)aes, ctx, 3, pt, ptl, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_encrypt((const cellar_cell_cipher *)pgcm, ctx, 3, pt, ptl, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_encrypt(cell, ctx, HUGE, pt, ptl, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_encrypt(cell, ctx, 3, pt, HUGE, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_encrypt(cell, ctx, 3, pt, ptl, out, need - 1, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == need);
    PROBE(cellar_cell_encrypt(cell, ctx, 3, pt, ptl, out, 0, &ol));
    CHECK(ol == need);
    CHECK(all_is(out, sizeof out, SENT));
    CHECK_OK(cellar_cell_encrypt(cell, ctx, 3, pt, ptl, ct, sizeof ct, &ctl));
    /* cellar_cell_decrypt */
    size_t bound = cellar_cell_plaintext_max_len(CELLAR_CELL_RANDOMIZED, ctl);
    ol = 12345;
    BAD(cellar_cell_decrypt(NULL, ctx, 3, ct, ctl, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt(cell, NULL, 3, ct, ctl, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt(cell, ctx, 3, NULL, ctl, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt(cell, ctx, 3, ct, ctl, NULL, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt(cell, ctx, 3, ct, ctl, out, sizeof out, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt((const cellar_cell_cipher *)ring, ctx, 3, ct, ctl, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_decrypt(cell, ctx, 3, ct, HUGE, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_decrypt(cell, ctx, 3, ct, ctl, out, bound - 1, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == bound);
    CHECK(all_is(out, sizeof out, SENT));
    /* wrong context / truncated / tampered: out[0..bound] zeroed, the rest untouched */
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_decrypt(cell, ctx, 2, ct, ctl, out, sizeof out, &ol), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_is(out, bound, 0) && all_is(out + bound, sizeof out - bound, SENT));
    ct[ctl - 1] ^= 1;
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_decrypt(cell, ctx, 3, ct, ctl, out, sizeof out, &ol), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_is(out, bound, 0));
    ct[ctl - 1] ^= 1;
    BAD(cellar_cell_decrypt(cell, ctx, 3, ct, 0, out, sizeof out, &ol), CELLAR_ERR_AUTHENTICATION_FAILED);
    BAD(cellar_cell_decrypt(cell, ctx, 3, ct, 5, out, sizeof out, &ol), CELLAR_ERR_AUTHENTICATION_FAILED);
    /* cellar_cell_key_version */
    uint32_t v = 77;
    BAD(cellar_cell_key_version(NULL, ctl, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_key_version(ct, ctl, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_key_version(ct, 0, &v), CELLAR_ERR_UNSUPPORTED_FORMAT);
    BAD(cellar_cell_key_version(ct, HUGE, &v), CELLAR_ERR_INVALID_ARGUMENT);
    uint8_t junk[32];
    memset(junk, 0xEE, sizeof junk);
    BAD(cellar_cell_key_version(junk, sizeof junk, &v), CELLAR_ERR_UNSUPPORTED_FORMAT);
    CHECK(v == 77);
    /* cellar_cell_encrypt_batch */
    uint8_t vals[5] = {'a', 'b', 'c', 'd', 'e'};
    size_t ooffs[3] = {9, 9, 9};
    size_t bneed = cellar_cell_batch_ciphertext_len(CELLAR_CELL_RANDOMIZED, offs, 2);
    CHECK(bneed > 0);
    ol = 12345;
    BAD(cellar_cell_encrypt_batch(NULL, ctx, 3, vals, offs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch(cell, NULL, 3, vals, offs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch(cell, ctx, 3, NULL, offs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch(cell, ctx, 3, vals, NULL, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch(cell, ctx, 3, vals, offs, 2, NULL, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch(cell, ctx, 3, vals, offs, 2, out, sizeof out, NULL, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch(cell, ctx, 3, vals, offs, 2, out, sizeof out, ooffs, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch((const cellar_cell_cipher *)pxts, ctx, 3, vals, offs, 2, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_encrypt_batch(cell, ctx, 3, vals, decreasing, 2, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_encrypt_batch(cell, ctx, 3, vals, offs, HUGE, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    CHECK(ooffs[0] == 9 && ooffs[1] == 9 && ooffs[2] == 9);
    memset(out, SENT, sizeof out);
    PROBE(cellar_cell_encrypt_batch(cell, ctx, 3, vals, offs, 2, NULL, 0, ooffs, &ol));
    CHECK(ol == bneed);
    BAD(cellar_cell_encrypt_batch(cell, ctx, 3, vals, offs, 2, out, bneed - 1, ooffs, &ol),
        CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == bneed);
    CHECK(all_is(out, sizeof out, SENT));
    uint8_t bct[512];
    size_t boffs[3], bctl = 0;
    CHECK_OK(cellar_cell_encrypt_batch(cell, ctx, 3, vals, offs, 2, bct, sizeof bct, boffs, &bctl));
    /* cellar_cell_decrypt_batch */
    size_t dneed = cellar_cell_batch_plaintext_max_len(CELLAR_CELL_RANDOMIZED, boffs, 2);
    CHECK(dneed > 0);
    ol = 12345;
    BAD(cellar_cell_decrypt_batch(NULL, ctx, 3, bct, boffs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch(cell, NULL, 3, bct, boffs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch(cell, ctx, 3, NULL, boffs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch(cell, ctx, 3, bct, NULL, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch(cell, ctx, 3, bct, boffs, 2, NULL, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch(cell, ctx, 3, bct, boffs, 2, out, sizeof out, NULL, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch(cell, ctx, 3, bct, boffs, 2, out, sizeof out, ooffs, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch((const cellar_cell_cipher *)aes, ctx, 3, bct, boffs, 2, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_decrypt_batch(cell, ctx, 3, bct, boffs, HUGE, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_decrypt_batch(cell, ctx, 3, bct, boffs, 2, out, dneed - 1, ooffs, &ol),
        CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == dneed);
    CHECK(all_is(out, sizeof out, SENT));
    /* a tampered second cell: no plaintext of the first one is left behind */
    bct[bctl - 1] ^= 1;
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_decrypt_batch(cell, ctx, 3, bct, boffs, 2, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_is(out, dneed, 0));
    CHECK(memchr(out, 'a', sizeof out) == NULL && memchr(out, 'b', sizeof out) == NULL);
    bct[bctl - 1] ^= 1;
    /* cellar_cell_encrypt_batch_threads: the batch call's rows, any thread count */
    ol = 12345;
    BAD(cellar_cell_encrypt_batch_threads(NULL, ctx, 3, vals, offs, 2, out, sizeof out, ooffs, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_threads(cell, NULL, 3, vals, offs, 2, out, sizeof out, ooffs, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_threads(cell, ctx, 3, NULL, offs, 2, out, sizeof out, ooffs, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_threads(cell, ctx, 3, vals, NULL, 2, out, sizeof out, ooffs, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_threads(cell, ctx, 3, vals, offs, 2, NULL, sizeof out, ooffs, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_threads(cell, ctx, 3, vals, offs, 2, out, sizeof out, NULL, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_threads(cell, ctx, 3, vals, offs, 2, out, sizeof out, ooffs, NULL, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_threads((const cellar_cell_cipher *)pxts, ctx, 3, vals, offs, 2, out, sizeof out, ooffs, &ol, 2),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_encrypt_batch_threads(cell, ctx, 3, vals, decreasing, 2, out, sizeof out, ooffs, &ol, 2),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_encrypt_batch_threads(cell, ctx, 3, vals, offs, HUGE, out, sizeof out, ooffs, &ol, UINT32_MAX),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_encrypt_batch_threads(cell, ctx, 3, vals, offs, 2, out, bneed - 1, ooffs, &ol, 2),
        CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == bneed);
    CHECK(all_is(out, sizeof out, SENT));
    {
        uint8_t tct[512];
        size_t toffs[3], tctl = 0;
        CHECK_OK(cellar_cell_encrypt_batch_threads(cell, ctx, 3, vals, offs, 2, tct, sizeof tct, toffs, &tctl, 0));
        CHECK(tctl == bctl && toffs[2] == boffs[2]);
        CHECK_OK(cellar_cell_encrypt_batch_threads(cell, ctx, 3, vals, offs, 2, tct, sizeof tct, toffs, &tctl, UINT32_MAX));
        CHECK(tctl == bctl);
    }
    /* cellar_cell_decrypt_batch_threads */
    ol = 12345;
    BAD(cellar_cell_decrypt_batch_threads(NULL, ctx, 3, bct, boffs, 2, out, sizeof out, ooffs, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_threads(cell, NULL, 3, bct, boffs, 2, out, sizeof out, ooffs, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_threads(cell, ctx, 3, NULL, boffs, 2, out, sizeof out, ooffs, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_threads(cell, ctx, 3, bct, NULL, 2, out, sizeof out, ooffs, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_threads(cell, ctx, 3, bct, boffs, 2, NULL, sizeof out, ooffs, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_threads(cell, ctx, 3, bct, boffs, 2, out, sizeof out, NULL, &ol, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_threads(cell, ctx, 3, bct, boffs, 2, out, sizeof out, ooffs, NULL, 2), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_threads((const cellar_cell_cipher *)aes, ctx, 3, bct, boffs, 2, out, sizeof out, ooffs, &ol, 2),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_decrypt_batch_threads(cell, ctx, 3, bct, boffs, HUGE, out, sizeof out, ooffs, &ol, 2),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_decrypt_batch_threads(cell, ctx, 3, bct, boffs, 2, out, dneed - 1, ooffs, &ol, 2),
        CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == dneed);
    CHECK(all_is(out, sizeof out, SENT));
    bct[bctl - 1] ^= 1;
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_decrypt_batch_threads(cell, ctx, 3, bct, boffs, 2, out, sizeof out, ooffs, &ol, 2),
        CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_is(out, dneed, 0));
    bct[bctl - 1] ^= 1;
    CHECK_OK(cellar_cell_decrypt_batch_threads(cell, ctx, 3, bct, boffs, 2, out, sizeof out, ooffs, &ol, 2));
    CHECK(ol == 5 && memcmp(out, vals, 5) == 0);
    bct[bctl - 1] ^= 1;
    /* cellar_blind_index */
    uint8_t bi[64];
    memset(bi, SENT, sizeof bi);
    BAD(cellar_blind_index(NULL, ctx, 3, pt, ptl, bi, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index(aes, NULL, 3, pt, ptl, bi, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index(aes, ctx, 3, NULL, ptl, bi, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index(aes, ctx, 3, pt, ptl, NULL, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index(xts, ctx, 3, pt, ptl, bi, 16), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_blind_index((const cellar_key *)cell, ctx, 3, pt, ptl, bi, 16), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index(aes, ctx, 3, pt, ptl, bi, 0), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index(aes, ctx, 3, pt, ptl, bi, CELLAR_BLIND_INDEX_MIN_LEN - 1), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index(aes, ctx, 3, pt, ptl, bi, CELLAR_BLIND_INDEX_MAX_LEN + 1), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index(aes, ctx, 3, pt, ptl, bi, HUGE), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index(aes, ctx, HUGE, pt, ptl, bi, 16), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index(aes, ctx, 3, pt, HUGE, bi, 16), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(all_is(bi, sizeof bi, SENT));
    /* cellar_blind_index_versioned: as above, plus versions other than 1 and 2 */
    BAD(cellar_blind_index_versioned(NULL, 2, ctx, 3, pt, ptl, bi, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_versioned(aes, 2, NULL, 3, pt, ptl, bi, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_versioned(aes, 2, ctx, 3, NULL, ptl, bi, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_versioned(aes, 2, ctx, 3, pt, ptl, NULL, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_versioned(xts, 2, ctx, 3, pt, ptl, bi, 16), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_blind_index_versioned((const cellar_key *)cell, 2, ctx, 3, pt, ptl, bi, 16), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_versioned(aes, 0, ctx, 3, pt, ptl, bi, 16), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_versioned(aes, 3, ctx, 3, pt, ptl, bi, 16), CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        BAD(cellar_blind_index_versioned(aes, BAD_ENUMS[i], ctx, 3, pt, ptl, bi, 16), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_versioned(aes, 2, ctx, 3, pt, ptl, bi, 0), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_versioned(aes, 2, ctx, 3, pt, ptl, bi, CELLAR_BLIND_INDEX_MAX_LEN + 1), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_versioned(aes, 2, ctx, HUGE, pt, ptl, bi, 16), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_versioned(aes, 2, ctx, 3, pt, HUGE, bi, 16), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(all_is(bi, sizeof bi, SENT));
    /* cellar_cell_encrypt_batch_rows / cellar_cell_decrypt_batch_rows (per-row contexts) */
    uint64_t roffs[3] = {0, 1, 3};
    uint32_t roffs32[3] = {0, 1, 3};
    cellar_row_contexts rc = {ctx, 1, ctx, roffs, CELLAR_OFFSETS_64};
    cellar_row_contexts rbad = rc;
    ol = 12345;
    ooffs[0] = ooffs[1] = ooffs[2] = 9;
    BAD(cellar_cell_encrypt_batch_rows(NULL, &rc, vals, offs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_rows(cell, NULL, vals, offs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_rows(cell, &rc, NULL, offs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_rows(cell, &rc, vals, NULL, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_rows(cell, &rc, vals, offs, 2, NULL, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_rows(cell, &rc, vals, offs, 2, out, sizeof out, NULL, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_rows(cell, &rc, vals, offs, 2, out, sizeof out, ooffs, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_encrypt_batch_rows((const cellar_cell_cipher *)aes, &rc, vals, offs, 2, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_encrypt_batch_rows(cell, &rc, vals, decreasing, 2, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_encrypt_batch_rows(cell, &rc, vals, offs, HUGE, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++) {
        rbad.offset_width = BAD_ENUMS[i];
        BAD(cellar_cell_encrypt_batch_rows(cell, &rbad, vals, offs, 2, out, sizeof out, ooffs, &ol),
            CELLAR_ERR_INVALID_ARGUMENT);
    }
    rbad = rc;
    rbad.prefix = NULL;
    BAD(cellar_cell_encrypt_batch_rows(cell, &rbad, vals, offs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    rbad = rc;
    rbad.suffixes = NULL;
    BAD(cellar_cell_encrypt_batch_rows(cell, &rbad, vals, offs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    rbad = rc;
    rbad.suffix_offsets = NULL;
    BAD(cellar_cell_encrypt_batch_rows(cell, &rbad, vals, offs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    rbad = rc;
    rbad.prefix_len = HUGE;
    BAD(cellar_cell_encrypt_batch_rows(cell, &rbad, vals, offs, 2, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    CHECK(ooffs[0] == 9 && ooffs[1] == 9 && ooffs[2] == 9);
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_encrypt_batch_rows(cell, &rc, vals, offs, 2, out, bneed - 1, ooffs, &ol),
        CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == bneed);
    CHECK(all_is(out, sizeof out, SENT));
    CHECK_OK(cellar_cell_encrypt_batch_rows(cell, &rc, vals, offs, 2, bct, sizeof bct, boffs, &bctl));
    ol = 12345;
    BAD(cellar_cell_decrypt_batch_rows(NULL, &rc, bct, boffs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_rows(cell, NULL, bct, boffs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_rows(cell, &rc, NULL, boffs, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_rows(cell, &rc, bct, NULL, 2, out, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_rows(cell, &rc, bct, boffs, 2, NULL, sizeof out, ooffs, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_rows(cell, &rc, bct, boffs, 2, out, sizeof out, NULL, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_rows(cell, &rc, bct, boffs, 2, out, sizeof out, ooffs, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_cell_decrypt_batch_rows((const cellar_cell_cipher *)pgcm, &rc, bct, boffs, 2, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_cell_decrypt_batch_rows(cell, &rc, bct, boffs, HUGE, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_decrypt_batch_rows(cell, &rc, bct, boffs, 2, out, dneed - 1, ooffs, &ol),
        CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == dneed);
    /* the other row's context: authentication fails, nothing left behind */
    cellar_row_contexts swapped = {ctx, 1, ctx, roffs32, CELLAR_OFFSETS_32};
    roffs32[1] = 2;
    memset(out, SENT, sizeof out);
    BAD(cellar_cell_decrypt_batch_rows(cell, &swapped, bct, boffs, 2, out, sizeof out, ooffs, &ol),
        CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_is(out, dneed, 0));
    /* cellar_blind_index_key_new / _compute / _batch / _batch_rows / _free */
    cellar_blind_index_key *bk = (cellar_blind_index_key *)(uintptr_t)0x1;
    BAD(cellar_blind_index_key_new(NULL, CELLAR_BLIND_INDEX_V1, &bk), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_key_new(aes, CELLAR_BLIND_INDEX_V1, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_key_new(xts, CELLAR_BLIND_INDEX_V1, &bk), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_blind_index_key_new((const cellar_key *)cell, CELLAR_BLIND_INDEX_V1, &bk), CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        BAD(cellar_blind_index_key_new(aes, BAD_ENUMS[i], &bk), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(bk == (cellar_blind_index_key *)(uintptr_t)0x1);
    CHECK_OK(cellar_blind_index_key_new(aes, CELLAR_BLIND_INDEX_V1, &bk));
    memset(bi, SENT, sizeof bi);
    BAD(cellar_blind_index_compute(NULL, ctx, 3, pt, ptl, bi, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_compute(bk, NULL, 3, pt, ptl, bi, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_compute(bk, ctx, 3, NULL, ptl, bi, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_compute(bk, ctx, 3, pt, ptl, NULL, 16), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_compute((const cellar_blind_index_key *)aes, ctx, 3, pt, ptl, bi, 16),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_compute(bk, ctx, 3, pt, ptl, bi, CELLAR_BLIND_INDEX_MIN_LEN - 1), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_compute(bk, ctx, 3, pt, ptl, bi, CELLAR_BLIND_INDEX_MAX_LEN + 1), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_compute(bk, ctx, HUGE, pt, ptl, bi, 16), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(all_is(bi, sizeof bi, SENT));
    ol = 12345;
    BAD(cellar_blind_index_batch(NULL, ctx, 3, vals, offs, 2, 16, bi, sizeof bi, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch(bk, NULL, 3, vals, offs, 2, 16, bi, sizeof bi, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch(bk, ctx, 3, NULL, offs, 2, 16, bi, sizeof bi, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch(bk, ctx, 3, vals, NULL, 2, 16, bi, sizeof bi, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch(bk, ctx, 3, vals, offs, 2, 16, NULL, sizeof bi, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch(bk, ctx, 3, vals, offs, 2, 16, bi, sizeof bi, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch((const cellar_blind_index_key *)cell, ctx, 3, vals, offs, 2, 16, bi, sizeof bi, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_batch(bk, ctx, 3, vals, decreasing, 2, 16, bi, sizeof bi, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_batch(bk, ctx, 3, vals, offs, HUGE, 16, bi, sizeof bi, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_batch(bk, ctx, 3, vals, offs, 2, 3, bi, sizeof bi, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_batch(bk, ctx, 3, vals, offs, 2, 33, bi, sizeof bi, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    PROBE(cellar_blind_index_batch(bk, ctx, 3, vals, offs, 2, 16, NULL, 0, &ol));
    BAD(cellar_blind_index_batch(bk, ctx, 3, vals, offs, 2, 16, bi, 31, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == 32);
    CHECK(all_is(bi, sizeof bi, SENT));
    ol = 12345;
    BAD(cellar_blind_index_batch_rows(NULL, &rc, vals, offs, 2, 16, bi, sizeof bi, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch_rows(bk, NULL, vals, offs, 2, 16, bi, sizeof bi, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch_rows(bk, &rc, NULL, offs, 2, 16, bi, sizeof bi, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch_rows(bk, &rc, vals, NULL, 2, 16, bi, sizeof bi, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch_rows(bk, &rc, vals, offs, 2, 16, NULL, sizeof bi, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch_rows(bk, &rc, vals, offs, 2, 16, bi, sizeof bi, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_blind_index_batch_rows((const cellar_blind_index_key *)aes, &rc, vals, offs, 2, 16, bi, sizeof bi, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    rbad = rc;
    rbad.offset_width = 2;
    BAD(cellar_blind_index_batch_rows(bk, &rbad, vals, offs, 2, 16, bi, sizeof bi, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_batch_rows(bk, &rc, vals, offs, 2, 0, bi, sizeof bi, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_blind_index_batch_rows(bk, &rc, vals, offs, HUGE, 16, bi, sizeof bi, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    BAD(cellar_blind_index_batch_rows(bk, &rc, vals, offs, 2, 16, bi, 31, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == 32);
    CHECK(all_is(bi, sizeof bi, SENT));
    cellar_blind_index_key_free(NULL);
    cellar_blind_index_key_free((cellar_blind_index_key *)aes);
    cellar_blind_index_key_free(bk);
    /* MSSQL modes take no context */
    cellar_cell_cipher *ms = NULL;
    CHECK_OK(cellar_cell_cipher_new(aes, CELLAR_CELL_MSSQL_RANDOMIZED, 1, &ms));
    ol = 12345;
    BAD(cellar_cell_encrypt(ms, ctx, 3, pt, ptl, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    /* cellar_cell_cipher_free: NULL and another kind do nothing */
    cellar_cell_cipher_free(NULL);
    cellar_cell_cipher_free((cellar_cell_cipher *)aes);
    cellar_cell_cipher_free(ms);
    uint32_t t = 0;
    CHECK_OK(cellar_key_type(aes, &t));
}

static void matrix_keyring(void) {
    cellar_keyring *r = (cellar_keyring *)(uintptr_t)0x1;
    cellar_keyring *const R0 = r;
    uint32_t v = 77;
    /* cellar_keyring_new */
    /* NULL customer_key is defined: a generated version 1 */
    cellar_keyring *gen = NULL;
    CHECK_OK(cellar_keyring_new(NULL, &gen));
    cellar_keyring_free(gen);
    BAD(cellar_keyring_new(aes, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_new(xts, &r), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_keyring_new((const cellar_key *)ring, &r), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(r == R0);
    /* cellar_keyring_active_version */
    BAD(cellar_keyring_active_version(NULL, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_active_version(ring, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_active_version((const cellar_keyring *)aes, &v), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(v == 77);
    /* cellar_keyring_versions */
    uint32_t vers[8];
    uint8_t ids[8 * 16];
    size_t cnt = 12345;
    memset(vers, SENT, sizeof vers);
    BAD(cellar_keyring_versions(NULL, vers, ids, 8, &cnt), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_versions(ring, vers, ids, 8, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_versions((const cellar_keyring *)cell, vers, ids, 8, &cnt), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(cnt == 12345);
    PROBE(cellar_keyring_versions(ring, vers, ids, 0, &cnt));
    CHECK(cnt == 2);
    CHECK(all_is((const uint8_t *)vers, sizeof vers, SENT));
    /* cellar_keyring_version_info */
    uint8_t kid[16];
    uint32_t fl = 55;
    memset(kid, SENT, sizeof kid);
    BAD(cellar_keyring_version_info(NULL, 1, kid, &fl), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_version_info(ring, 1, NULL, &fl), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_version_info(ring, 1, kid, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_version_info((const cellar_keyring *)pgcm, 1, kid, &fl), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_version_info(ring, 0, kid, &fl), CELLAR_ERR_KEY_NOT_FOUND);
    BAD(cellar_keyring_version_info(ring, 99, kid, &fl), CELLAR_ERR_KEY_NOT_FOUND);
    BAD(cellar_keyring_version_info(ring, UINT32_MAX, kid, &fl), CELLAR_ERR_KEY_NOT_FOUND);
    CHECK(fl == 55 && all_is(kid, sizeof kid, SENT));
    /* cellar_keyring_rotate */
    v = 77;
    BAD(cellar_keyring_rotate(NULL, aes, &v), CELLAR_ERR_NULL_POINTER);
    /* (new_key NULL is defined: a generated key; not a bad input) */
    BAD(cellar_keyring_rotate(ring, aes, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate(ring, xts, &v), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_keyring_rotate((cellar_keyring *)aes, aes, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_rotate(ring, (const cellar_key *)ring, &v), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(v == 77);
    /* cellar_keyring_wrap */
    uint8_t out[512];
    size_t ol = 12345;
    size_t need = cellar_key_wrapped_len(CELLAR_KEY_AES256_XTS);
    memset(out, SENT, sizeof out);
    BAD(cellar_keyring_wrap(NULL, xts, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_wrap(ring, NULL, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_wrap(ring, xts, NULL, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_wrap(ring, xts, out, sizeof out, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_wrap((const cellar_keyring *)pxts, xts, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_wrap(ring, (const cellar_key *)pxts, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    BAD(cellar_keyring_wrap(ring, xts, out, need - 1, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == need);
    CHECK(all_is(out, sizeof out, SENT));
    uint8_t blob[512];
    size_t bl = 0;
    CHECK_OK(cellar_keyring_wrap(ring, xts, blob, sizeof blob, &bl));
    /* cellar_keyring_unwrap */
    cellar_key *k = (cellar_key *)(uintptr_t)0x1;
    cellar_key *const K0 = k;
    v = 77;
    BAD(cellar_keyring_unwrap(NULL, blob, bl, &k, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unwrap(ring, NULL, bl, &k, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unwrap(ring, blob, bl, NULL, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unwrap(ring, blob, bl, &k, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unwrap((const cellar_keyring *)cell, blob, bl, &k, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_unwrap(ring, blob, HUGE, &k, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_unwrap(ring, blob, 0, &k, &v), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(k == K0 && v == 77);
    /* cellar_keyring_rewrap */
    ol = 12345;
    memset(out, SENT, sizeof out);
    BAD(cellar_keyring_rewrap(NULL, blob, bl, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rewrap(ring, NULL, bl, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rewrap(ring, blob, bl, NULL, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rewrap(ring, blob, bl, out, sizeof out, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rewrap((const cellar_keyring *)xts, blob, bl, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_rewrap(ring, blob, HUGE, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    BAD(cellar_keyring_rewrap(ring, blob, bl, out, need - 1, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == need);
    CHECK(all_is(out, sizeof out, SENT));
    /* cellar_keyring_retire */
    BAD(cellar_keyring_retire(NULL, 1), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_retire((cellar_keyring *)cell, 1), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_retire(ring, 2), CELLAR_ERR_INVALID_ARGUMENT); /* the active version */
    BAD(cellar_keyring_retire(ring, 0), CELLAR_ERR_KEY_NOT_FOUND);
    BAD(cellar_keyring_retire(ring, UINT32_MAX), CELLAR_ERR_KEY_NOT_FOUND);
    /* cellar_keyring_lock */
    BAD(cellar_keyring_lock(NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_lock((cellar_keyring *)aes), CELLAR_ERR_INVALID_ARGUMENT);
    /* cellar_keyring_lock_with: unknown flag bits */
    BAD(cellar_keyring_lock_with(NULL, 0), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_lock_with((cellar_keyring *)aes, 0), CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++)
        if (BAD_ENUMS[i] > 1) BAD(cellar_keyring_lock_with(ring, BAD_ENUMS[i]), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_lock_with(ring, 2), CELLAR_ERR_INVALID_ARGUMENT);
    /* cellar_key_is_locked */
    int32_t kl = 77;
    BAD(cellar_key_is_locked(NULL, &kl), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_is_locked(aes, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_is_locked((const cellar_key *)ring, &kl), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(kl == 77);
    /* cellar_key_memory_status: both out-params required, untouched on failure; a success does
     * no cryptography and leaves the indicator as it was (here -1 from the failures above) */
    int32_t mlocked = 77, mnodump = 77;
    BAD(cellar_key_memory_status(NULL, &mnodump), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_memory_status(&mlocked, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_memory_status(NULL, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK(mlocked == 77 && mnodump == 77);
    CHECK_OK(cellar_key_memory_status(&mlocked, &mnodump));
    CHECK(cellar_last_operation_approved() == -1);
    CHECK(mlocked == 0 || mlocked == 1);
#ifdef __linux__
    CHECK(mnodump == 1);
#else
    CHECK(mnodump == 0 || mnodump == 1);
#endif
    /* cellar_keyring_unlock */
    BAD(cellar_keyring_unlock(NULL, aes), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock(ring, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock((cellar_keyring *)pgcm, aes), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_unlock(ring, (const cellar_key *)pgcm), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_unlock(ring, xts), CELLAR_ERR_INVALID_KEY);
    cellar_key *stranger = NULL;
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &stranger));
    BAD(cellar_keyring_unlock(ring, stranger), CELLAR_ERR_KEY_NOT_FOUND);
    /* locked keyring: wrap/unwrap/rewrap/rotate/export fail with TENANT_LOCKED, outputs untouched */
    CHECK_OK(cellar_keyring_lock(ring));
    ol = 12345;
    memset(out, SENT, sizeof out);
    BAD(cellar_keyring_wrap(ring, xts, out, sizeof out, &ol), CELLAR_ERR_TENANT_LOCKED);
    BAD(cellar_keyring_unwrap(ring, blob, bl, &k, &v), CELLAR_ERR_TENANT_LOCKED);
    BAD(cellar_keyring_rewrap(ring, blob, bl, out, sizeof out, &ol), CELLAR_ERR_TENANT_LOCKED);
    BAD(cellar_keyring_rotate(ring, stranger, &v), CELLAR_ERR_TENANT_LOCKED);
    BAD(cellar_keyring_export(ring, stranger, NULL, 0, 0, out, sizeof out, &ol), CELLAR_ERR_TENANT_LOCKED);
    CHECK(ol == 12345 && k == K0 && v == 77);
    CHECK(all_is(out, sizeof out, SENT));
    /* cellar_keyring_is_locked */
    int32_t lk = 9;
    BAD(cellar_keyring_is_locked(NULL, &lk), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_is_locked(ring, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_is_locked((const cellar_keyring *)xts, &lk), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(lk == 9);
    CHECK_OK(cellar_keyring_is_locked(ring, &lk));
    CHECK(lk == 1);
    /* cellar_keyring_add_provider (locked first, then unlocked) */
    cellar_key_provider prov;
    memset(&prov, 0, sizeof prov);
    memset(prov.key_id, 0x42, sizeof prov.key_id);
    prov.wrap = prov_wrap;
    prov.unwrap = prov_unwrap;
    BAD(cellar_keyring_add_provider(NULL, &prov, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_add_provider(ring, NULL, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_add_provider(ring, &prov, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_add_provider((cellar_keyring *)cell, &prov, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_add_provider(ring, &prov, &v), CELLAR_ERR_TENANT_LOCKED);
    /* cellar_keyring_unlock_provider */
    BAD(cellar_keyring_unlock_provider(NULL, &prov, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock_provider(ring, NULL, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock_provider(ring, &prov, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock_provider((cellar_keyring *)pgcm, &prov, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_unlock_provider(ring, &prov, &v), CELLAR_ERR_KEY_NOT_FOUND);
    CHECK(v == 77);
    /* unlock with both versions' keys (aes is version 1, the rotate key version 2) */
    CHECK_OK(cellar_keyring_unlock(ring, aes));
    CHECK_OK(cellar_keyring_unlock(ring, k2));
    cellar_key_free(stranger);
    /* cellar_keyring_export / cellar_keyring_import (with the keyring from main, unlocked again) */
    const uint8_t pw[] = "correct horse battery staple";
    size_t pwl = sizeof pw - 1;
    uint32_t it = CELLAR_PASSWORD_MIN_ITERATIONS;
    ol = 12345;
    BAD(cellar_keyring_export(NULL, aes, NULL, 0, 0, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_export(ring, NULL, NULL, 0, 0, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_export(ring, aes, pw, pwl, it, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_export(ring, NULL, NULL, pwl, it, out, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_export(ring, NULL, pw, CELLAR_PASSWORD_MIN_LEN - 1, it, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_export(ring, NULL, pw, pwl, 0, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_export(ring, NULL, pw, HUGE, it, out, sizeof out, &ol), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_export(ring, xts, NULL, 0, 0, out, sizeof out, &ol), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_keyring_export(ring, aes, NULL, 0, 0, out, sizeof out, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_export(ring, aes, NULL, 0, 0, NULL, sizeof out, &ol), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_export((const cellar_keyring *)aes, aes, NULL, 0, 0, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_export(ring, (const cellar_key *)ring, NULL, 0, 0, out, sizeof out, &ol),
        CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(ol == 12345);
    memset(out, SENT, sizeof out);
    PROBE(cellar_keyring_export(ring, aes, NULL, 0, 0, out, 0, &ol));
    size_t eneed = ol;
    CHECK(eneed > 0 && eneed <= sizeof out);
    BAD(cellar_keyring_export(ring, aes, NULL, 0, 0, out, eneed - 1, &ol), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == eneed);
    CHECK(all_is(out, sizeof out, SENT));
    uint8_t st[512];
    size_t stl = 0;
    CHECK_OK(cellar_keyring_export(ring, aes, NULL, 0, 0, st, sizeof st, &stl));
    r = R0;
    BAD(cellar_keyring_import(NULL, stl, aes, NULL, 0, &r), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_import(st, stl, aes, NULL, 0, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_import(st, stl, NULL, NULL, 0, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_import(st, stl, aes, pw, pwl, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_import(st, stl, NULL, pw, pwl, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_import(st, stl, NULL, NULL, pwl, &r), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_import(st, HUGE, aes, NULL, 0, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_import(st, 0, aes, NULL, 0, &r), CELLAR_ERR_AUTHENTICATION_FAILED);
    BAD(cellar_keyring_import(st, stl - 1, aes, NULL, 0, &r), CELLAR_ERR_AUTHENTICATION_FAILED);
    BAD(cellar_keyring_import(st, stl, xts, NULL, 0, &r), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_keyring_import(st, stl, (const cellar_key *)cell, NULL, 0, &r), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(r == R0);
    /* cellar_key_restore_usage_count: no cryptography; raises only */
    BAD(cellar_key_restore_usage_count(NULL, 1), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_key_restore_usage_count((const cellar_key *)ring, 1), CELLAR_ERR_INVALID_ARGUMENT);
    /* cellar_keyring_generation */
    uint64_t kgen = 77;
    BAD(cellar_keyring_generation(NULL, &kgen), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_generation(ring, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_generation((const cellar_keyring *)aes, &kgen), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(kgen == 77);
    CHECK_OK(cellar_keyring_generation(ring, &kgen));
    CHECK(kgen >= 2); /* created (1) and rotated once */
    /* cellar_keyring_import_min_generation: the import rows, plus a minimum above the export's */
    BAD(cellar_keyring_import_min_generation(NULL, stl, aes, NULL, 0, 0, &r), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_import_min_generation(st, stl, aes, NULL, 0, 0, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_import_min_generation(st, stl, NULL, NULL, 0, 0, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_import_min_generation(st, stl, aes, pw, pwl, 0, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_import_min_generation(st, stl, NULL, pw, pwl, 0, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_import_min_generation(st, stl, NULL, NULL, pwl, 0, &r), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_import_min_generation(st, HUGE, aes, NULL, 0, 0, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_import_min_generation(st, 0, aes, NULL, 0, 0, &r), CELLAR_ERR_AUTHENTICATION_FAILED);
    BAD(cellar_keyring_import_min_generation(st, stl - 1, aes, NULL, 0, 0, &r), CELLAR_ERR_AUTHENTICATION_FAILED);
    BAD(cellar_keyring_import_min_generation(st, stl, xts, NULL, 0, 0, &r), CELLAR_ERR_INVALID_KEY);
    BAD(cellar_keyring_import_min_generation(st, stl, (const cellar_key *)cell, NULL, 0, 0, &r),
        CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_import_min_generation(st, stl, aes, NULL, 0, kgen + 1, &r), CELLAR_ERR_AUTHENTICATION_FAILED);
    BAD(cellar_keyring_import_min_generation(st, stl, aes, NULL, 0, UINT64_MAX, &r), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(r == R0);
    /* cellar_keyring_free: NULL and another kind do nothing */
    cellar_keyring_free(NULL);
    cellar_keyring_free((cellar_keyring *)aes);
    uint32_t t = 0;
    CHECK_OK(cellar_key_type(aes, &t));
}

/* The PKCS#11 provider's entry points: every failure here happens before a token is reached
 * (argument checks, a module path that names no file), so no HSM is needed. The calls against a
 * real SoftHSM2 token are in ffi-tests/pkcs11/test_pkcs11.c (make test-pkcs11). */
static void matrix_pkcs11(void) {
    static const uint8_t MOD[] = "/nonexistent/libpkcs11-module.so";
    static const uint8_t TOK[] = "token";
    static const uint8_t PIN[] = "1234";
    static const uint8_t LBL[] = "key";
    cellar_pkcs11_config c = {MOD, sizeof MOD - 1, TOK, sizeof TOK - 1, 0, PIN, sizeof PIN - 1, 0, 0};
    cellar_pkcs11_config bad;
    cellar_keyring *r = (cellar_keyring *)(uintptr_t)0x1;
    cellar_keyring *const R0 = r;
    uint32_t v = 77;
    size_t n = 77;
    /* cellar_keyring_new_pkcs11 */
    BAD(cellar_keyring_new_pkcs11(NULL, LBL, 3, &r), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_new_pkcs11(&c, LBL, 3, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_new_pkcs11(&c, NULL, 3, &r), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_new_pkcs11(&c, LBL, 0, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_new_pkcs11(&c, LBL, HUGE, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_new_pkcs11(&c, LBL, 3, &r), CELLAR_ERR_PROVIDER_FAILED); /* no such module */
    bad = c; bad.module_path = NULL;
    BAD(cellar_keyring_new_pkcs11(&bad, LBL, 3, &r), CELLAR_ERR_NULL_POINTER);
    bad = c; bad.module_path_len = 0;
    BAD(cellar_keyring_new_pkcs11(&bad, LBL, 3, &r), CELLAR_ERR_INVALID_ARGUMENT);
    bad = c; bad.pin = NULL;
    BAD(cellar_keyring_new_pkcs11(&bad, LBL, 3, &r), CELLAR_ERR_NULL_POINTER);
    bad = c; bad.pin_len = 0;
    BAD(cellar_keyring_new_pkcs11(&bad, LBL, 3, &r), CELLAR_ERR_INVALID_ARGUMENT);
    bad = c; bad.token_label = NULL;
    BAD(cellar_keyring_new_pkcs11(&bad, LBL, 3, &r), CELLAR_ERR_NULL_POINTER);
    bad = c; bad.token_label_len = 0;
    BAD(cellar_keyring_new_pkcs11(&bad, LBL, 3, &r), CELLAR_ERR_INVALID_ARGUMENT);
    bad = c; bad.max_sessions = 65;
    BAD(cellar_keyring_new_pkcs11(&bad, LBL, 3, &r), CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++) {
        if (BAD_ENUMS[i] == 0) continue;
        bad = c; bad.flags = BAD_ENUMS[i] | 4u;
        BAD(cellar_keyring_new_pkcs11(&bad, LBL, 3, &r), CELLAR_ERR_INVALID_ARGUMENT);
    }
    CHECK(r == R0);
    /* cellar_keyring_adopt_pkcs11: exactly one of label and CKA_ID */
    BAD(cellar_keyring_adopt_pkcs11(NULL, LBL, 3, NULL, 0, &r), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_adopt_pkcs11(&c, LBL, 3, NULL, 0, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_adopt_pkcs11(&c, NULL, 0, NULL, 0, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_adopt_pkcs11(&c, LBL, 3, LBL, 3, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_adopt_pkcs11(&c, NULL, 0, NULL, 3, &r), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_adopt_pkcs11(&c, NULL, 3, NULL, 0, &r), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_adopt_pkcs11(&c, NULL, 0, LBL, 3, &r), CELLAR_ERR_PROVIDER_FAILED);
    CHECK(r == R0);
    /* cellar_keyring_rotate_pkcs11 */
    BAD(cellar_keyring_rotate_pkcs11(NULL, &c, LBL, 3, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_pkcs11(ring, NULL, LBL, 3, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_pkcs11(ring, &c, LBL, 3, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_pkcs11((cellar_keyring *)aes, &c, LBL, 3, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_rotate_pkcs11(ring, &c, LBL, 0, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_rotate_pkcs11(ring, &c, LBL, 3, &v), CELLAR_ERR_PROVIDER_FAILED);
    /* cellar_keyring_rotate_pkcs11_adopt */
    BAD(cellar_keyring_rotate_pkcs11_adopt(NULL, &c, LBL, 3, NULL, 0, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_pkcs11_adopt(ring, NULL, LBL, 3, NULL, 0, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_pkcs11_adopt(ring, &c, LBL, 3, NULL, 0, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_pkcs11_adopt((cellar_keyring *)cell, &c, LBL, 3, NULL, 0, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_rotate_pkcs11_adopt(ring, &c, NULL, 0, NULL, 0, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_rotate_pkcs11_adopt(ring, &c, LBL, 3, LBL, 3, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_rotate_pkcs11_adopt(ring, &c, LBL, 3, NULL, 0, &v), CELLAR_ERR_PROVIDER_FAILED);
    CHECK(v == 77);
    /* cellar_keyring_unlock_pkcs11: a keyring with no token versions attaches none */
    BAD(cellar_keyring_unlock_pkcs11(NULL, &c, &n), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock_pkcs11(ring, NULL, &n), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock_pkcs11(ring, &c, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock_pkcs11((cellar_keyring *)aes, &c, &n), CELLAR_ERR_INVALID_ARGUMENT);
    bad = c; bad.flags = 8u;
    BAD(cellar_keyring_unlock_pkcs11(ring, &bad, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(n == 77);
    CHECK_OK(cellar_keyring_unlock_pkcs11(ring, &c, &n));
    CHECK(n == 0);
    /* cellar_keyring_retire_pkcs11 */
    BAD(cellar_keyring_retire_pkcs11(NULL, 1, 0), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_retire_pkcs11((cellar_keyring *)cell, 1, 0), CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++) {
        if (BAD_ENUMS[i] <= 1u) continue;
        BAD(cellar_keyring_retire_pkcs11(ring, 1, BAD_ENUMS[i]), CELLAR_ERR_INVALID_ARGUMENT);
    }
    BAD(cellar_keyring_retire_pkcs11(ring, UINT32_MAX, 0), CELLAR_ERR_KEY_NOT_FOUND);
    BAD(cellar_keyring_retire_pkcs11(ring, UINT32_MAX, CELLAR_KEYRING_RETIRE_DESTROY), CELLAR_ERR_KEY_NOT_FOUND);
}

/* KMIP: everything that fails before a connection (a live server is in ffi-tests/kmip). */
static void matrix_kmip(void) {
    static const uint8_t HOST[] = "127.0.0.1";
    static const uint8_t NOFILE[] = "/nonexistent/cellar-kmip.pem";
    static const uint8_t NAME[] = "key";
    cellar_kmip_config c = {HOST, sizeof HOST - 1, 5696, NULL, 0, NOFILE, sizeof NOFILE - 1,
                            NOFILE, sizeof NOFILE - 1, NOFILE, sizeof NOFILE - 1, 0, 0, 0};
    cellar_kmip_config bad;
    cellar_kmip_client *cl = (cellar_kmip_client *)(uintptr_t)0x1;
    cellar_kmip_client *const CL0 = cl;
    const cellar_kmip_client *notcl = (const cellar_kmip_client *)(const void *)ring;
    cellar_keyring *r = (cellar_keyring *)(uintptr_t)0x1;
    cellar_keyring *const R0 = r;
    cellar_kmip_status st;
    uint32_t v = 77, mode = 77;
    size_t n = 77;
    uint8_t buf[8];
    /* cellar_kmip_client_new */
    BAD(cellar_kmip_client_new(NULL, &cl), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_kmip_client_new(&c, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_kmip_client_new(&c, &cl), CELLAR_ERR_INVALID_ARGUMENT); /* unreadable PEM files */
    bad = c; bad.host = NULL;
    BAD(cellar_kmip_client_new(&bad, &cl), CELLAR_ERR_NULL_POINTER);
    bad = c; bad.host_len = 0;
    BAD(cellar_kmip_client_new(&bad, &cl), CELLAR_ERR_INVALID_ARGUMENT);
    bad = c; bad.host_len = HUGE;
    BAD(cellar_kmip_client_new(&bad, &cl), CELLAR_ERR_INVALID_ARGUMENT);
    bad = c; bad.port = 0;
    BAD(cellar_kmip_client_new(&bad, &cl), CELLAR_ERR_INVALID_ARGUMENT);
    bad = c; bad.ca_path = NULL;
    BAD(cellar_kmip_client_new(&bad, &cl), CELLAR_ERR_NULL_POINTER);
    bad = c; bad.server_name_len = 3;
    BAD(cellar_kmip_client_new(&bad, &cl), CELLAR_ERR_NULL_POINTER);
    bad = c; bad.max_connections = 65;
    BAD(cellar_kmip_client_new(&bad, &cl), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(cl == CL0);
    /* cellar_kmip_client_free: NULL and a handle of another kind are ignored */
    cellar_kmip_client_free(NULL);
    cellar_kmip_client_free((cellar_kmip_client *)(void *)cell);
    /* cellar_kmip_client_check */
    BAD(cellar_kmip_client_check(NULL, &st), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_kmip_client_check(notcl, &st), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_kmip_client_check(notcl, NULL), CELLAR_ERR_NULL_POINTER);
    /* cellar_keyring_new_kmip / cellar_keyring_adopt_kmip */
    for (size_t i = 0; i < N_BAD_ENUMS; i++) {
        BAD(cellar_keyring_new_kmip(NULL, BAD_ENUMS[i], NAME, 3, &r), CELLAR_ERR_NULL_POINTER);
        BAD(cellar_keyring_adopt_kmip(notcl, BAD_ENUMS[i], NAME, 3, NULL, 0, &r), CELLAR_ERR_INVALID_ARGUMENT);
    }
    BAD(cellar_keyring_new_kmip(notcl, CELLAR_KMIP_FETCH, NAME, 3, &r), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_new_kmip(notcl, CELLAR_KMIP_FETCH, NAME, 3, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_adopt_kmip(NULL, CELLAR_KMIP_DELEGATED, NULL, 0, NAME, 3, &r), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_adopt_kmip(notcl, CELLAR_KMIP_DELEGATED, NULL, 0, NAME, 3, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK(r == R0);
    /* cellar_keyring_rotate_kmip / _adopt */
    BAD(cellar_keyring_rotate_kmip(NULL, notcl, CELLAR_KMIP_FETCH, NAME, 3, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_kmip(ring, NULL, CELLAR_KMIP_FETCH, NAME, 3, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_kmip(ring, notcl, CELLAR_KMIP_FETCH, NAME, 3, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_rotate_kmip(ring, notcl, CELLAR_KMIP_FETCH, NAME, 3, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_kmip((cellar_keyring *)aes, notcl, CELLAR_KMIP_FETCH, NAME, 3, &v), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_rotate_kmip_adopt(NULL, notcl, CELLAR_KMIP_FETCH, NAME, 3, NULL, 0, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_kmip_adopt(ring, NULL, CELLAR_KMIP_FETCH, NAME, 3, NULL, 0, &v), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_kmip_adopt(ring, notcl, CELLAR_KMIP_FETCH, NAME, 3, NULL, 0, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_rotate_kmip_adopt(ring, notcl, CELLAR_KMIP_FETCH, NAME, 3, NULL, 0, &v), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(v == 77);
    /* cellar_keyring_unlock_kmip */
    BAD(cellar_keyring_unlock_kmip(NULL, notcl, &n), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock_kmip(ring, NULL, &n), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock_kmip(ring, notcl, NULL), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_unlock_kmip(ring, notcl, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(n == 77);
    /* cellar_keyring_retire_kmip: a local version is not a KMIP version */
    BAD(cellar_keyring_retire_kmip(NULL, 1, 0), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_retire_kmip((cellar_keyring *)cell, 1, 0), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_retire_kmip(ring, 1, 0), CELLAR_ERR_INVALID_ARGUMENT);
    for (size_t i = 0; i < N_BAD_ENUMS; i++) {
        BAD(cellar_keyring_retire_kmip(ring, 1, BAD_ENUMS[i]), CELLAR_ERR_INVALID_ARGUMENT);
    }
    BAD(cellar_keyring_retire_kmip(ring, UINT32_MAX, 0), CELLAR_ERR_KEY_NOT_FOUND);
    /* cellar_keyring_kmip_uid */
    BAD(cellar_keyring_kmip_uid(NULL, 1, &mode, buf, sizeof buf, &n), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_kmip_uid(ring, 1, NULL, buf, sizeof buf, &n), CELLAR_ERR_NULL_POINTER);
    BAD(cellar_keyring_kmip_uid(ring, 1, &mode, buf, sizeof buf, &n), CELLAR_ERR_INVALID_ARGUMENT);
    BAD(cellar_keyring_kmip_uid(ring, 0, &mode, buf, sizeof buf, &n), CELLAR_ERR_KEY_NOT_FOUND);
    BAD(cellar_keyring_kmip_uid((cellar_keyring *)aes, 1, &mode, buf, sizeof buf, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(mode == 77 && n == 77);
}

int main(void) {
    CHECK_OK(cellar_init(0));
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &aes));
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256_XTS, &xts));
    CHECK_OK(cellar_page_cipher_new(aes, CELLAR_PAGE_GCM, 7, 1, 0, &pgcm));
    CHECK_OK(cellar_page_cipher_new(xts, CELLAR_PAGE_XTS, 7, 1, 0, &pxts));
    CHECK_OK(cellar_cell_cipher_new(aes, CELLAR_CELL_RANDOMIZED, 1, &cell));
    CHECK_OK(cellar_keyring_new(aes, &ring));
    uint32_t v2 = 0;
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &k2));
    CHECK_OK(cellar_keyring_rotate(ring, k2, &v2));
    CHECK(v2 == 2);

    matrix_core();
    matrix_keys();
    matrix_page();
    matrix_cell();
    CHECK_OK(cellar_keyring_unlock(ring, k2));
    matrix_keyring();
    matrix_pkcs11();
    matrix_kmip();

    cellar_key_free(k2);
    cellar_keyring_free(ring);
    cellar_cell_cipher_free(cell);
    cellar_page_cipher_free(pgcm);
    cellar_page_cipher_free(pxts);
    cellar_key_free(aes);
    cellar_key_free(xts);
    CHECK_SUMMARY();
}
