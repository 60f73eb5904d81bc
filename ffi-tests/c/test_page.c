/* Page ciphers through the C ABI: round trips, in place and out of place, overlap refusal, NULLs
 * (each pointer in turn), sizes at and past the limits, wrong key types, unknown modes and flags,
 * a wrong-kind handle, batches (with threads; failure index in the last error), key versions,
 * the zero-page flag, reserved bytes and the approval indicator. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

#define PS 4096

static void fill(uint8_t *p, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 31u + seed);
}

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static cellar_key *gen(uint32_t type) {
    cellar_key *k = NULL;
    CHECK_OK(cellar_key_generate(type, &k));
    return k;
}

static cellar_page_cipher *make(cellar_key *k, uint32_t mode, uint32_t flags) {
    cellar_page_cipher *c = NULL;
    CHECK_OK(cellar_page_cipher_new(k, mode, 77, 3, flags, &c));
    CHECK_APPROVED();
    return c;
}

static void round_trip(cellar_page_cipher *c, size_t reserved) {
    static uint8_t pt[PS], ct[PS], back[PS], buf[PS];
    fill(pt, PS, 1);
    CHECK_OK(cellar_page_encrypt(c, 5, pt, ct, PS));
    CHECK_APPROVED();
    CHECK(memcmp(pt, ct, PS - reserved) != 0);
    CHECK_OK(cellar_page_decrypt(c, 5, ct, back, PS));
    CHECK_APPROVED();
    CHECK(memcmp(pt, back, PS - reserved) == 0);
    CHECK(all_zero(back + PS - reserved, reserved));
    /* in place */
    memcpy(buf, pt, PS);
    CHECK_OK(cellar_page_encrypt(c, 5, buf, buf, PS));
    CHECK_APPROVED();
    CHECK_OK(cellar_page_decrypt(c, 5, buf, buf, PS));
    CHECK(memcmp(buf, pt, PS - reserved) == 0);
    /* sizes at the limits */
    uint8_t *big = malloc(CELLAR_PAGE_MAX_SIZE), *big2 = malloc(CELLAR_PAGE_MAX_SIZE);
    fill(big, CELLAR_PAGE_MAX_SIZE, 2);
    CHECK_OK(cellar_page_encrypt(c, 1, big, big2, CELLAR_PAGE_MAX_SIZE));
    CHECK_OK(cellar_page_decrypt(c, 1, big2, big2, CELLAR_PAGE_MAX_SIZE));
    CHECK(memcmp(big, big2, CELLAR_PAGE_MAX_SIZE - reserved) == 0);
    CHECK_OK(cellar_page_encrypt(c, 1, big, big2, CELLAR_PAGE_MIN_SIZE));
    CHECK_OK(cellar_page_decrypt(c, 1, big2, big2, CELLAR_PAGE_MIN_SIZE));
    CHECK(memcmp(big, big2, CELLAR_PAGE_MIN_SIZE - reserved) == 0);
    size_t bad_sizes[] = {0, 16, CELLAR_PAGE_MIN_SIZE - 16, CELLAR_PAGE_MIN_SIZE + 1, 4100,
                          CELLAR_PAGE_MAX_SIZE + 16, (size_t)-1};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        CHECK_STATUS(cellar_page_encrypt(c, 1, big, big2, bad_sizes[i]), CELLAR_ERR_INVALID_ARGUMENT);
        CHECK(cellar_last_operation_approved() == -1);
        CHECK_HAS_ERROR_TEXT();
        CHECK_STATUS(cellar_page_decrypt(c, 1, big, big2, bad_sizes[i]), CELLAR_ERR_INVALID_ARGUMENT);
    }
    /* NULLs, each pointer in turn */
    CHECK_STATUS(cellar_page_encrypt(NULL, 1, pt, ct, PS), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_encrypt(c, 1, NULL, ct, PS), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_encrypt(c, 1, pt, NULL, PS), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_decrypt(NULL, 1, ct, back, PS), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_decrypt(c, 1, NULL, back, PS), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_decrypt(c, 1, ct, NULL, PS), CELLAR_ERR_NULL_POINTER);
    /* overlap other than in == out */
    CHECK_STATUS(cellar_page_encrypt(c, 1, big, big + 16, PS), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_decrypt(c, 1, big + 16, big, PS), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_encrypt(c, 1, big, big + PS - 1, PS), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_OK(cellar_page_encrypt(c, 1, big, big + PS, PS)); /* adjacent is fine */
    free(big);
    free(big2);
}

static void batches(cellar_page_cipher *c, size_t reserved) {
    enum { N = 16, BPS = 1024 };
    static uint8_t pt[N * BPS], ct[N * BPS], back[N * BPS], one[BPS];
    fill(pt, sizeof pt, 9);
    uint32_t threads[] = {0, 1, 2, 5, 1000};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        CHECK_OK(cellar_page_encrypt_pages(c, 100, pt, ct, BPS, N, threads[t]));
        CHECK_APPROVED();
        memset(back, 0xAA, sizeof back);
        CHECK_OK(cellar_page_decrypt_pages(c, 100, ct, back, BPS, N, threads[t]));
        CHECK_APPROVED();
        for (int i = 0; i < N; i++) {
            CHECK(memcmp(back + i * BPS, pt + i * BPS, BPS - reserved) == 0);
            CHECK_OK(cellar_page_decrypt(c, 100 + (uint64_t)i, ct + i * BPS, one, BPS));
            CHECK(memcmp(one, pt + i * BPS, BPS - reserved) == 0);
        }
        memcpy(back, ct, sizeof ct);
        CHECK_OK(cellar_page_decrypt_pages(c, 100, back, back, BPS, N, threads[t]));
        CHECK(memcmp(back, pt, BPS - reserved) == 0);
    }
    /* zero pages: no-op, NULLs allowed */
    CHECK_OK(cellar_page_encrypt_pages(c, 0, NULL, NULL, BPS, 0, 2));
    CHECK_OK(cellar_page_decrypt_pages(c, 0, NULL, NULL, BPS, 0, 0));
    /* NULLs and bad arguments */
    CHECK_STATUS(cellar_page_encrypt_pages(NULL, 0, pt, ct, BPS, N, 1), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_encrypt_pages(c, 0, NULL, ct, BPS, N, 1), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_encrypt_pages(c, 0, pt, NULL, BPS, N, 1), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_decrypt_pages(NULL, 0, ct, back, BPS, N, 1), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_decrypt_pages(c, 0, NULL, back, BPS, N, 1), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_decrypt_pages(c, 0, ct, NULL, BPS, N, 1), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_encrypt_pages(c, 0, pt, ct, 1000, N, 1), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_encrypt_pages(c, 0, pt, ct, BPS, SIZE_MAX / 512, 1), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_encrypt_pages(c, UINT64_MAX - 2, pt, ct, BPS, N, 1), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_encrypt_pages(c, 0, pt, pt + BPS, BPS, N - 1, 1), CELLAR_ERR_INVALID_ARGUMENT);
}

static void gcm_specifics(void) {
    cellar_key *k = gen(CELLAR_KEY_AES256);
    cellar_page_cipher *c = make(k, CELLAR_PAGE_GCM, 0);
    cellar_page_cipher *v4 = NULL;
    CHECK_OK(cellar_page_cipher_new(k, CELLAR_PAGE_GCM, 77, 4, 0, &v4));
    static uint8_t pt[PS], ct[PS], out[PS];
    fill(pt, PS, 4);
    CHECK_OK(cellar_page_encrypt(c, 8, pt, ct, PS));
    uint32_t kv = 0;
    CHECK_OK(cellar_page_key_version(ct, PS, &kv));
    CHECK(kv == 3);
    CHECK(ct[PS - 48] == 0x02); /* trailer format v2 (SP 800-108 subkey) */
    CHECK_STATUS(cellar_page_key_version(NULL, PS, &kv), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_key_version(ct, PS, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_key_version(ct, 100, &kv), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_key_version(ct, 0, &kv), CELLAR_ERR_INVALID_ARGUMENT);
    memset(out, 0, PS);
    kv = 99;
    CHECK_STATUS(cellar_page_key_version(out, PS, &kv), CELLAR_ERR_UNSUPPORTED_FORMAT);
    CHECK(kv == 99); /* out-param untouched on failure */
    /* other key version, moved page, flipped bit: auth failure and zeros */
    memset(out, 0x5A, PS);
    CHECK_STATUS(cellar_page_decrypt(v4, 8, ct, out, PS), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_zero(out, PS));
    char msg[256];
    cellar_last_error(msg, sizeof msg);
    CHECK(strstr(msg, "another key version") != NULL);
    CHECK(cellar_last_operation_approved() == -1);
    memset(out, 0x5A, PS);
    CHECK_STATUS(cellar_page_decrypt(c, 9, ct, out, PS), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_zero(out, PS));
    ct[100] ^= 1;
    CHECK_STATUS(cellar_page_decrypt(c, 8, ct, ct, PS), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_zero(ct, PS)); /* in place: zeros too */
    /* zero page */
    memset(out, 0, PS);
    CHECK_STATUS(cellar_page_decrypt(c, 1, out, out, PS), CELLAR_ERR_AUTHENTICATION_FAILED);
    cellar_page_cipher *z = make(k, CELLAR_PAGE_GCM, CELLAR_PAGE_ZERO_IS_EMPTY);
    memset(ct, 0, PS);
    memset(out, 1, PS);
    CHECK_OK(cellar_page_decrypt(z, 1, ct, out, PS));
    CHECK_APPROVED();
    CHECK(all_zero(out, PS));
    /* written mark (ABI 1.2): below it an all-zero page fails, at or above it reads as empty;
     * the mark only rises; the indicator is left as it was */
    uint64_t mark = 99;
    CHECK_OK(cellar_page_cipher_written_mark(z, &mark));
    CHECK(mark == 0);
    CHECK_OK(cellar_page_cipher_set_written_mark(z, 3));
    CHECK(cellar_last_operation_approved() == 1); /* unchanged since the approved decrypt above */
    CHECK_OK(cellar_page_cipher_written_mark(z, &mark));
    CHECK(mark == 3);
    CHECK_OK(cellar_page_cipher_set_written_mark(z, 1)); /* lower: leaves it */
    CHECK_OK(cellar_page_cipher_written_mark(z, &mark));
    CHECK(mark == 3);
    memset(ct, 0, PS);
    memset(out, 1, PS);
    CHECK_STATUS(cellar_page_decrypt(z, 2, ct, out, PS), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_zero(out, PS));
    cellar_last_error(msg, sizeof msg);
    CHECK(strstr(msg, "below the written mark") != NULL);
    CHECK_OK(cellar_page_decrypt(z, 3, ct, out, PS));
    CHECK_APPROVED();
    {
        /* a run of pages 1..4 with pages 1 and 2 zeroed: statuses name exactly those two */
        static uint8_t zr[4 * PS], zd[4 * PS];
        cellar_status zst[4];
        size_t nf = 0;
        memset(zr, 0, sizeof zr);
        fill(zd, PS, 9);
        CHECK_OK(cellar_page_encrypt(z, 3, zd, zr + 2 * PS, PS)); /* page 3 is a real page */
        CHECK_STATUS(cellar_page_decrypt_pages_status(z, 1, zr, zd, PS, 4, 1, zst, &nf), CELLAR_ERR_AUTHENTICATION_FAILED);
        CHECK(nf == 2);
        CHECK(zst[0] == CELLAR_ERR_AUTHENTICATION_FAILED && zst[1] == CELLAR_ERR_AUTHENTICATION_FAILED);
        CHECK(zst[2] == CELLAR_OK && zst[3] == CELLAR_OK);
    }
    /* XTS with the flag: the same rule */
    {
        cellar_key *xk2 = NULL;
        CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256_XTS, &xk2));
        cellar_page_cipher *xm = make(xk2, CELLAR_PAGE_XTS, CELLAR_PAGE_ZERO_IS_EMPTY);
        CHECK_OK(cellar_page_cipher_set_written_mark(xm, 10));
        CHECK_STATUS(cellar_page_decrypt(xm, 9, ct, out, PS), CELLAR_ERR_AUTHENTICATION_FAILED);
        CHECK_OK(cellar_page_decrypt(xm, 10, ct, out, PS));
        CHECK(all_zero(out, PS));
        cellar_page_cipher_free(xm);
        cellar_key_free(xk2);
    }
    /* without the flag the mark is refused */
    CHECK_STATUS(cellar_page_cipher_set_written_mark(c, 3), CELLAR_ERR_INVALID_ARGUMENT);
    /* batch failure: zeros everywhere, index in the last error */
    enum { N = 6, BPS = 512 };
    static uint8_t run[N * BPS], dec[N * BPS];
    fill(run, sizeof run, 3);
    CHECK_OK(cellar_page_encrypt_pages(c, 0, run, run, BPS, N, 1));
    run[4 * BPS + 7] ^= 0x10;
    for (uint32_t t = 1; t <= 3; t++) {
        memset(dec, 0x77, sizeof dec);
        CHECK_STATUS(cellar_page_decrypt_pages(c, 0, run, dec, BPS, N, t), CELLAR_ERR_AUTHENTICATION_FAILED);
        CHECK(all_zero(dec, sizeof dec));
        cellar_last_error(msg, sizeof msg);
        CHECK(strstr(msg, "page index 4") != NULL);
    }
    cellar_page_cipher_free(z);
    cellar_page_cipher_free(v4);
    cellar_page_cipher_free(c);
    cellar_key_free(k);
}

/* The 12-byte epoch salt of a GCM page (SPEC 4 trailer: format, 3 reserved, key version, salt). */
static const uint8_t *salt_of(const uint8_t *page) { return page + PS - 48 + 8; }

/* Security review finding 6: after fork() the parent and the child write GCM pages under
 * different salts (the child drops the budget it inherited and draws a new epoch before its
 * first page); each keeps its own salt; the parent reads the child's pages. */
static void gcm_salts_after_fork(void) {
    cellar_key *k = NULL;
    cellar_page_cipher *c = NULL;
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &k));
    CHECK_OK(cellar_page_cipher_new(k, CELLAR_PAGE_GCM, 11, 1, 0, &c));
    static uint8_t pt[PS], before[PS], child[2 * PS], after[PS], back[PS];
    fill(pt, PS, 9);
    CHECK_OK(cellar_page_encrypt(c, 1, pt, before, PS));
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* Child: two pages (one alone, one in a batch), sent to the parent; leave with _exit
         * (no exit-time leak check in a child that does not own the parent's threads). */
        close(fds[0]);
        static uint8_t two[2 * PS];
        int ok = cellar_page_encrypt(c, 2, pt, two, PS) == CELLAR_OK;
        memcpy(two + PS, pt, PS);
        ok = ok && cellar_page_encrypt_pages(c, 3, two + PS, two + PS, PS, 1, 1) == CELLAR_OK;
        size_t done = 0;
        while (ok && done < sizeof two) {
            ssize_t w = write(fds[1], two + done, sizeof two - done);
            if (w <= 0) ok = 0;
            else done += (size_t)w;
        }
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    size_t got = 0;
    while (got < sizeof child) {
        ssize_t r = read(fds[0], child + got, sizeof child - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fds[0]);
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(got == sizeof child);
    CHECK_OK(cellar_page_encrypt(c, 4, pt, after, PS));
    CHECK(memcmp(salt_of(before), salt_of(after), 12) == 0);     /* the parent keeps its epoch */
    CHECK(memcmp(salt_of(child), salt_of(before), 12) != 0);     /* the child drew a new one */
    CHECK(memcmp(salt_of(child + PS), salt_of(child), 12) == 0); /* and keeps it */
    CHECK_OK(cellar_page_decrypt(c, 2, child, back, PS));
    CHECK(memcmp(back, pt, PS - 48) == 0);
    CHECK_OK(cellar_page_decrypt(c, 3, child + PS, back, PS));
    CHECK(memcmp(back, pt, PS - 48) == 0);
    cellar_page_cipher_free(c);
    cellar_key_free(k);
}

int main(void) {
    gcm_salts_after_fork();
    cellar_key *xk = gen(CELLAR_KEY_AES256_XTS);
    cellar_key *gk = gen(CELLAR_KEY_AES256);
    cellar_page_cipher *x = make(xk, CELLAR_PAGE_XTS, 0);
    cellar_page_cipher *g = make(gk, CELLAR_PAGE_GCM, 0);

    /* constructor arguments */
    cellar_page_cipher *c = NULL;
    CHECK_STATUS(cellar_page_cipher_new(gk, CELLAR_PAGE_XTS, 1, 1, 0, &c), CELLAR_ERR_INVALID_KEY);
    CHECK_STATUS(cellar_page_cipher_new(xk, CELLAR_PAGE_GCM, 1, 1, 0, &c), CELLAR_ERR_INVALID_KEY);
    CHECK_STATUS(cellar_page_cipher_new(xk, 0, 1, 1, 0, &c), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_cipher_new(xk, 3, 1, 1, 0, &c), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_cipher_new(xk, UINT32_MAX, 1, 1, 0, &c), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_cipher_new(xk, CELLAR_PAGE_XTS, 1, 1, 2, &c), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_cipher_new(xk, CELLAR_PAGE_XTS, 1, 1, UINT32_MAX, &c), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_cipher_new(NULL, CELLAR_PAGE_XTS, 1, 1, 0, &c), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_page_cipher_new(xk, CELLAR_PAGE_XTS, 1, 1, 0, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK(c == NULL);
    /* wrong-kind handles both ways */
    static uint8_t pt[PS], ct[PS];
    CHECK_STATUS(cellar_page_encrypt((const cellar_page_cipher *)xk, 1, pt, ct, PS), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_decrypt_pages((const cellar_page_cipher *)gk, 1, pt, ct, PS, 1, 1),
                 CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_page_cipher_new((const cellar_key *)x, CELLAR_PAGE_XTS, 1, 1, 0, &c),
                 CELLAR_ERR_INVALID_ARGUMENT);
    cellar_page_cipher_free((cellar_page_cipher *)xk); /* ignored: not a page cipher */
    uint8_t id[CELLAR_KEY_ID_LEN];
    CHECK_OK(cellar_key_id(xk, id)); /* still alive */

    /* reserved bytes */
    CHECK(cellar_page_reserved_bytes(CELLAR_PAGE_XTS) == 0);
    CHECK(cellar_page_reserved_bytes(CELLAR_PAGE_GCM) == CELLAR_PAGE_GCM_TRAILER_LEN);
    CHECK(cellar_page_reserved_bytes(0) == SIZE_MAX);
    CHECK(cellar_page_reserved_bytes(77) == SIZE_MAX);

    round_trip(x, 0);
    round_trip(g, CELLAR_PAGE_GCM_TRAILER_LEN);
    batches(x, 0);
    batches(g, CELLAR_PAGE_GCM_TRAILER_LEN);
    gcm_specifics();

    /* XTS zero flag */
    cellar_page_cipher *xz = make(xk, CELLAR_PAGE_XTS, CELLAR_PAGE_ZERO_IS_EMPTY);
    memset(ct, 0, PS);
    memset(pt, 1, PS);
    CHECK_OK(cellar_page_decrypt(xz, 3, ct, pt, PS));
    CHECK(all_zero(pt, PS));
    CHECK_OK(cellar_page_decrypt(x, 3, ct, pt, PS));
    CHECK(!all_zero(pt, PS));

    /* the key may be freed before its ciphers */
    cellar_key_free(xk);
    fill(pt, PS, 6);
    CHECK_OK(cellar_page_encrypt(x, 2, pt, ct, PS));
    CHECK_OK(cellar_page_decrypt(x, 2, ct, ct, PS));
    CHECK(memcmp(pt, ct, PS) == 0);

    cellar_page_cipher_free(xz);
    cellar_page_cipher_free(x);
    cellar_page_cipher_free(g);
    cellar_page_cipher_free(NULL);
    cellar_key_free(gk);
    CHECK_SUMMARY();
}
