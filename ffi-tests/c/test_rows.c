/* Per-row contexts in batch calls (issue 20, items 2 and 5): cellar_cell_encrypt_batch_rows,
 * cellar_cell_decrypt_batch_rows, the blind-index key handle and its batches. Every row-bound
 * cell must equal (deterministic) or open as (randomized) a single call given the row's whole
 * context, in both context forms (packed column; prefix + suffix) and both offset widths. */
#include <stdint.h>
#include <stdlib.h>
#include "check.h"

#define N 5
static const char *VALUES[N] = {"alice@example.com", "", "bob", "carol@example.org", "x"};
static const char *KEYS[N] = {"row=1", "row=22", "", "row=4444", "row=5"};
static const char PREFIX[] = "tenant=7/users/email/";

static uint8_t vals[256], sufs[256], whole[512];
static size_t voffs[N + 1];
static uint32_t soffs32[N + 2]; /* one spare entry in front for the sliced test */
static uint64_t soffs64[N + 1], woffs64[N + 1];

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static void layout(void) {
    size_t v = 0, s = 0, w = 0;
    soffs32[0] = 0;
    for (int i = 0; i < N; i++) {
        voffs[i] = v;
        soffs32[i + 1] = (uint32_t)s;
        soffs64[i] = s;
        woffs64[i] = w;
        memcpy(vals + v, VALUES[i], strlen(VALUES[i]));
        v += strlen(VALUES[i]);
        memcpy(sufs + s, KEYS[i], strlen(KEYS[i]));
        s += strlen(KEYS[i]);
        memcpy(whole + w, PREFIX, sizeof PREFIX - 1);
        w += sizeof PREFIX - 1;
        memcpy(whole + w, KEYS[i], strlen(KEYS[i]));
        w += strlen(KEYS[i]);
    }
    voffs[N] = v;
    soffs32[N + 1] = (uint32_t)s;
    soffs64[N] = s;
    woffs64[N] = w;
}

/* Row i's whole context (prefix + key) into buf; returns its length. */
static size_t row_ctx(int i, uint8_t *buf) {
    memcpy(buf, PREFIX, sizeof PREFIX - 1);
    memcpy(buf + sizeof PREFIX - 1, KEYS[i], strlen(KEYS[i]));
    return sizeof PREFIX - 1 + strlen(KEYS[i]);
}

static void test_rows_match_single_calls(cellar_key *key, uint32_t mode) {
    cellar_cell_cipher *c = NULL;
    CHECK_OK(cellar_cell_cipher_new(key, mode, 3, &c));
    /* form 1: shared prefix + per-row suffix, 32-bit (Arrow int32) offsets */
    cellar_row_contexts pre = {(const uint8_t *)PREFIX, sizeof PREFIX - 1, sufs, soffs32 + 1, CELLAR_OFFSETS_32};
    /* form 2: a packed column of whole contexts, 64-bit offsets */
    cellar_row_contexts packed = {NULL, 0, whole, woffs64, CELLAR_OFFSETS_64};
    size_t need = cellar_cell_batch_ciphertext_len(mode, voffs, N);
    uint8_t *ct1 = malloc(need), *ct2 = malloc(need), *pt = malloc(need);
    size_t o1[N + 1], o2[N + 1], po[N + 1], l1 = 0, l2 = 0, pl = 0;
    CHECK_OK(cellar_cell_encrypt_batch_rows(c, &pre, vals, voffs, N, ct1, need, o1, &l1));
    int single_approval;
    {
        uint8_t one[128], ctx[128];
        size_t ol = 0, cl = row_ctx(0, ctx);
        CHECK_OK(cellar_cell_encrypt(c, ctx, cl, vals, voffs[1], one, sizeof one, &ol));
        single_approval = cellar_last_operation_approved();
    }
    CHECK_OK(cellar_cell_encrypt_batch_rows(c, &packed, vals, voffs, N, ct2, need, o2, &l2));
    CHECK(cellar_last_operation_approved() == single_approval);
    CHECK(l1 == need && l2 == need && o1[0] == 0 && o1[N] == l1);
    for (int i = 0; i < N; i++) {
        uint8_t ctx[128], one[128], back[128];
        size_t cl = row_ctx(i, ctx), ol = 0, bl = 0;
        const uint8_t *cell = ct1 + o1[i];
        size_t cell_len = o1[i + 1] - o1[i];
        /* each row-bound cell opens with a single call given the row's whole context ... */
        CHECK_OK(cellar_cell_decrypt(c, ctx, cl, cell, cell_len, back, sizeof back, &bl));
        CHECK(bl == strlen(VALUES[i]) && memcmp(back, VALUES[i], bl) == 0);
        /* ... and not with a neighbour's context (the binding is per row) */
        uint8_t other[128];
        size_t ocl = row_ctx((i + 1) % N, other);
        CHECK_STATUS(cellar_cell_decrypt(c, other, ocl, cell, cell_len, back, sizeof back, &bl),
                     CELLAR_ERR_AUTHENTICATION_FAILED);
        if (mode == CELLAR_CELL_DETERMINISTIC) {
            CHECK_OK(cellar_cell_encrypt(c, ctx, cl, (const uint8_t *)VALUES[i], strlen(VALUES[i]), one, sizeof one, &ol));
            CHECK(ol == cell_len && memcmp(one, cell, ol) == 0);
            CHECK(o2[i + 1] - o2[i] == cell_len && memcmp(ct2 + o2[i], cell, cell_len) == 0);
        }
    }
    /* decrypt both ways: prefix form over the packed-form cells and the reverse */
    size_t room = cellar_cell_batch_plaintext_max_len(mode, o1, N);
    CHECK_OK(cellar_cell_decrypt_batch_rows(c, &pre, ct2, o2, N, pt, room, po, &pl));
    CHECK(pl == voffs[N] && memcmp(pt, vals, pl) == 0);
    for (int i = 0; i <= N; i++) CHECK(po[i] == voffs[i]);
    CHECK_OK(cellar_cell_decrypt_batch_rows(c, &packed, ct1, o1, N, pt, room, po, &pl));
    CHECK(pl == voffs[N] && memcmp(pt, vals, pl) == 0);
    /* contexts shifted by one row: the batch fails, names a value, leaves zeros */
    cellar_row_contexts shifted = {(const uint8_t *)PREFIX, sizeof PREFIX - 1, sufs, soffs32, CELLAR_OFFSETS_32};
    memset(pt, 0xA5, room);
    /* soffs32[0..N] has row i-1's key for row i (row 0: empty) */
    CHECK_STATUS(cellar_cell_decrypt_batch_rows(c, &shifted, ct1, o1, N, pt, room, po, &pl),
                 CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(all_zero(pt, room));
    char err[256];
    cellar_last_error(err, sizeof err);
    CHECK(strstr(err, "value 0") != NULL);
    CHECK(cellar_last_operation_approved() == -1);
    /* a sliced Arrow array: offsets start past 0 */
    cellar_row_contexts sliced = {(const uint8_t *)PREFIX, sizeof PREFIX - 1, sufs, soffs32 + 2, CELLAR_OFFSETS_32};
    size_t n4 = cellar_cell_batch_plaintext_max_len(mode, o1 + 1, N - 1);
    CHECK_OK(cellar_cell_decrypt_batch_rows(c, &sliced, ct1, o1 + 1, N - 1, pt, n4, po, &pl));
    CHECK(pl == voffs[N] - voffs[1] && memcmp(pt, vals + voffs[1], pl) == 0);
    /* mismatched forms: contexts and cells out of step */
    CHECK_STATUS(cellar_cell_decrypt_batch_rows(c, &sliced, ct1, o1, N - 1, pt, room, po, &pl),
                 CELLAR_ERR_AUTHENTICATION_FAILED);
    free(ct1);
    free(ct2);
    free(pt);
    cellar_cell_cipher_free(c);
}

static void test_rows_bad_inputs(cellar_key *key) {
    cellar_cell_cipher *c = NULL, *ms = NULL;
    CHECK_OK(cellar_cell_cipher_new(key, CELLAR_CELL_RANDOMIZED, 1, &c));
    CHECK_OK(cellar_cell_cipher_new(key, CELLAR_CELL_MSSQL_DETERMINISTIC, 1, &ms));
    uint8_t out[1024];
    size_t oo[N + 1], ol = 777;
    cellar_row_contexts rc = {NULL, 0, sufs, soffs64, CELLAR_OFFSETS_64};
    cellar_row_contexts width = rc;
    width.offset_width = 2;
    CHECK_STATUS(cellar_cell_encrypt_batch_rows(c, &width, vals, voffs, N, out, sizeof out, oo, &ol),
                 CELLAR_ERR_INVALID_ARGUMENT);
    cellar_row_contexts noffs = rc;
    noffs.suffix_offsets = NULL;
    CHECK_STATUS(cellar_cell_encrypt_batch_rows(c, &noffs, vals, voffs, N, out, sizeof out, oo, &ol),
                 CELLAR_ERR_NULL_POINTER);
    cellar_row_contexts nsuf = rc;
    nsuf.suffixes = NULL;
    CHECK_STATUS(cellar_cell_encrypt_batch_rows(c, &nsuf, vals, voffs, N, out, sizeof out, oo, &ol),
                 CELLAR_ERR_NULL_POINTER);
    cellar_row_contexts npre = rc;
    npre.prefix_len = 3;
    CHECK_STATUS(cellar_cell_encrypt_batch_rows(c, &npre, vals, voffs, N, out, sizeof out, oo, &ol),
                 CELLAR_ERR_NULL_POINTER);
    uint64_t dec[N + 1] = {0, 5, 3, 6, 7, 8};
    cellar_row_contexts decr = {NULL, 0, sufs, dec, CELLAR_OFFSETS_64};
    CHECK_STATUS(cellar_cell_encrypt_batch_rows(c, &decr, vals, voffs, N, out, sizeof out, oo, &ol),
                 CELLAR_ERR_INVALID_ARGUMENT);
    char err[256];
    cellar_last_error(err, sizeof err);
    CHECK(strstr(err, "value 1") != NULL);
    /* misaligned 64-bit offsets */
    uint8_t raw[8 * (N + 2)];
    memcpy(raw + 1, soffs64, sizeof soffs64);
    cellar_row_contexts mis = {NULL, 0, sufs, raw + 1, CELLAR_OFFSETS_64};
    CHECK_STATUS(cellar_cell_encrypt_batch_rows(c, &mis, vals, voffs, N, out, sizeof out, oo, &ol),
                 CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_cell_encrypt_batch_rows(c, NULL, vals, voffs, N, out, sizeof out, oo, &ol),
                 CELLAR_ERR_NULL_POINTER);
    CHECK(ol == 777);
    /* Always Encrypted: empty rows are fine, a non-empty one is refused */
    uint64_t zeros[N + 1] = {0};
    cellar_row_contexts none = {NULL, 0, NULL, zeros, CELLAR_OFFSETS_64};
    size_t need = cellar_cell_batch_ciphertext_len(CELLAR_CELL_MSSQL_DETERMINISTIC, voffs, N);
    CHECK_OK(cellar_cell_encrypt_batch_rows(ms, &none, vals, voffs, N, out, need, oo, &ol));
    CHECK_STATUS(cellar_cell_encrypt_batch_rows(ms, &rc, vals, voffs, N, out, need, oo, &ol),
                 CELLAR_ERR_INVALID_ARGUMENT);
    /* too small: the size needed */
    ol = 0;
    size_t rneed = cellar_cell_batch_ciphertext_len(CELLAR_CELL_RANDOMIZED, voffs, N);
    CHECK_STATUS(cellar_cell_encrypt_batch_rows(c, &rc, vals, voffs, N, out, rneed - 1, oo, &ol),
                 CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(ol == rneed);
    /* zero rows */
    CHECK_OK(cellar_cell_encrypt_batch_rows(c, &rc, NULL, voffs, 0, NULL, 0, oo, &ol));
    CHECK(ol == 0);
    cellar_cell_cipher_free(c);
    cellar_cell_cipher_free(ms);
}

static void test_blind_index_key(cellar_key *key, cellar_key *xts) {
    cellar_blind_index_key *b = NULL;
    CHECK_STATUS(cellar_blind_index_key_new(key, 0, &b), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_blind_index_key_new(key, 99, &b), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_blind_index_key_new(xts, CELLAR_BLIND_INDEX_V1, &b), CELLAR_ERR_INVALID_KEY);
    CHECK(b == NULL);
    CHECK_OK(cellar_blind_index_key_new(key, CELLAR_BLIND_INDEX_V1, &b));
    CHECK(cellar_last_operation_approved() == 0); /* version 1: HKDF blind-index key (SPEC 10) */
    uint8_t a[32], e[32];
    CHECK_OK(cellar_blind_index_compute(b, (const uint8_t *)PREFIX, 5, vals, 5, a, 32));
    CHECK(cellar_last_operation_approved() == 0); /* a v1 index is the v1 (HKDF) scheme throughout */
    CHECK_OK(cellar_blind_index(key, (const uint8_t *)PREFIX, 5, vals, 5, e, 32));
    CHECK(memcmp(a, e, 32) == 0);
    CHECK_STATUS(cellar_blind_index_compute(b, NULL, 0, NULL, 0, a, 3), CELLAR_ERR_INVALID_ARGUMENT);
    /* shared-context batch == single calls */
    uint8_t idx[N * 16], one[16], rows[N * 16];
    size_t il = 0;
    CHECK_OK(cellar_blind_index_batch(b, (const uint8_t *)PREFIX, sizeof PREFIX - 1, vals, voffs, N, 16, idx,
                                      sizeof idx, &il));
    CHECK(cellar_last_operation_approved() == 0);
    CHECK(il == N * 16);
    for (int i = 0; i < N; i++) {
        CHECK_OK(cellar_blind_index_compute(b, (const uint8_t *)PREFIX, sizeof PREFIX - 1, vals + voffs[i],
                                            voffs[i + 1] - voffs[i], one, 16));
        CHECK(memcmp(idx + 16 * i, one, 16) == 0);
    }
    /* per-row batch == single calls with the row's whole context, both forms */
    cellar_row_contexts pre = {(const uint8_t *)PREFIX, sizeof PREFIX - 1, sufs, soffs32 + 1, CELLAR_OFFSETS_32};
    cellar_row_contexts packed = {NULL, 0, whole, woffs64, CELLAR_OFFSETS_64};
    CHECK_OK(cellar_blind_index_batch_rows(b, &pre, vals, voffs, N, 16, rows, sizeof rows, &il));
    CHECK(cellar_last_operation_approved() == 0);
    uint8_t rows2[N * 16];
    CHECK_OK(cellar_blind_index_batch_rows(b, &packed, vals, voffs, N, 16, rows2, sizeof rows2, &il));
    CHECK(memcmp(rows, rows2, sizeof rows) == 0);
    for (int i = 0; i < N; i++) {
        uint8_t ctx[128];
        size_t cl = row_ctx(i, ctx);
        CHECK_OK(cellar_blind_index(key, ctx, cl, vals + voffs[i], voffs[i + 1] - voffs[i], one, 16));
        CHECK(memcmp(rows + 16 * i, one, 16) == 0);
    }
    CHECK(memcmp(rows, idx, 16) != 0); /* bound to the row, not the shared prefix */
    /* sizes and bad input */
    il = 0;
    CHECK_STATUS(cellar_blind_index_batch_rows(b, &pre, vals, voffs, N, 16, rows, N * 16 - 1, &il),
                 CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(il == N * 16);
    CHECK_STATUS(cellar_blind_index_batch(b, NULL, 0, vals, voffs, N, 33, idx, sizeof idx, &il),
                 CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_blind_index_batch((const cellar_blind_index_key *)key, NULL, 0, vals, voffs, N, 16, idx,
                                          sizeof idx, &il),
                 CELLAR_ERR_INVALID_ARGUMENT);
    cellar_blind_index_key_free(b);
    cellar_blind_index_key_free(NULL);
}

/* Issue 20 item 8: a DETERMINISTIC (or MSSQL) batch decrypt given exactly the total plaintext
 * size succeeds; one byte less is BUFFER_TOO_SMALL with the bound, leaving zeros; a size query
 * (out_cap 0) is not a failure. */
static void test_tight_decrypt_bound(cellar_key *key, uint32_t mode) {
    cellar_cell_cipher *c = NULL;
    CHECK_OK(cellar_cell_cipher_new(key, mode, 1, &c));
    size_t need = cellar_cell_batch_ciphertext_len(mode, voffs, N), ctl = 0, o[N + 1], po[N + 1], pl = 0;
    uint8_t *ct = malloc(need), *pt = malloc(need);
    CHECK_OK(cellar_cell_encrypt_batch(c, NULL, 0, vals, voffs, N, ct, need, o, &ctl));
    size_t exact = voffs[N], room = cellar_cell_batch_plaintext_max_len(mode, o, N);
    CHECK(room > exact);
    CHECK_OK(cellar_cell_decrypt_batch(c, NULL, 0, ct, o, N, pt, exact, po, &pl));
    CHECK(pl == exact && memcmp(pt, vals, exact) == 0);
    uint64_t zeros[N + 1] = {0};
    cellar_row_contexts none = {NULL, 0, NULL, zeros, CELLAR_OFFSETS_64};
    memset(pt, 0, need);
    CHECK_OK(cellar_cell_decrypt_batch_rows(c, &none, ct, o, N, pt, exact, po, &pl));
    CHECK(pl == exact && memcmp(pt, vals, exact) == 0);
    memset(pt, 0xA5, need);
    pl = 0;
    CHECK_STATUS(cellar_cell_decrypt_batch(c, NULL, 0, ct, o, N, pt, exact - 1, po, &pl), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(pl == room && all_zero(pt, exact - 1) && pt[exact - 1] == 0xA5);
    CHECK(cellar_last_operation_approved() == -1);
    /* a size query answers with the bound and is not a failure */
    uint8_t kid[16];
    CHECK_OK(cellar_key_id(key, kid)); /* clears the last error */
    pl = 0;
    CHECK_STATUS(cellar_cell_decrypt_batch(c, NULL, 0, ct, o, N, NULL, 0, po, &pl), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(pl == room && cellar_last_error(NULL, 0) == 0);
    free(ct);
    free(pt);
    cellar_cell_cipher_free(c);
}

int main(void) {
    layout();
    cellar_key *key = NULL, *xts = NULL;
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &key));
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256_XTS, &xts));
    test_rows_match_single_calls(key, CELLAR_CELL_RANDOMIZED);
    test_rows_match_single_calls(key, CELLAR_CELL_DETERMINISTIC);
    test_rows_bad_inputs(key);
    test_tight_decrypt_bound(key, CELLAR_CELL_DETERMINISTIC);
    test_tight_decrypt_bound(key, CELLAR_CELL_MSSQL_DETERMINISTIC);
    test_tight_decrypt_bound(key, CELLAR_CELL_MSSQL_RANDOMIZED);
    test_blind_index_key(key, xts);
    cellar_key_free(key);
    cellar_key_free(xts);
    CHECK_SUMMARY();
}
