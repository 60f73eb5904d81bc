/* Built by `make test-install` against an installed Cellar, found only through
 * `pkg-config --cflags --libs cellar`: a host project's first program. */
#include <cellar.h>
#include <stdio.h>

int main(void) {
    cellar_key *kek = NULL, *key = NULL, *back = NULL;
    unsigned char blob[128];
    size_t len = 0;
    uint32_t version = 0;
    int ok = cellar_abi_version() == CELLAR_ABI_VERSION && cellar_init(CELLAR_INIT_REQUIRE_FIPS) == CELLAR_OK &&
             cellar_key_generate(CELLAR_KEY_AES256, &kek) == CELLAR_OK &&
             cellar_key_generate(CELLAR_KEY_AES256_XTS, &key) == CELLAR_OK &&
             cellar_key_wrap(kek, key, 2, blob, sizeof blob, &len) == CELLAR_OK &&
             cellar_key_unwrap(kek, blob, len, &back, &version) == CELLAR_OK && version == 2 &&
             cellar_last_operation_approved() == 1;
    printf("installed %s: %s\n", cellar_version(), ok ? "ok" : "FAILED");
    cellar_key_free(back);
    cellar_key_free(key);
    cellar_key_free(kek);
    return ok ? 0 : 1;
}
