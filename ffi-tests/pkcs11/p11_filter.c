/* A test-only PKCS#11 *filter* module: not a mock. Loaded by Cellar in place of the real module,
 * it loads the real one (CELLAR_P11_FILTER_TARGET, default SoftHSM2's) and hands out a copy of
 * the real module's function list in which only four entries are replaced; every other call goes
 * straight to the real module, so the tokens, sessions, keys and cryptography are the real
 * SoftHSM2's. What it changes, from the environment read at C_GetFunctionList:
 *
 *   CELLAR_P11_FILTER_HIDE=210a,210b   mechanisms (hex) hidden: left out of C_GetMechanismList,
 *                                      and C_GetMechanismInfo / C_WrapKey / C_UnwrapKey with
 *                                      them return CKR_MECHANISM_INVALID.
 *   CELLAR_P11_FILTER_MAP=210b:210a    a mechanism (hex) offered under another code: listed when
 *                                      the real one is, and its info / wrap / unwrap calls are
 *                                      forwarded as the real mechanism. (Lets a SoftHSM that has
 *                                      only CKM_AES_KEY_WRAP_PAD show CKM_AES_KEY_WRAP_KWP, or an
 *                                      impostor: 210b:2109 offers plain RFC 3394 as KWP.)
 *
 * Used by tests/pkcs11.rs to reach the branches of Cellar's mechanism probe a stock SoftHSM2
 * never takes (KWP first; a KWP code that fails the known-answer test; a token offering neither).
 * Build: cc -shared -fPIC p11_filter.c -o libp11filter.so -ldl. Test code only. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "p11_min.h"

#define MAX_RULES 8

static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST filtered;
static CK_MECHANISM_TYPE hidden[MAX_RULES];
static size_t n_hidden;
static CK_MECHANISM_TYPE map_from[MAX_RULES], map_to[MAX_RULES];
static size_t n_map;

static int is_hidden(CK_MECHANISM_TYPE m) {
    for (size_t i = 0; i < n_hidden; i++)
        if (hidden[i] == m) return 1;
    return 0;
}

/* The real mechanism behind `m` (itself when not mapped). */
static CK_MECHANISM_TYPE real_mech(CK_MECHANISM_TYPE m) {
    for (size_t i = 0; i < n_map; i++)
        if (map_from[i] == m) return map_to[i];
    return m;
}

static void parse_rules(void) {
    const char *h = getenv("CELLAR_P11_FILTER_HIDE");
    n_hidden = n_map = 0;
    while (h && *h && n_hidden < MAX_RULES) {
        char *end;
        hidden[n_hidden++] = strtoul(h, &end, 16);
        h = *end == ',' ? end + 1 : NULL;
    }
    const char *m = getenv("CELLAR_P11_FILTER_MAP");
    while (m && *m && n_map < MAX_RULES) {
        char *end;
        map_from[n_map] = strtoul(m, &end, 16);
        if (*end != ':') break;
        map_to[n_map++] = strtoul(end + 1, &end, 16);
        m = *end == ',' ? end + 1 : NULL;
    }
}

static CK_RV f_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, CK_ULONG *count) {
    if (!count) return CKR_ARGUMENTS_BAD;
    CK_ULONG n = 0;
    CK_RV rv = P11_CALL(real, GetMechanismList)(slot, NULL, &n);
    if (rv != CKR_OK) return rv;
    CK_MECHANISM_TYPE *all = calloc(n + 1, sizeof *all);
    if (!all) return 0x2UL; /* CKR_HOST_MEMORY */
    rv = P11_CALL(real, GetMechanismList)(slot, all, &n);
    if (rv != CKR_OK) {
        free(all);
        return rv;
    }
    CK_MECHANISM_TYPE out[512];
    CK_ULONG k = 0;
    for (CK_ULONG i = 0; i < n && k < 512; i++)
        if (!is_hidden(all[i])) out[k++] = all[i];
    for (size_t j = 0; j < n_map && k < 512; j++) {
        int present = 0, backed = 0;
        for (CK_ULONG i = 0; i < k; i++) present |= out[i] == map_from[j];
        for (CK_ULONG i = 0; i < n; i++) backed |= all[i] == map_to[j];
        if (!present && backed && !is_hidden(map_from[j])) out[k++] = map_from[j];
    }
    free(all);
    if (!list) {
        *count = k;
        return CKR_OK;
    }
    if (*count < k) {
        *count = k;
        return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(list, out, k * sizeof *out);
    *count = k;
    return CKR_OK;
}

static CK_RV f_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE m, CK_MECHANISM_INFO *info) {
    if (is_hidden(m)) return CKR_MECHANISM_INVALID;
    return P11_CALL(real, GetMechanismInfo)(slot, real_mech(m), info);
}

static CK_RV f_WrapKey(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE kek, CK_OBJECT_HANDLE key, CK_BYTE *out,
                       CK_ULONG *out_len) {
    if (!m) return CKR_ARGUMENTS_BAD;
    if (is_hidden(m->mechanism)) return CKR_MECHANISM_INVALID;
    CK_MECHANISM r = *m;
    r.mechanism = real_mech(m->mechanism);
    return P11_CALL(real, WrapKey)(s, &r, kek, key, out, out_len);
}

static CK_RV f_UnwrapKey(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE kek, CK_BYTE *in, CK_ULONG in_len,
                         CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out) {
    if (!m) return CKR_ARGUMENTS_BAD;
    if (is_hidden(m->mechanism)) return CKR_MECHANISM_INVALID;
    CK_MECHANISM r = *m;
    r.mechanism = real_mech(m->mechanism);
    return P11_CALL(real, UnwrapKey)(s, &r, kek, in, in_len, t, n, out);
}

static CK_RV f_GetFunctionList(CK_FUNCTION_LIST **out);

static void set_fn(int index, CK_ANY_FN f) {
    filtered.fn[index] = f;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out) {
    if (!out) return CKR_ARGUMENTS_BAD;
    if (!real) {
        const char *target = getenv("CELLAR_P11_FILTER_TARGET");
        void *h = dlopen(target && *target ? target : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
        if (!h) return 0x5UL; /* CKR_GENERAL_ERROR */
        void *sym = dlsym(h, "C_GetFunctionList");
        P11_GetFunctionList_fn get;
        if (!sym) return 0x5UL;
        memcpy(&get, &sym, sizeof get);
        CK_RV rv = get(&real);
        if (rv != CKR_OK) return rv;
        parse_rules();
        filtered = *real;
        set_fn(P11_GetFunctionList, (CK_ANY_FN)f_GetFunctionList);
        set_fn(P11_GetMechanismList, (CK_ANY_FN)f_GetMechanismList);
        set_fn(P11_GetMechanismInfo, (CK_ANY_FN)f_GetMechanismInfo);
        set_fn(P11_WrapKey, (CK_ANY_FN)f_WrapKey);
        set_fn(P11_UnwrapKey, (CK_ANY_FN)f_UnwrapKey);
    }
    *out = &filtered;
    return CKR_OK;
}

static CK_RV f_GetFunctionList(CK_FUNCTION_LIST **out) {
    return C_GetFunctionList(out);
}
