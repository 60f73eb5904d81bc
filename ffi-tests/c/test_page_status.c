/* Page runs with a status per page (issue 20, item 3): a run with bad pages keeps its good
 * pages, names every bad page in the caller's status array, and leaves zeros in the bad ones;
 * on one thread and several, in place and out of place. */
#include <stdint.h>
#include <stdlib.h>
#include "check.h"

#define PS 4096
#define NP 32

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

int main(void) {
    cellar_key *key = NULL;
    cellar_page_cipher *c = NULL;
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &key));
    CHECK_OK(cellar_page_cipher_new(key, CELLAR_PAGE_GCM, 9, 1, 0, &c));
    uint8_t *plain = malloc(PS * NP), *enc = malloc(PS * NP), *work = malloc(PS * NP);
    for (size_t i = 0; i < PS * NP; i++) plain[i] = (uint8_t)(i * 7 + i / PS);
    for (int p = 0; p < NP; p++) memset(plain + p * PS + PS - CELLAR_PAGE_GCM_TRAILER_LEN, 0, CELLAR_PAGE_GCM_TRAILER_LEN);
    CHECK_OK(cellar_page_encrypt_pages(c, 100, plain, enc, PS, NP, 1));
    cellar_status st[NP];
    size_t failed = 99;
    /* all good */
    CHECK_OK(cellar_page_decrypt_pages_status(c, 100, enc, work, PS, NP, 1, st, &failed));
    CHECK_APPROVED();
    CHECK(failed == 0 && memcmp(work, plain, PS * NP) == 0);
    for (int p = 0; p < NP; p++) CHECK(st[p] == CELLAR_OK);
    /* three bad pages: a flipped byte, a page from another place, a zeroed page */
    enc[3 * PS + 10] ^= 1;
    memcpy(enc + 17 * PS, enc + 16 * PS, PS);
    memset(enc + 30 * PS, 0, PS);
    for (unsigned threads = 1; threads <= 4; threads += 3) {
        for (int inplace = 0; inplace <= 1; inplace++) {
            memset(work, 0xA5, PS * NP);
            for (int p = 0; p < NP; p++) st[p] = -7;
            failed = 0;
            if (inplace) memcpy(work, enc, PS * NP);
            const uint8_t *in = inplace ? work : enc;
            CHECK_STATUS(cellar_page_decrypt_pages_status(c, 100, in, work, PS, NP, threads, st, &failed),
                         CELLAR_ERR_AUTHENTICATION_FAILED);
            CHECK(cellar_last_operation_approved() == -1);
            char err[256];
            cellar_last_error(err, sizeof err);
            CHECK(strstr(err, "3 of 32 pages failed") != NULL && strstr(err, "page index 3 ") != NULL);
            CHECK(failed == 3);
            for (int p = 0; p < NP; p++) {
                int bad = p == 3 || p == 17 || p == 30;
                CHECK(st[p] == (bad ? CELLAR_ERR_AUTHENTICATION_FAILED : CELLAR_OK));
                if (bad)
                    CHECK(all_zero(work + p * PS, PS));
                else
                    CHECK(memcmp(work + p * PS, plain + p * PS, PS) == 0);
            }
        }
    }
    /* the all-or-nothing call zeroes every page of the same run */
    CHECK_STATUS(cellar_page_decrypt_pages(c, 100, enc, work, PS, NP, 1), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_zero(work, PS * NP));
    /* refused arguments touch neither the status array nor the pages */
    for (int p = 0; p < NP; p++) st[p] = -7;
    failed = 77;
    memset(work, 0xA5, PS * NP);
    CHECK_STATUS(cellar_page_decrypt_pages_status(c, UINT64_MAX, enc, work, PS, NP, 1, st, &failed),
                 CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_decrypt_pages_status(c, 0, enc, work, 1000, NP, 1, st, &failed),
                 CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_decrypt_pages_status(c, 0, enc, work, PS, NP, 1, (cellar_status *)work, &failed),
                 CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(st[0] == -7 && st[NP - 1] == -7 && failed == 77 && work[1] == 0xA5);
    /* zero pages */
    CHECK_OK(cellar_page_decrypt_pages_status(c, 0, NULL, NULL, PS, 0, 1, NULL, &failed));
    CHECK(failed == 0);
    free(plain);
    free(enc);
    free(work);
    cellar_page_cipher_free(c);
    cellar_key_free(key);
    CHECK_SUMMARY();
}
