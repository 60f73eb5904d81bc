/* Cellar demo host: links libcellar.so, reports the FIPS module, then walks the key life cycle
 * (generate a tenant key and a data key, wrap, unwrap, export with a password and re-import) and
 * shows, for each operation, whether the module counted it as approved. Exits non-zero on any
 * failure. Run with `make demo`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cellar.h"

static int failed = 0;

static const char *approval(void) {
    switch (cellar_last_operation_approved()) {
    case 1: return "approved";
    case 0: return "NOT approved";
    default: return "unknown";
    }
}

/* Reports one operation: its status, the module's approval, and fails the demo on either. */
static int step(const char *what, cellar_status st) {
    if (st != CELLAR_OK) {
        char err[256];
        cellar_last_error(err, sizeof err);
        printf("  %-34s FAILED: %s (%s)\n", what, cellar_status_name(st), err);
        failed = 1;
        return 0;
    }
    int ok = cellar_last_operation_approved() == 1;
    printf("  %-34s ok, %s\n", what, approval());
    if (!ok) failed = 1;
    return ok;
}

static void print_id(const char *name, const cellar_key *key) {
    uint8_t id[CELLAR_KEY_ID_LEN];
    if (cellar_key_id(key, id) != CELLAR_OK) {
        failed = 1;
        return;
    }
    printf("  %-34s ", name);
    for (int i = 0; i < CELLAR_KEY_ID_LEN; i++) printf("%02x", id[i]);
    printf("\n");
}

static int same_id(const cellar_key *a, const cellar_key *b) {
    uint8_t x[CELLAR_KEY_ID_LEN], y[CELLAR_KEY_ID_LEN];
    return cellar_key_id(a, x) == CELLAR_OK && cellar_key_id(b, y) == CELLAR_OK &&
           memcmp(x, y, sizeof x) == 0;
}

int main(void) {
    printf("Cellar demo\n");
    printf("  library                            %s\n", cellar_version());
    printf("  ABI version                        %u.%u (header %u.%u)\n", cellar_abi_version() >> 16,
           cellar_abi_version() & 0xFFFF, CELLAR_ABI_VERSION >> 16, CELLAR_ABI_VERSION & 0xFFFF);
    printf("  module                             %s\n", cellar_fips_module_version());
    printf("  FIPS mode                          %s\n", cellar_fips_mode() == 1 ? "yes" : "NO");
    printf("  self tests                         %s\n", cellar_fips_self_test_passed() == 1 ? "passed" : "FAILED");
    if (cellar_abi_version() >> 16 != CELLAR_ABI_VERSION >> 16) {
        printf("ABI major mismatch between header and library\n");
        return 1;
    }
    cellar_status st = cellar_init(CELLAR_INIT_REQUIRE_FIPS);
    if (st != CELLAR_OK) {
        printf("cellar_init(REQUIRE_FIPS) failed: %s\n", cellar_status_name(st));
        return 1;
    }

    printf("\nKeys\n");
    cellar_key *tenant = NULL, *data = NULL, *column = NULL, *unwrapped = NULL, *imported = NULL;
    uint8_t blob[256], file[256];
    size_t blob_len = 0, file_len = 0;
    uint32_t version = 0;
    const char *password = "correct horse battery staple";

    if (step("generate tenant key (AES-256)", cellar_key_generate(CELLAR_KEY_AES256, &tenant)))
        print_id("tenant key id", tenant);
    if (step("generate data key (AES-256-XTS)", cellar_key_generate(CELLAR_KEY_AES256_XTS, &data)))
        print_id("data key id", data);
    if (failed) goto out;
    if (step("derive column key (SP 800-108)",
             cellar_key_derive(tenant, CELLAR_KEY_AES256, (const uint8_t *)"orders.email", 12, &column)))
        print_id("column key id", column);

    if (step("wrap data key under tenant key", cellar_key_wrap(tenant, data, 1, blob, sizeof blob, &blob_len)))
        printf("  %-34s %zu bytes\n", "wrapped blob", blob_len);
    if (step("unwrap data key", cellar_key_unwrap(tenant, blob, blob_len, &unwrapped, &version))) {
        print_id("unwrapped key id", unwrapped);
        printf("  %-34s %u, %s\n", "key version; same key", version,
               same_id(data, unwrapped) ? "yes" : "NO");
        if (version != 1 || !same_id(data, unwrapped)) failed = 1;
    }

    blob[blob_len - 1] ^= 1;
    cellar_key *none = NULL;
    st = cellar_key_unwrap(tenant, blob, blob_len, &none, &version);
    printf("  %-34s %s\n", "unwrap of a tampered blob", cellar_status_name(st));
    if (st != CELLAR_ERR_AUTHENTICATION_FAILED || none != NULL) failed = 1;

    printf("  (password export: PBKDF2-HMAC-SHA256, %u iterations)\n", CELLAR_PASSWORD_DEFAULT_ITERATIONS);
    if (step("export tenant key with password",
             cellar_key_export_password(tenant, 7, (const uint8_t *)password, strlen(password),
                                        CELLAR_PASSWORD_DEFAULT_ITERATIONS, file, sizeof file, &file_len)))
        printf("  %-34s %zu bytes\n", "password file", file_len);
    if (step("re-import with password",
             cellar_key_import_password(file, file_len, (const uint8_t *)password, strlen(password), &imported,
                                        &version))) {
        print_id("re-imported key id", imported);
        printf("  %-34s %u, %s\n", "key version; same key", version, same_id(tenant, imported) ? "yes" : "NO");
        if (version != 7 || !same_id(tenant, imported)) failed = 1;
    }

out:
    cellar_key_free(imported);
    cellar_key_free(unwrapped);
    cellar_key_free(column);
    cellar_key_free(data);
    cellar_key_free(tenant);
    printf("\n%s\n", failed ? "DEMO FAILED" : "all operations succeeded and were approved by the FIPS module");
    return failed ? 1 : 0;
}
