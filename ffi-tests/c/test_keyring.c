/* The tenant keyring from C: the full lifecycle, an external provider written in C, and the
 * bad-input matrix (NULLs, zero lengths, short buffers, wrong key types, out-of-range versions,
 * wrong-kind handles) for every cellar_keyring_* entry point. */
#include <setjmp.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include "check.h"

#define PW "correct horse battery staple"
#define PW_LEN (sizeof PW - 1)
#define ITER CELLAR_PASSWORD_MIN_ITERATIONS
#define NKEYS 4

/* ---- A test provider: stands in for an HSM. Wrapped form: 0xC5 | (record XOR pad) | FNV-1a(record)
 * (u32 BE). Not cryptography: it only shows the contract (lengths, codes, failures, context). ---- */
typedef struct {
    uint8_t pad[CELLAR_PROVIDER_MAX_UNWRAPPED_LEN];
    int fail;       /* 1: callbacks return an error */
    int mode;       /* 0 normal, 1 success without length, 2 length past out_cap, 3 unwrap returns junk */
    int calls;
} test_hsm;

static uint32_t fnv1a(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* Set to make hsm_wrap leave by longjmp (a callback that never returns; unsupported, but the
 * thread's indicator must not stay frozen: security review finding 7). */
static jmp_buf escape;
static int escape_armed;

static cellar_status hsm_wrap(void *ctx, const uint8_t *rec, size_t rec_len, uint8_t *out, size_t out_cap,
                              size_t *out_len) {
    test_hsm *h = (test_hsm *)ctx;
    h->calls++;
    if (escape_armed) {
        escape_armed = 0;
        longjmp(escape, 1);
    }
    if (h->fail) return 42;
    if (rec_len > sizeof h->pad || out_cap < rec_len + 5) return 43;
    if (h->mode == 1) return CELLAR_OK; /* forgets *out_len */
    out[0] = 0xC5;
    for (size_t i = 0; i < rec_len; i++) out[1 + i] = rec[i] ^ h->pad[i];
    uint32_t c = fnv1a(rec, rec_len);
    out[1 + rec_len] = (uint8_t)(c >> 24);
    out[2 + rec_len] = (uint8_t)(c >> 16);
    out[3 + rec_len] = (uint8_t)(c >> 8);
    out[4 + rec_len] = (uint8_t)c;
    *out_len = h->mode == 2 ? out_cap + 1 : rec_len + 5;
    return CELLAR_OK;
}

static cellar_status hsm_unwrap(void *ctx, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                                size_t *out_len) {
    test_hsm *h = (test_hsm *)ctx;
    h->calls++;
    if (h->fail) return -1;
    if (in_len < 6 || in[0] != 0xC5 || in_len - 5 > out_cap) return CELLAR_ERR_AUTHENTICATION_FAILED;
    size_t n = in_len - 5;
    for (size_t i = 0; i < n; i++) out[i] = in[1 + i] ^ h->pad[i];
    uint32_t c = ((uint32_t)in[1 + n] << 24) | ((uint32_t)in[2 + n] << 16) | ((uint32_t)in[3 + n] << 8) | in[4 + n];
    if (c != fnv1a(out, n)) {
        memset(out, 0, n);
        return CELLAR_ERR_AUTHENTICATION_FAILED;
    }
    if (h->mode == 3) out[n - 1] ^= 1;
    *out_len = n;
    return CELLAR_OK;
}

static cellar_key *gen(uint32_t type) {
    cellar_key *k = NULL;
    CHECK_OK(cellar_key_generate(type, &k));
    return k;
}

static void key_id(const cellar_key *k, uint8_t id[16]) { CHECK_OK(cellar_key_id(k, id)); }

static int same_key(const cellar_key *a, const cellar_key *b) {
    uint8_t x[16], y[16];
    key_id(a, x);
    key_id(b, y);
    return memcmp(x, y, 16) == 0;
}

static uint32_t active(const cellar_keyring *kr) {
    uint32_t v = 0;
    CHECK_OK(cellar_keyring_active_version(kr, &v));
    return v;
}

static int locked(const cellar_keyring *kr) {
    int32_t l = -1;
    CHECK_OK(cellar_keyring_is_locked(kr, &l));
    return l;
}

/* Unwraps and compares with the expected data key; returns the status. */
static cellar_status unwrap_is(const cellar_keyring *kr, const uint8_t *blob, size_t len, const cellar_key *want,
                               uint32_t want_version) {
    cellar_key *k = NULL;
    uint32_t v = 0;
    cellar_status st = cellar_keyring_unwrap(kr, blob, len, &k, &v);
    if (st == CELLAR_OK) {
        /* 1 for a module-backed version, exactly 0 when a provider unwrapped (finding 4). Read
         * the indicator first: the flags query below leaves it unchanged. */
        int32_t ind = cellar_last_operation_approved();
        uint8_t vid[16];
        uint32_t flags = 0;
        CHECK_OK(cellar_keyring_version_info(kr, v, vid, &flags));
        CHECK(cellar_last_operation_approved() == ind);
        CHECK(ind == ((flags & CELLAR_KEYRING_VERSION_PROVIDER) ? 0 : 1));
        CHECK(same_key(k, want));
        CHECK(v == want_version);
        cellar_key_free(k);
    } else {
        CHECK(k == NULL && v == 0); /* out-params untouched on failure */
    }
    return st;
}

static void lifecycle(void) {
    cellar_keyring *kr = NULL;
    CHECK_OK(cellar_keyring_new(NULL, &kr));
    CHECK_APPROVED();
    CHECK(active(kr) == 1);
    CHECK(locked(kr) == 0);

    cellar_key *dk[NKEYS];
    uint8_t blob[NKEYS][CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t blen[NKEYS];
    for (int i = 0; i < NKEYS; i++) {
        dk[i] = gen(i % 2 ? CELLAR_KEY_AES256_XTS : CELLAR_KEY_AES256);
        CHECK_OK(cellar_keyring_wrap(kr, dk[i], blob[i], sizeof blob[i], &blen[i]));
        CHECK_APPROVED();
        CHECK(blen[i] == cellar_key_wrapped_len(i % 2 ? CELLAR_KEY_AES256_XTS : CELLAR_KEY_AES256));
        CHECK(blob[i][0] == 0x57 && blob[i][1] == 0x01);
    }

    /* Rotate twice: generated, then a customer key. */
    uint32_t v = 0;
    CHECK_OK(cellar_keyring_rotate(kr, NULL, &v));
    CHECK_APPROVED();
    CHECK(v == 2);
    cellar_key *customer = gen(CELLAR_KEY_AES256);
    CHECK_OK(cellar_keyring_rotate(kr, customer, &v));
    CHECK_APPROVED();
    CHECK(v == 3 && active(kr) == 3);

    uint32_t vers[4];
    uint8_t ids[4 * 16];
    size_t count = 0;
    CHECK_OK(cellar_keyring_versions(kr, vers, ids, 4, &count));
    CHECK(count == 3 && vers[0] == 1 && vers[1] == 2 && vers[2] == 3);
    uint8_t cid[16];
    key_id(customer, cid);
    CHECK(memcmp(ids + 32, cid, 16) == 0);
    uint8_t vid[16];
    uint32_t flags = 0;
    CHECK_OK(cellar_keyring_version_info(kr, 3, vid, &flags));
    CHECK(flags == CELLAR_KEYRING_VERSION_ACTIVE && memcmp(vid, cid, 16) == 0);

    /* Old blobs still open under version 1. */
    CHECK_OK(unwrap_is(kr, blob[0], blen[0], dk[0], 1));

    /* Rewrap all to version 3. */
    uint8_t re[NKEYS][CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t rlen[NKEYS];
    for (int i = 0; i < NKEYS; i++) {
        CHECK_OK(cellar_keyring_rewrap(kr, blob[i], blen[i], re[i], sizeof re[i], &rlen[i]));
        CHECK_APPROVED();
        CHECK(rlen[i] == blen[i]);
        CHECK(memcmp(re[i] + 2, cid, 16) == 0);
        CHECK_OK(unwrap_is(kr, re[i], rlen[i], dk[i], 3));
    }

    /* Retire version 1: its blobs fail with key-not-found, the rewrapped ones work. */
    CHECK_OK(cellar_keyring_retire(kr, 1));
    for (int i = 0; i < NKEYS; i++) {
        CHECK_STATUS(unwrap_is(kr, blob[i], blen[i], dk[i], 1), CELLAR_ERR_KEY_NOT_FOUND);
        CHECK_OK(unwrap_is(kr, re[i], rlen[i], dk[i], 3));
    }
    CHECK_OK(cellar_keyring_version_info(kr, 1, vid, &flags));
    CHECK(flags == CELLAR_KEYRING_VERSION_RETIRED);

    /* Version 2 was generated here and never exported: a plain lock could never be undone,
     * so it is refused (issue 20); forced, it locks (and version 2's material is gone). */
    CHECK_STATUS(cellar_keyring_lock(kr), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(locked(kr) == 0);
    CHECK_STATUS(cellar_keyring_lock_with(kr, 2), CELLAR_ERR_INVALID_ARGUMENT);
    /* Lock: wrap and unwrap fail with tenant-locked; metadata stays. */
    CHECK_OK(cellar_keyring_lock_with(kr, CELLAR_KEYRING_LOCK_FORCE));
    CHECK(locked(kr) == 1);
    CHECK(active(kr) == 3);
    uint8_t tmp[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t tlen = 0;
    CHECK_STATUS(cellar_keyring_wrap(kr, dk[0], tmp, sizeof tmp, &tlen), CELLAR_ERR_TENANT_LOCKED);
    CHECK_HAS_ERROR_TEXT();
    CHECK(cellar_last_operation_approved() == -1);
    CHECK_STATUS(unwrap_is(kr, re[0], rlen[0], dk[0], 3), CELLAR_ERR_TENANT_LOCKED);
    CHECK_STATUS(cellar_keyring_rewrap(kr, re[0], rlen[0], tmp, sizeof tmp, &tlen), CELLAR_ERR_TENANT_LOCKED);
    CHECK_STATUS(cellar_keyring_rotate(kr, NULL, &v), CELLAR_ERR_TENANT_LOCKED);
    CHECK_OK(cellar_keyring_version_info(kr, 3, vid, &flags));
    CHECK(flags == (CELLAR_KEYRING_VERSION_ACTIVE | CELLAR_KEYRING_VERSION_LOCKED));

    /* Unlock with a wrong key (refused), then with the right one. */
    cellar_key *wrong = gen(CELLAR_KEY_AES256);
    cellar_key *xts = gen(CELLAR_KEY_AES256_XTS);
    CHECK_STATUS(cellar_keyring_unlock(kr, wrong), CELLAR_ERR_KEY_NOT_FOUND);
    CHECK_STATUS(cellar_keyring_unlock(kr, xts), CELLAR_ERR_INVALID_KEY);
    CHECK(locked(kr) == 1);
    CHECK_OK(cellar_keyring_unlock(kr, customer));
    CHECK_APPROVED();
    CHECK(locked(kr) == 0);
    for (int i = 0; i < NKEYS; i++) CHECK_OK(unwrap_is(kr, re[i], rlen[i], dk[i], 3));
    CHECK_OK(cellar_keyring_wrap(kr, dk[0], tmp, sizeof tmp, &tlen));
    CHECK(tlen == rlen[0] && memcmp(tmp, re[0], tlen) == 0); /* AES-KWP is deterministic */

    /* Export with a password. Version 2 is still locked (its generated key was never given
     * back): the export records it by id and it comes back locked. */
    uint8_t exp[1024];
    size_t elen = 0;
    CHECK_OK(cellar_keyring_export(kr, NULL, (const uint8_t *)PW, PW_LEN, ITER, exp, sizeof exp, &elen));
    CHECK_APPROVED();
    CHECK(exp[0] == 0x4B && exp[1] == 0x02);

    /* Import into a fresh keyring, unwrap. */
    cellar_keyring *kr2 = NULL;
    CHECK_OK(cellar_keyring_import(exp, elen, NULL, (const uint8_t *)PW, PW_LEN, &kr2));
    CHECK_APPROVED();
    CHECK(active(kr2) == 3);
    for (int i = 0; i < NKEYS; i++) {
        CHECK_OK(unwrap_is(kr2, re[i], rlen[i], dk[i], 3));
        CHECK_STATUS(unwrap_is(kr2, blob[i], blen[i], dk[i], 1), CELLAR_ERR_KEY_NOT_FOUND);
    }
    CHECK_OK(cellar_keyring_versions(kr2, vers, ids, 4, &count));
    CHECK(count == 2 && vers[0] == 2 && vers[1] == 3 && memcmp(ids + 16, cid, 16) == 0);
    uint32_t flags2 = 0;
    uint8_t id2[16];
    CHECK_OK(cellar_keyring_version_info(kr2, 2, id2, &flags2));
    CHECK(flags2 == CELLAR_KEYRING_VERSION_LOCKED);

    /* A wrong password and a tampered export are refused. */
    cellar_keyring *bad = NULL;
    const char *wpw = "wrong horse battery staple";
    CHECK_STATUS(cellar_keyring_import(exp, elen, NULL, (const uint8_t *)wpw, strlen(wpw), &bad),
                 CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(bad == NULL);
    exp[elen - 3] ^= 0x10;
    CHECK_STATUS(cellar_keyring_import(exp, elen, NULL, (const uint8_t *)PW, PW_LEN, &bad),
                 CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(bad == NULL);

    /* Root-key export round trip, and a wrong root key. */
    cellar_key *root = gen(CELLAR_KEY_AES256);
    CHECK_OK(cellar_keyring_export(kr, root, NULL, 0, 0, exp, sizeof exp, &elen));
    CHECK_APPROVED();
    CHECK(exp[0] == 0x52);
    cellar_keyring *kr3 = NULL;
    CHECK_STATUS(cellar_keyring_import(exp, elen, wrong, NULL, 0, &kr3), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK_STATUS(cellar_keyring_import(exp, elen, NULL, (const uint8_t *)PW, PW_LEN, &kr3),
                 CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_OK(cellar_keyring_import(exp, elen, root, NULL, 0, &kr3));
    CHECK_APPROVED();
    CHECK_OK(unwrap_is(kr3, re[2], rlen[2], dk[2], 3));

    for (int i = 0; i < NKEYS; i++) cellar_key_free(dk[i]);
    cellar_key_free(customer);
    cellar_key_free(wrong);
    cellar_key_free(xts);
    cellar_key_free(root);
    cellar_keyring_free(kr);
    cellar_keyring_free(kr2);
    cellar_keyring_free(kr3);
}

static void provider(void) {
    test_hsm *h = calloc(1, sizeof *h);
    for (size_t i = 0; i < sizeof h->pad; i++) h->pad[i] = (uint8_t)(i * 37 + 11);
    cellar_key_provider p;
    memset(&p, 0, sizeof p);
    p.context = h;
    memset(p.key_id, 0xA5, sizeof p.key_id);
    p.wrap = hsm_wrap;
    p.unwrap = hsm_unwrap;

    cellar_key *k0 = gen(CELLAR_KEY_AES256);
    cellar_keyring *kr = NULL;
    CHECK_OK(cellar_keyring_new(k0, &kr));
    cellar_key *dk = gen(CELLAR_KEY_AES256_XTS);
    uint8_t b0[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t b0len = 0;
    CHECK_OK(cellar_keyring_wrap(kr, dk, b0, sizeof b0, &b0len));

    /* Failing or misbehaving callbacks: provider-failed, nothing added. */
    uint32_t v = 99;
    int modes[] = {-1, 1, 2, 3};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        h->fail = modes[m] == -1;
        h->mode = modes[m] == -1 ? 0 : modes[m];
        CHECK_STATUS(cellar_keyring_add_provider(kr, &p, &v), CELLAR_ERR_PROVIDER_FAILED);
        CHECK_HAS_ERROR_TEXT();
        CHECK(v == 99 && active(kr) == 1);
    }
    h->fail = 0;
    h->mode = 0;
    size_t count = 0;
    CHECK_STATUS(cellar_keyring_versions(kr, NULL, NULL, 0, &count), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(count == 1);

    CHECK_OK(cellar_keyring_add_provider(kr, &p, &v));
    CHECK(cellar_last_operation_approved() == 0); /* the provider wrapped the probe record */
    CHECK(v == 2 && active(kr) == 2);
    uint8_t id[16];
    uint32_t flags = 0;
    CHECK_OK(cellar_keyring_version_info(kr, 2, id, &flags));
    CHECK(flags == (CELLAR_KEYRING_VERSION_ACTIVE | CELLAR_KEYRING_VERSION_PROVIDER));
    CHECK(id[0] == 0xA5 && id[15] == 0xA5);
    CHECK_STATUS(cellar_keyring_add_provider(kr, &p, &v), CELLAR_ERR_INVALID_KEY); /* same id twice */

    uint8_t bp[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t bplen = 0;
    CHECK_OK(cellar_keyring_wrap(kr, dk, bp, sizeof bp, &bplen));
    CHECK(cellar_last_operation_approved() == 0); /* provider-performed wrap: succeeded, not approved */
    CHECK(bplen == 18 + 1 + 85 + 4 && bp[0] == 0x57 && bp[2] == 0xA5 && bp[18] == 0xC5);
    CHECK_OK(unwrap_is(kr, bp, bplen, dk, 2));
    uint8_t r[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t rlen = 0;
    /* Short buffer: the size is reported. */
    CHECK_STATUS(cellar_keyring_rewrap(kr, b0, b0len, r, 10, &rlen), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(rlen == bplen);
    CHECK_OK(cellar_keyring_rewrap(kr, b0, b0len, r, sizeof r, &rlen));
    CHECK(cellar_last_operation_approved() == 0);
    CHECK(rlen == bplen && memcmp(r, bp, bplen) == 0);
    /* A module-backed version still reports 1: unwrap b0 (version 1, local). */
    {
        cellar_key *back = NULL;
        uint32_t bv = 0;
        CHECK_OK(cellar_keyring_unwrap(kr, b0, b0len, &back, &bv));
        CHECK_APPROVED();
        cellar_key_free(back);
    }
    /* A callback that never returns (longjmp out of it): the next call starts clean. Run in a
     * child process: the skipped clean-up leaks by design, and the child leaves with _exit. */
    fflush(NULL);
    /* The child reports through a pipe, not its exit status: under valgrind the leak it makes
     * on purpose turns any exit status into --error-exitcode. */
    int res[2];
    CHECK(pipe(res) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(res[0]);
        volatile int jumped = 0;
        size_t jl = 0;
        int before = cellar_last_operation_approved(); /* 1: the unwrap above */
        if (setjmp(escape) == 0) {
            escape_armed = 1;
            (void)cellar_keyring_wrap(kr, dk, r, sizeof r, &jl);
            CHECK(0 && "the callback should not have returned");
        } else {
            jumped = 1;
        }
        /* Right after the longjmp the abandoned wrap shows -1 (it set -1 when it started), not
         * the earlier 1. Without the other fix the abandoned operation's depth swallows every
         * later result: a failure would not show -1 and the indicator would stay at 1. */
        cellar_key *g = NULL;
        int ok = jumped && before == 1 && cellar_last_operation_approved() == -1;
        ok = ok && cellar_key_generate(99, &g) == CELLAR_ERR_INVALID_ARGUMENT && cellar_last_operation_approved() == -1;
        ok = ok && cellar_key_generate(CELLAR_KEY_AES256, &g) == CELLAR_OK && cellar_last_operation_approved() == 1;
        ok = ok && cellar_key_import(CELLAR_KEY_AES256, NULL, 0, &g) != CELLAR_OK && cellar_last_operation_approved() == -1;
        char verdict = ok ? 'y' : 'n';
        if (write(res[1], &verdict, 1) != 1) _exit(2);
        _exit(ok ? 0 : 1);
    }
    {
        close(res[1]);
        char verdict = 0;
        CHECK(read(res[0], &verdict, 1) == 1 && verdict == 'y');
        close(res[0]);
        int status = -1;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
    }

    /* A failing callback: provider-failed, nothing changed. */
    h->fail = 1;
    int calls = h->calls;
    size_t keep = 1234;
    CHECK_STATUS(cellar_keyring_wrap(kr, dk, r, sizeof r, &keep), CELLAR_ERR_PROVIDER_FAILED);
    CHECK(keep == 1234);
    CHECK_STATUS(unwrap_is(kr, bp, bplen, dk, 2), CELLAR_ERR_PROVIDER_FAILED);
    CHECK_STATUS(cellar_keyring_rewrap(kr, b0, b0len, r, sizeof r, &keep), CELLAR_ERR_PROVIDER_FAILED);
    CHECK(h->calls > calls);
    CHECK(active(kr) == 2 && locked(kr) == 0);
    h->fail = 0;
    CHECK_OK(unwrap_is(kr, bp, bplen, dk, 2));
    /* Tampered provider blob: the provider rejects it, reported as authentication failure. */
    bp[bplen - 1] ^= 1;
    CHECK_STATUS(unwrap_is(kr, bp, bplen, dk, 2), CELLAR_ERR_AUTHENTICATION_FAILED);
    bp[bplen - 1] ^= 1;
    /* A provider that returns a corrupted record: Cellar's own key-id check catches it. */
    h->mode = 3;
    CHECK_STATUS(unwrap_is(kr, bp, bplen, dk, 2), CELLAR_ERR_AUTHENTICATION_FAILED);
    h->mode = 0;

    /* Lock drops the provider; the locked keyring calls no callback. */
    CHECK_OK(cellar_keyring_lock(kr));
    calls = h->calls;
    CHECK_STATUS(unwrap_is(kr, bp, bplen, dk, 2), CELLAR_ERR_TENANT_LOCKED);
    CHECK_STATUS(cellar_keyring_wrap(kr, dk, r, sizeof r, &rlen), CELLAR_ERR_TENANT_LOCKED);
    CHECK(h->calls == calls);
    CHECK_STATUS(cellar_keyring_unlock(kr, k0), CELLAR_OK);
    CHECK(locked(kr) == 1);
    cellar_key *kp = NULL;
    CHECK_STATUS(cellar_keyring_add_provider(kr, &p, &v), CELLAR_ERR_TENANT_LOCKED);
    /* unlock with a plain key whose id is the provider's is impossible; unlock_provider works. */
    CHECK_OK(cellar_keyring_unlock_provider(kr, &p, &v));
    CHECK(cellar_last_operation_approved() == 0); /* the provider was probed */
    CHECK(v == 2 && locked(kr) == 0);
    CHECK_OK(unwrap_is(kr, bp, bplen, dk, 2));

    /* Export keeps a provider reference only; import brings it back detached. */
    cellar_key *root = gen(CELLAR_KEY_AES256);
    uint8_t exp[512];
    size_t elen = 0;
    CHECK_OK(cellar_keyring_export(kr, root, NULL, 0, 0, exp, sizeof exp, &elen));
    cellar_keyring *kr2 = NULL;
    CHECK_OK(cellar_keyring_import(exp, elen, root, NULL, 0, &kr2));
    CHECK(locked(kr2) == 1);
    CHECK_OK(cellar_keyring_version_info(kr2, 2, id, &flags));
    CHECK(flags == (CELLAR_KEYRING_VERSION_ACTIVE | CELLAR_KEYRING_VERSION_PROVIDER | CELLAR_KEYRING_VERSION_LOCKED));
    CHECK_STATUS(unwrap_is(kr2, bp, bplen, dk, 2), CELLAR_ERR_TENANT_LOCKED);
    CHECK_OK(cellar_keyring_unlock_provider(kr2, &p, &v));
    CHECK_OK(unwrap_is(kr2, bp, bplen, dk, 2));
    CHECK_OK(unwrap_is(kr2, b0, b0len, dk, 1));
    /* unlock_provider with an unknown id, or a local version's id. */
    cellar_key_provider q = p;
    memset(q.key_id, 0x11, 16);
    CHECK_STATUS(cellar_keyring_unlock_provider(kr2, &q, &v), CELLAR_ERR_KEY_NOT_FOUND);
    CHECK_OK(cellar_key_id(k0, q.key_id));
    CHECK_STATUS(cellar_keyring_unlock_provider(kr2, &q, &v), CELLAR_ERR_INVALID_ARGUMENT);

    (void)kp;
    cellar_keyring_free(kr2);
    cellar_keyring_free(kr);
    cellar_key_free(root);
    cellar_key_free(dk);
    cellar_key_free(k0);
    free(h); /* only after every keyring that had it is freed */
}

static void bad_inputs(void) {
    cellar_keyring *kr = NULL;
    CHECK_OK(cellar_keyring_new(NULL, &kr));
    cellar_key *k = gen(CELLAR_KEY_AES256);
    cellar_key *x = gen(CELLAR_KEY_AES256_XTS);
    const cellar_keyring *kr_as_wrong = (const cellar_keyring *)k; /* wrong-kind handles */
    const cellar_key *key_as_wrong = (const cellar_key *)kr;
    uint32_t v = 77;
    int32_t l = 77;
    size_t n = 77;
    uint8_t buf[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    uint8_t id[16];
    uint32_t flags = 0;
    cellar_key *ok = NULL;
    cellar_keyring *okr = NULL;

    /* new */
    CHECK_STATUS(cellar_keyring_new(NULL, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_new(x, &okr), CELLAR_ERR_INVALID_KEY);
    CHECK_STATUS(cellar_keyring_new(key_as_wrong, &okr), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(okr == NULL);
    /* active_version, is_locked */
    CHECK_STATUS(cellar_keyring_active_version(NULL, &v), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_active_version(kr, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_active_version(kr_as_wrong, &v), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_is_locked(NULL, &l), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_is_locked(kr, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_is_locked(kr_as_wrong, &l), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(v == 77 && l == 77);
    /* versions */
    uint32_t vs[2];
    CHECK_STATUS(cellar_keyring_versions(NULL, vs, buf, 2, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_versions(kr, vs, buf, 2, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_versions(kr, NULL, buf, 2, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_versions(kr, vs, NULL, 2, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_versions(kr_as_wrong, vs, buf, 2, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(n == 77);
    CHECK_STATUS(cellar_keyring_versions(kr, NULL, NULL, 0, &n), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 1);
    /* version_info: out-of-range versions */
    CHECK_STATUS(cellar_keyring_version_info(NULL, 1, id, &flags), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_version_info(kr, 1, NULL, &flags), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_version_info(kr, 1, id, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_version_info(kr_as_wrong, 1, id, &flags), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_version_info(kr, 0, id, &flags), CELLAR_ERR_KEY_NOT_FOUND);
    CHECK_STATUS(cellar_keyring_version_info(kr, 0xFFFFFFFFu, id, &flags), CELLAR_ERR_KEY_NOT_FOUND);
    /* rotate */
    CHECK_STATUS(cellar_keyring_rotate(NULL, NULL, &v), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_rotate(kr, NULL, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_rotate((cellar_keyring *)kr_as_wrong, NULL, &v), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_rotate(kr, x, &v), CELLAR_ERR_INVALID_KEY);
    CHECK_STATUS(cellar_keyring_rotate(kr, key_as_wrong, &v), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(v == 77 && active(kr) == 1);
    /* wrap */
    CHECK_STATUS(cellar_keyring_wrap(NULL, k, buf, sizeof buf, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_wrap(kr, NULL, buf, sizeof buf, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_wrap(kr, k, buf, sizeof buf, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_wrap(kr, k, NULL, sizeof buf, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_wrap(kr_as_wrong, k, buf, sizeof buf, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_wrap(kr, key_as_wrong, buf, sizeof buf, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_wrap(kr, x, buf, 113, &n), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 114);
    CHECK_STATUS(cellar_keyring_wrap(kr, k, NULL, 0, &n), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 82);
    size_t blen = 0;
    CHECK_OK(cellar_keyring_wrap(kr, k, buf, sizeof buf, &blen));
    CHECK(blen == 82);
    /* unwrap */
    CHECK_STATUS(cellar_keyring_unwrap(NULL, buf, blen, &ok, &v), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_unwrap(kr, NULL, blen, &ok, &v), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_unwrap(kr, buf, blen, NULL, &v), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_unwrap(kr, buf, blen, &ok, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_unwrap(kr_as_wrong, buf, blen, &ok, &v), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_unwrap(kr, NULL, 0, &ok, &v), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK_STATUS(cellar_keyring_unwrap(kr, buf, blen - 1, &ok, &v), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK_STATUS(cellar_keyring_unwrap(kr, buf, 18, &ok, &v), CELLAR_ERR_AUTHENTICATION_FAILED);
    buf[5] ^= 1; /* the KEK id: no such version */
    CHECK_STATUS(cellar_keyring_unwrap(kr, buf, blen, &ok, &v), CELLAR_ERR_KEY_NOT_FOUND);
    buf[5] ^= 1;
    for (size_t i = 18; i < blen; i += 7) {
        buf[i] ^= 0x40;
        CHECK_STATUS(cellar_keyring_unwrap(kr, buf, blen, &ok, &v), CELLAR_ERR_AUTHENTICATION_FAILED);
        buf[i] ^= 0x40;
    }
    CHECK(ok == NULL && v == 77);
    /* rewrap */
    uint8_t out[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    CHECK_STATUS(cellar_keyring_rewrap(NULL, buf, blen, out, sizeof out, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_rewrap(kr, NULL, blen, out, sizeof out, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_rewrap(kr, buf, blen, NULL, sizeof out, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_rewrap(kr, buf, blen, out, sizeof out, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_rewrap(kr_as_wrong, buf, blen, out, sizeof out, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_rewrap(kr, buf, 0, out, sizeof out, &n), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK_STATUS(cellar_keyring_rewrap(kr, buf, blen, out, 81, &n), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 82);
    /* retire: out-of-range, active */
    CHECK_STATUS(cellar_keyring_retire(NULL, 1), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_retire((cellar_keyring *)kr_as_wrong, 1), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_retire(kr, 1), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_retire(kr, 0), CELLAR_ERR_KEY_NOT_FOUND);
    CHECK_STATUS(cellar_keyring_retire(kr, 0xFFFFFFFFu), CELLAR_ERR_KEY_NOT_FOUND);
    /* lock, unlock */
    CHECK_STATUS(cellar_keyring_lock(NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_lock((cellar_keyring *)kr_as_wrong), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK(locked(kr) == 0);
    CHECK_STATUS(cellar_keyring_unlock(NULL, k), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_unlock(kr, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_unlock((cellar_keyring *)kr_as_wrong, k), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_unlock(kr, key_as_wrong), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_unlock(kr, x), CELLAR_ERR_INVALID_KEY);
    CHECK_STATUS(cellar_keyring_unlock(kr, k), CELLAR_ERR_KEY_NOT_FOUND);
    /* providers */
    test_hsm h;
    memset(&h, 0, sizeof h);
    cellar_key_provider p;
    memset(&p, 0, sizeof p);
    p.context = &h;
    p.wrap = hsm_wrap;
    p.unwrap = hsm_unwrap;
    CHECK_STATUS(cellar_keyring_add_provider(NULL, &p, &v), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_add_provider(kr, NULL, &v), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_add_provider(kr, &p, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_add_provider((cellar_keyring *)kr_as_wrong, &p, &v), CELLAR_ERR_INVALID_ARGUMENT);
    p.wrap = NULL;
    CHECK_STATUS(cellar_keyring_add_provider(kr, &p, &v), CELLAR_ERR_NULL_POINTER);
    p.wrap = hsm_wrap;
    p.unwrap = NULL;
    CHECK_STATUS(cellar_keyring_add_provider(kr, &p, &v), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_unlock_provider(kr, &p, &v), CELLAR_ERR_NULL_POINTER);
    p.unwrap = hsm_unwrap;
    CHECK_STATUS(cellar_keyring_unlock_provider(NULL, &p, &v), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_unlock_provider(kr, NULL, &v), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_unlock_provider(kr, &p, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_unlock_provider((cellar_keyring *)kr_as_wrong, &p, &v), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_unlock_provider(kr, &p, &v), CELLAR_ERR_KEY_NOT_FOUND);
    CHECK(v == 77 && h.calls == 0 && active(kr) == 1);
    /* export */
    uint8_t e[512];
    const uint8_t *pw = (const uint8_t *)PW;
    CHECK_STATUS(cellar_keyring_export(NULL, k, NULL, 0, 0, e, sizeof e, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_export(kr, k, NULL, 0, 0, e, sizeof e, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_export(kr, k, NULL, 0, 0, NULL, sizeof e, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_export(kr, NULL, NULL, PW_LEN, ITER, e, sizeof e, &n), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_export(kr_as_wrong, k, NULL, 0, 0, e, sizeof e, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_export(kr, key_as_wrong, NULL, 0, 0, e, sizeof e, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_export(kr, NULL, NULL, 0, 0, e, sizeof e, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_export(kr, k, pw, PW_LEN, ITER, e, sizeof e, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_export(kr, NULL, pw, 13, ITER, e, sizeof e, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_export(kr, NULL, pw, PW_LEN, 999, e, sizeof e, &n), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_export(kr, NULL, pw, PW_LEN, 0xFFFFFFFFu, e, sizeof e, &n),
                 CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_export(kr, x, NULL, 0, 0, e, sizeof e, &n), CELLAR_ERR_INVALID_KEY);
    /* Size query: root form 18 + KWP(18 + 54) = 98; password form 22 + 80 = 102. */
    CHECK_STATUS(cellar_keyring_export(kr, k, NULL, 0, 0, NULL, 0, &n), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 98);
    CHECK_STATUS(cellar_keyring_export(kr, NULL, pw, PW_LEN, ITER, e, 101, &n), CELLAR_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 102);
    size_t elen = 0;
    CHECK_OK(cellar_keyring_export(kr, k, NULL, 0, 0, e, sizeof e, &elen));
    CHECK(elen == 98);
    /* import */
    CHECK_STATUS(cellar_keyring_import(e, elen, k, NULL, 0, NULL), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_import(NULL, elen, k, NULL, 0, &okr), CELLAR_ERR_NULL_POINTER);
    CHECK_STATUS(cellar_keyring_import(e, elen, NULL, NULL, 0, &okr), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_import(e, elen, k, pw, PW_LEN, &okr), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_import(e, elen, key_as_wrong, NULL, 0, &okr), CELLAR_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cellar_keyring_import(e, elen, x, NULL, 0, &okr), CELLAR_ERR_INVALID_KEY);
    CHECK_STATUS(cellar_keyring_import(NULL, 0, k, NULL, 0, &okr), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK_STATUS(cellar_keyring_import(e, elen - 8, k, NULL, 0, &okr), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK_STATUS(cellar_keyring_import(e, elen, NULL, pw, 13, &okr), CELLAR_ERR_INVALID_ARGUMENT);
    e[40] ^= 4;
    CHECK_STATUS(cellar_keyring_import(e, elen, k, NULL, 0, &okr), CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(okr == NULL);
    /* free: NULL and a wrong-kind handle are ignored */
    cellar_keyring_free(NULL);
    cellar_keyring_free((cellar_keyring *)k);
    CHECK(same_key(k, k)); /* k is still a live key */

    cellar_key_free(k);
    cellar_key_free(x);
    cellar_keyring_free(kr);
}

static uint64_t generation(const cellar_keyring *kr) {
    uint64_t g = 0;
    CHECK_OK(cellar_keyring_generation(kr, &g));
    return g;
}

/* Finding 3 of the security review: an export taken before retire must not be importable past
 * it once the host supplies the generation it last saw. */
static void rollback(void) {
    cellar_key *root = gen(CELLAR_KEY_AES256);
    cellar_key *dk = gen(CELLAR_KEY_AES256);
    cellar_keyring *kr = NULL;
    CHECK_OK(cellar_keyring_new(NULL, &kr));
    int ind = cellar_last_operation_approved();
    CHECK(generation(kr) == 1);
    CHECK(cellar_last_operation_approved() == ind); /* no cryptography: indicator unchanged */
    uint8_t blob[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t blen = 0;
    CHECK_OK(cellar_keyring_wrap(kr, dk, blob, sizeof blob, &blen));
    uint32_t v = 0;
    CHECK_OK(cellar_keyring_rotate(kr, NULL, &v));
    CHECK(generation(kr) == 2);
    uint8_t before[512], before_pw[512], after[512];
    size_t bl = 0, bpl = 0, al = 0;
    CHECK_OK(cellar_keyring_export(kr, root, NULL, 0, 0, before, sizeof before, &bl));
    CHECK_OK(cellar_keyring_export(kr, NULL, (const uint8_t *)PW, PW_LEN, ITER, before_pw, sizeof before_pw, &bpl));
    CHECK_OK(cellar_keyring_retire(kr, 1));
    CHECK_OK(cellar_keyring_retire(kr, 1)); /* already retired: no change */
    CHECK_OK(cellar_keyring_lock(kr));
    uint64_t seen = generation(kr); /* known while locked; lock does not advance it */
    CHECK(seen == 3);
    cellar_keyring_free(kr);

    /* The stale export imports without a minimum (and brings version 1 back: the attack)... */
    cellar_keyring *stale = NULL;
    CHECK_OK(cellar_keyring_import(before, bl, root, NULL, 0, &stale));
    CHECK(generation(stale) == 2);
    CHECK_OK(unwrap_is(stale, blob, blen, dk, 1));
    /* ...and is refused with the generation the host last saw, under both seals. */
    cellar_keyring *r = NULL;
    CHECK_STATUS(cellar_keyring_import_min_generation(before, bl, root, NULL, 0, seen, &r),
                 CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(cellar_last_operation_approved() == -1);
    char msg[256];
    cellar_last_error(msg, sizeof msg);
    CHECK(strstr(msg, "rollback") != NULL);
    CHECK(r == NULL);
    CHECK_STATUS(cellar_keyring_import_min_generation(before_pw, bpl, NULL, (const uint8_t *)PW, PW_LEN, seen, &r),
                 CELLAR_ERR_AUTHENTICATION_FAILED);
    CHECK(r == NULL);
    /* With its own generation as the minimum it imports. */
    CHECK_OK(cellar_keyring_import_min_generation(before, bl, root, NULL, 0, 2, &r));
    CHECK_APPROVED();
    cellar_keyring_free(r);
    r = NULL;

    /* The current state, re-exported from the stale one after retiring again, imports. */
    CHECK_OK(cellar_keyring_retire(stale, 1));
    CHECK(generation(stale) == seen);
    CHECK_OK(cellar_keyring_export(stale, root, NULL, 0, 0, after, sizeof after, &al));
    CHECK(after[0] == 0x52 && after[1] == 0x02);
    CHECK_OK(cellar_keyring_import_min_generation(after, al, root, NULL, 0, seen, &r));
    CHECK_APPROVED();
    CHECK(generation(r) == seen);
    CHECK_STATUS(unwrap_is(r, blob, blen, dk, 1), CELLAR_ERR_KEY_NOT_FOUND);
    cellar_keyring_free(r);
    cellar_keyring_free(stale);
    cellar_key_free(dk);
    cellar_key_free(root);
}

int main(void) {
    lifecycle();
    provider();
    bad_inputs();
    rollback();
    CHECK_SUMMARY();
}
