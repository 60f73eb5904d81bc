/* "No panic crosses the C boundary": against a library built with the test-only `test-hooks`
 * feature (make test-panic), cellar_test_panic_next() makes the next call panic inside the
 * boundary's catch region. Each forced panic must come back as CELLAR_ERR_INTERNAL with a
 * last-error text naming the function, no output written, and the process intact: the same
 * call then succeeds. Not under ffi-tests/c, whose programs link the release library. */
#include <stdint.h>
#include <stdlib.h>
#include "check.h"

void cellar_test_panic_next(uint32_t count); /* test-hooks only; not in cellar.h */

#define SENT 0xA5

static int all_is(const uint8_t *p, size_t n, uint8_t v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

/* The call panics (armed just before) and reports INTERNAL; then the same call succeeds. */
#define PANICS(call, fname)                                                    \
    do {                                                                       \
        char pbuf_[256];                                                       \
        cellar_test_panic_next(1);                                             \
        CHECK_STATUS(call, CELLAR_ERR_INTERNAL);                               \
        CHECK(cellar_last_error(pbuf_, sizeof pbuf_) > 0);                     \
        CHECK(strstr(pbuf_, fname) != NULL && strstr(pbuf_, "panic") != NULL); \
        CHECK(cellar_last_operation_approved() == -1);                         \
    } while (0)

int main(void) {
    cellar_key *aes = NULL, *xts = NULL, *k = (cellar_key *)(uintptr_t)0x1;
    cellar_key *const K0 = k;
    uint8_t out[512], out2[512];
    size_t ol = 12345;
    uint32_t v = 77;

    /* core */
    PANICS(cellar_init(0), "cellar_init");
    CHECK_OK(cellar_init(0));

    /* keys */
    PANICS(cellar_key_generate(CELLAR_KEY_AES256, &k), "cellar_key_generate");
    CHECK(k == K0);
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &aes));
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256_XTS, &xts));
    uint8_t mat[32] = {1, 2, 3};
    PANICS(cellar_key_import(CELLAR_KEY_AES256, mat, 32, &k), "cellar_key_import");
    CHECK(k == K0);
    memset(out, SENT, sizeof out);
    PANICS(cellar_key_wrap(aes, xts, 1, out, sizeof out, &ol), "cellar_key_wrap");
    PANICS(cellar_key_dangerous_export_raw(aes, out, sizeof out, &ol), "cellar_key_dangerous_export_raw");
    CHECK(ol == 12345 && all_is(out, sizeof out, SENT));
    size_t bl = 0;
    CHECK_OK(cellar_key_wrap(aes, xts, 4, out2, sizeof out2, &bl));
    PANICS(cellar_key_unwrap(aes, out2, bl, &k, &v), "cellar_key_unwrap");
    CHECK(k == K0 && v == 77);
    CHECK_OK(cellar_key_unwrap(aes, out2, bl, &k, &v));
    CHECK(v == 4);
    cellar_key_free(k);
    k = K0;

    /* page */
    cellar_page_cipher *pc = (cellar_page_cipher *)(uintptr_t)0x1, *gcm = NULL;
    PANICS(cellar_page_cipher_new(aes, CELLAR_PAGE_GCM, 1, 1, 0, &pc), "cellar_page_cipher_new");
    CHECK(pc == (cellar_page_cipher *)(uintptr_t)0x1);
    CHECK_OK(cellar_page_cipher_new(aes, CELLAR_PAGE_GCM, 1, 1, 0, &gcm));
    enum { PS = 4096 };
    uint8_t *in = malloc(2 * PS), *ct = malloc(2 * PS), *pt = malloc(2 * PS);
    memset(in, 0x33, 2 * PS);
    memset(ct, SENT, 2 * PS);
    PANICS(cellar_page_encrypt(gcm, 0, in, ct, PS), "cellar_page_encrypt");
    CHECK(all_is(ct, PS, SENT));
    CHECK_OK(cellar_page_encrypt_pages(gcm, 0, in, ct, PS, 2, 2));
    memset(pt, SENT, 2 * PS);
    PANICS(cellar_page_decrypt(gcm, 0, ct, pt, PS), "cellar_page_decrypt");
    PANICS(cellar_page_decrypt_pages(gcm, 0, ct, pt, PS, 2, 2), "cellar_page_decrypt_pages");
    CHECK(all_is(pt, 2 * PS, SENT));
    v = 77;
    PANICS(cellar_page_key_version(ct, PS, &v), "cellar_page_key_version");
    CHECK(v == 77);
    CHECK_OK(cellar_page_decrypt_pages(gcm, 0, ct, pt, PS, 2, 2));
    CHECK(memcmp(pt, in, PS - CELLAR_PAGE_GCM_TRAILER_LEN) == 0);

    /* cell */
    cellar_cell_cipher *cc = (cellar_cell_cipher *)(uintptr_t)0x1, *cell = NULL;
    PANICS(cellar_cell_cipher_new(aes, CELLAR_CELL_RANDOMIZED, 1, &cc), "cellar_cell_cipher_new");
    CHECK(cc == (cellar_cell_cipher *)(uintptr_t)0x1);
    CHECK_OK(cellar_cell_cipher_new(aes, CELLAR_CELL_RANDOMIZED, 1, &cell));
    const uint8_t secret[] = "plaintext-secret";
    memset(out, SENT, sizeof out);
    PANICS(cellar_cell_encrypt(cell, NULL, 0, secret, 16, out, sizeof out, &ol), "cellar_cell_encrypt");
    CHECK(ol == 12345 && all_is(out, sizeof out, SENT));
    size_t cl = 0;
    CHECK_OK(cellar_cell_encrypt(cell, NULL, 0, secret, 16, out2, sizeof out2, &cl));
    PANICS(cellar_cell_decrypt(cell, NULL, 0, out2, cl, out, sizeof out, &ol), "cellar_cell_decrypt");
    CHECK(ol == 12345 && all_is(out, sizeof out, SENT));
    size_t offs[2] = {0, cl}, ooffs[2] = {9, 9};
    PANICS(cellar_cell_decrypt_batch(cell, NULL, 0, out2, offs, 1, out, sizeof out, ooffs, &ol),
           "cellar_cell_decrypt_batch");
    CHECK(ol == 12345 && ooffs[0] == 9 && all_is(out, sizeof out, SENT));
    PANICS(cellar_blind_index(aes, NULL, 0, secret, 16, out, 16), "cellar_blind_index");
    CHECK(all_is(out, sizeof out, SENT));
    CHECK_OK(cellar_cell_decrypt(cell, NULL, 0, out2, cl, out, sizeof out, &ol));
    CHECK(ol == 16 && memcmp(out, secret, 16) == 0);

    /* keyring */
    cellar_keyring *kr = (cellar_keyring *)(uintptr_t)0x1, *ring = NULL;
    PANICS(cellar_keyring_new(aes, &kr), "cellar_keyring_new");
    CHECK(kr == (cellar_keyring *)(uintptr_t)0x1);
    CHECK_OK(cellar_keyring_new(aes, &ring));
    memset(out, SENT, sizeof out);
    ol = 12345;
    PANICS(cellar_keyring_wrap(ring, xts, out, sizeof out, &ol), "cellar_keyring_wrap");
    CHECK(ol == 12345 && all_is(out, sizeof out, SENT));
    CHECK_OK(cellar_keyring_wrap(ring, xts, out2, sizeof out2, &bl));
    v = 77;
    PANICS(cellar_keyring_unwrap(ring, out2, bl, &k, &v), "cellar_keyring_unwrap");
    CHECK(k == K0 && v == 77);
    PANICS(cellar_keyring_rotate(ring, NULL, &v), "cellar_keyring_rotate");
    PANICS(cellar_keyring_lock(ring), "cellar_keyring_lock");
    int32_t locked = 9;
    CHECK_OK(cellar_keyring_is_locked(ring, &locked));
    CHECK(locked == 0);
    PANICS(cellar_keyring_export(ring, aes, NULL, 0, 0, out, sizeof out, &ol), "cellar_keyring_export");
    CHECK(ol == 12345 && all_is(out, sizeof out, SENT));
    CHECK_OK(cellar_keyring_rotate(ring, NULL, &v));
    CHECK(v == 2);
    CHECK_OK(cellar_keyring_unwrap(ring, out2, bl, &k, &v));
    CHECK(v == 1);
    cellar_key_free(k);

    /* several in a row, then disarmed */
    cellar_test_panic_next(3);
    CHECK_STATUS(cellar_key_id(aes, out), CELLAR_ERR_INTERNAL);
    CHECK_STATUS(cellar_key_id(aes, out), CELLAR_ERR_INTERNAL);
    CHECK_STATUS(cellar_key_id(aes, out), CELLAR_ERR_INTERNAL);
    CHECK_OK(cellar_key_id(aes, out));
    cellar_test_panic_next(5);
    cellar_test_panic_next(0);
    CHECK_OK(cellar_key_id(aes, out));

    cellar_keyring_free(ring);
    cellar_cell_cipher_free(cell);
    cellar_page_cipher_free(gcm);
    cellar_key_free(aes);
    cellar_key_free(xts);
    free(in);
    free(ct);
    free(pt);
    CHECK_SUMMARY();
}
