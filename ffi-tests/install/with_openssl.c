/* libcellar.a and OpenSSL's libcrypto in one program (`make test-install`): the static archive
 * defines only cellar_ symbols, so nothing of AWS-LC, Rust's std or compiler-builtins can clash
 * with or interpose on OpenSSL. Cellar seals a RANDOMIZED cell; OpenSSL opens it from the
 * documented format (docs/FORMATS.md: 0x01 | key_version BE | nonce | ct | tag, AAD =
 * ct[0..5] | context) and computes a SHA-256 known answer; both libraries work side by side. */
#include <cellar.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    static const uint8_t k[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    static const char ctx[] = "tenant/table/column", pt[] = "a value for both libraries";
    cellar_key *key = NULL;
    cellar_cell_cipher *c = NULL;
    uint8_t ct[128], back[128], aad[5 + sizeof ctx - 1], md[32];
    size_t ctl = 0;
    int n = 0, m = 0, ok = 0;
    unsigned mdl = 0;
    if (cellar_key_import(CELLAR_KEY_AES256, k, sizeof k, &key) != CELLAR_OK ||
        cellar_cell_cipher_new(key, CELLAR_CELL_RANDOMIZED, 7, &c) != CELLAR_OK ||
        cellar_cell_encrypt(c, (const uint8_t *)ctx, sizeof ctx - 1, (const uint8_t *)pt, sizeof pt - 1, ct, sizeof ct,
                            &ctl) != CELLAR_OK ||
        ctl != sizeof pt - 1 + 33)
        goto done;
    memcpy(aad, ct, 5);
    memcpy(aad + 5, ctx, sizeof ctx - 1);
    EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new();
    ok = e && EVP_DecryptInit_ex(e, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
         EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
         EVP_DecryptInit_ex(e, NULL, NULL, k, ct + 5) == 1 && EVP_DecryptUpdate(e, NULL, &n, aad, sizeof aad) == 1 &&
         EVP_DecryptUpdate(e, back, &n, ct + 17, (int)(ctl - 33)) == 1 &&
         EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_GCM_SET_TAG, 16, ct + ctl - 16) == 1 && EVP_DecryptFinal_ex(e, back + n, &m) == 1 &&
         (size_t)(n + m) == sizeof pt - 1 && memcmp(back, pt, sizeof pt - 1) == 0;
    EVP_CIPHER_CTX_free(e);
    /* SHA-256("abc"), FIPS 180-2 appendix B.1. */
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                    0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                    0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    ok = ok && EVP_Digest("abc", 3, md, &mdl, EVP_sha256(), NULL) == 1 && mdl == 32 && memcmp(md, abc, 32) == 0;
    ok = ok && cellar_fips_mode() == 1 && cellar_fips_self_test_passed() == 1;
done:
    printf("libcellar.a + %s: %s\n", OpenSSL_version(0), ok ? "ok" : "FAILED");
    cellar_cell_cipher_free(c);
    cellar_key_free(key);
    return ok ? 0 : 1;
}
