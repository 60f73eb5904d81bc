/* Built by `make test-install` against the installed libcellar.a only (fully static with
 * `pkg-config --static`, and through CMake's Cellar::cellar_static): the FIPS module must come
 * up in FIPS mode with its self tests passing in a static link. AWS-LC's power-on integrity
 * check runs before main() and aborts the process if the module's text does not hash to the
 * value recorded at build time (the test also flips one byte of that text to see it abort). */
#include <cellar.h>
#include <stdio.h>

int main(void) {
    cellar_status st = cellar_init(CELLAR_INIT_REQUIRE_FIPS);
    int fips = cellar_fips_mode(), self_tests = cellar_fips_self_test_passed();
    cellar_key *key = NULL;
    int ok = st == CELLAR_OK && fips == 1 && self_tests == 1 && cellar_abi_version() == CELLAR_ABI_VERSION &&
             cellar_key_generate(CELLAR_KEY_AES256, &key) == CELLAR_OK && cellar_last_operation_approved() == 1;
    printf("static %s: init %s, FIPS mode %d, self tests passed %d: %s\n", cellar_version(), cellar_status_name(st), fips,
           self_tests, ok ? "ok" : "FAILED");
    cellar_key_free(key);
    return ok ? 0 : 1;
}
