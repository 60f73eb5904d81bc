/* A lock that locks (issue 20, item 4), over the C API: page and cell ciphers made from data
 * keys unwrapped before the lock refuse with CELLAR_ERR_TENANT_LOCKED while the keyring is
 * locked (also from another thread), and work again after unlock; a lock with no way back
 * needs CELLAR_KEYRING_LOCK_FORCE. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include "check.h"

static cellar_cell_cipher *cells;

static void *encrypt_on_thread(void *arg) {
    uint8_t ct[64];
    size_t n = 0;
    *(cellar_status *)arg = cellar_cell_encrypt(cells, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &n);
    return NULL;
}

int main(void) {
    cellar_key *tenant = NULL, *dk = NULL, *pk = NULL, *ck = NULL;
    cellar_keyring *kr = NULL;
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &tenant));
    CHECK_OK(cellar_keyring_new(tenant, &kr));
    CHECK_OK(cellar_key_generate(CELLAR_KEY_AES256, &dk));
    uint8_t blob[CELLAR_KEYRING_MAX_WRAPPED_LEN];
    size_t blen = 0;
    uint32_t tv = 0;
    CHECK_OK(cellar_keyring_wrap(kr, dk, blob, sizeof blob, &blen));
    CHECK_OK(cellar_keyring_unwrap(kr, blob, blen, &pk, &tv));
    CHECK_OK(cellar_keyring_unwrap(kr, blob, blen, &ck, &tv));
    cellar_page_cipher *pages = NULL;
    CHECK_OK(cellar_page_cipher_new(pk, CELLAR_PAGE_GCM, 1, 1, 0, &pages));
    CHECK_OK(cellar_cell_cipher_new(ck, CELLAR_CELL_RANDOMIZED, 1, &cells));
    uint8_t page[4096], out[4096], ct[64], pt[64];
    memset(page, 3, sizeof page);
    CHECK_OK(cellar_page_encrypt(pages, 5, page, page, sizeof page));
    size_t ctl = 0, ptl = 0;
    CHECK_OK(cellar_cell_encrypt(cells, NULL, 0, (const uint8_t *)"alice", 5, ct, sizeof ct, &ctl));
    int32_t l = -1;
    CHECK_OK(cellar_key_is_locked(ck, &l));
    CHECK(l == 0);

    CHECK_OK(cellar_keyring_lock(kr));
    CHECK_OK(cellar_key_is_locked(ck, &l));
    CHECK(l == 1);
    CHECK_OK(cellar_key_is_locked(dk, &l));
    CHECK(l == 0); /* the caller's own copy never came from the keyring */
    memset(out, 0xA5, sizeof out);
    CHECK_STATUS(cellar_page_decrypt(pages, 5, page, out, sizeof page), CELLAR_ERR_TENANT_LOCKED);
    CHECK(out[0] == 0 && out[4095] == 0);
    CHECK_STATUS(cellar_cell_decrypt(cells, NULL, 0, ct, ctl, pt, sizeof pt, &ptl), CELLAR_ERR_TENANT_LOCKED);
    CHECK_STATUS(cellar_cell_encrypt(cells, NULL, 0, (const uint8_t *)"x", 1, pt, sizeof pt, &ptl),
                 CELLAR_ERR_TENANT_LOCKED);
    cellar_status other = CELLAR_OK;
    pthread_t t;
    pthread_create(&t, NULL, encrypt_on_thread, &other);
    pthread_join(t, NULL);
    CHECK(other == CELLAR_ERR_TENANT_LOCKED);
    uint8_t raw[64];
    size_t rl = 0;
    CHECK_STATUS(cellar_key_dangerous_export_raw(ck, raw, sizeof raw, &rl), CELLAR_ERR_TENANT_LOCKED);
    cellar_cell_cipher *again = NULL;
    CHECK_STATUS(cellar_cell_cipher_new(ck, CELLAR_CELL_RANDOMIZED, 1, &again), CELLAR_ERR_TENANT_LOCKED);

    CHECK_OK(cellar_keyring_unlock(kr, tenant));
    CHECK_OK(cellar_page_decrypt(pages, 5, page, out, sizeof page));
    CHECK(out[0] == 3);
    CHECK_OK(cellar_cell_decrypt(cells, NULL, 0, ct, ctl, pt, sizeof pt, &ptl));
    CHECK(ptl == 5 && memcmp(pt, "alice", 5) == 0);
    pthread_create(&t, NULL, encrypt_on_thread, &other);
    pthread_join(t, NULL);
    CHECK(other == CELLAR_OK);

    /* service-generated, never exported: refused unless forced */
    cellar_keyring *gen = NULL;
    CHECK_OK(cellar_keyring_new(NULL, &gen));
    CHECK_STATUS(cellar_keyring_lock(gen), CELLAR_ERR_INVALID_ARGUMENT);
    char err[300];
    cellar_last_error(err, sizeof err);
    CHECK(strstr(err, "export the keyring first") != NULL);
    CHECK_OK(cellar_keyring_lock_with(gen, CELLAR_KEYRING_LOCK_FORCE));
    cellar_keyring_free(gen);

    cellar_page_cipher_free(pages);
    cellar_cell_cipher_free(cells);
    cellar_keyring_free(kr);
    cellar_key_free(tenant);
    cellar_key_free(dk);
    cellar_key_free(pk);
    cellar_key_free(ck);
    CHECK_SUMMARY();
}
