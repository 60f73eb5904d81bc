// cellar.h compiles as C++17 (cpp_compat: extern "C", no C-only constructs) and the API works
// from C++ with RAII ownership. Returns non-zero on any failure.
#include "cellar.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace {

struct KeyDeleter {
    void operator()(cellar_key *k) const noexcept { cellar_key_free(k); }
};
using Key = std::unique_ptr<cellar_key, KeyDeleter>;
struct PageDeleter {
    void operator()(cellar_page_cipher *c) const noexcept { cellar_page_cipher_free(c); }
};
using PageCipher = std::unique_ptr<cellar_page_cipher, PageDeleter>;
struct CellDeleter {
    void operator()(cellar_cell_cipher *c) const noexcept { cellar_cell_cipher_free(c); }
};
using CellCipher = std::unique_ptr<cellar_cell_cipher, CellDeleter>;
struct KeyringDeleter {
    void operator()(cellar_keyring *k) const noexcept { cellar_keyring_free(k); }
};
using Keyring = std::unique_ptr<cellar_keyring, KeyringDeleter>;

int failures = 0;
int passes = 0;

void check(bool ok, const char *what) {
    if (ok) {
        ++passes;
        return;
    }
    ++failures;
    std::string err(cellar_last_error(nullptr, 0), '\0');
    cellar_last_error(err.data(), err.size() + 1);
    std::fprintf(stderr, "FAILED: %s (last error: %s)\n", what, err.c_str());
}

Key generate(uint32_t type) {
    cellar_key *k = nullptr;
    check(cellar_key_generate(type, &k) == CELLAR_OK, "generate");
    check(cellar_last_operation_approved() == 1, "generate approved");
    return Key(k);
}

std::array<uint8_t, CELLAR_KEY_ID_LEN> id_of(const Key &k) {
    std::array<uint8_t, CELLAR_KEY_ID_LEN> id{};
    check(cellar_key_id(k.get(), id.data()) == CELLAR_OK, "key id");
    return id;
}

}  // namespace

// The header's types are what C++ callers expect.
static_assert(std::is_same_v<cellar_status, int32_t>, "cellar_status is int32_t");
static_assert(CELLAR_ABI_VERSION >> 16 == 1, "ABI major 1");
static_assert(CELLAR_OK == 0 && CELLAR_ERR_INTERNAL == 13, "status numbering");
static_assert(std::is_same_v<decltype(&cellar_key_wrap),
                             cellar_status (*)(const cellar_key *, const cellar_key *, uint32_t, uint8_t *,
                                               size_t, size_t *)>,
              "cellar_key_wrap signature as in SPEC section 8");
static_assert(std::is_same_v<decltype(&cellar_key_unwrap),
                             cellar_status (*)(const cellar_key *, const uint8_t *, size_t, cellar_key **,
                                               uint32_t *)>,
              "cellar_key_unwrap signature as in SPEC section 8");

int main() {
    check(cellar_abi_version() == CELLAR_ABI_VERSION, "abi version");
    check(std::string(cellar_status_name(CELLAR_ERR_AUTHENTICATION_FAILED)) == "CELLAR_ERR_AUTHENTICATION_FAILED",
          "status name");
    check(cellar_init(CELLAR_INIT_REQUIRE_FIPS) == CELLAR_OK, "init require FIPS");

    Key kek = generate(CELLAR_KEY_AES256);
    Key data = generate(CELLAR_KEY_AES256_XTS);

    // Size query, then wrap into a vector.
    size_t need = 0;
    check(cellar_key_wrap(kek.get(), data.get(), 3, nullptr, 0, &need) == CELLAR_ERR_BUFFER_TOO_SMALL, "size query");
    check(need == cellar_key_wrapped_len(CELLAR_KEY_AES256_XTS), "size query reports wrapped_len");
    std::vector<uint8_t> blob(need);
    size_t len = 0;
    check(cellar_key_wrap(kek.get(), data.get(), 3, blob.data(), blob.size(), &len) == CELLAR_OK, "wrap");
    check(cellar_last_operation_approved() == 1, "wrap approved");
    check(len == blob.size(), "wrap length");

    cellar_key *raw_back = nullptr;
    uint32_t version = 0;
    check(cellar_key_unwrap(kek.get(), blob.data(), blob.size(), &raw_back, &version) == CELLAR_OK, "unwrap");
    Key back(raw_back);
    check(cellar_last_operation_approved() == 1, "unwrap approved");
    check(version == 3, "key version");
    check(id_of(back) == id_of(data), "same key id");

    blob[blob.size() / 2] ^= 1;
    cellar_key *none = nullptr;
    check(cellar_key_unwrap(kek.get(), blob.data(), blob.size(), &none, &version) == CELLAR_ERR_AUTHENTICATION_FAILED,
          "tampered blob refused");
    check(none == nullptr, "no handle on failure");

    // Pages: a GCM page round trip in place, through RAII handles.
    {
        Key page_key = generate(CELLAR_KEY_AES256);
        cellar_page_cipher *raw = nullptr;
        check(cellar_page_cipher_new(page_key.get(), CELLAR_PAGE_GCM, 7, 2, 0, &raw) == CELLAR_OK, "page cipher");
        PageCipher pc(raw);
        std::vector<uint8_t> page(8192, 0x5a), orig = page;
        check(cellar_page_encrypt(pc.get(), 42, page.data(), page.data(), page.size()) == CELLAR_OK, "page encrypt");
        check(cellar_last_operation_approved() == 1, "page encrypt approved");
        uint32_t kv = 0;
        check(cellar_page_key_version(page.data(), page.size(), &kv) == CELLAR_OK && kv == 2, "page key version");
        check(cellar_page_decrypt(pc.get(), 42, page.data(), page.data(), page.size()) == CELLAR_OK, "page decrypt");
        check(std::memcmp(page.data(), orig.data(), page.size() - CELLAR_PAGE_GCM_TRAILER_LEN) == 0,
              "page payload restored");
        check(cellar_page_reserved_bytes(CELLAR_PAGE_GCM) == CELLAR_PAGE_GCM_TRAILER_LEN, "reserved bytes");
    }
    // Cells: a deterministic cell with a context, sized by the size function.
    {
        Key cell_key = generate(CELLAR_KEY_AES256);
        cellar_cell_cipher *raw = nullptr;
        check(cellar_cell_cipher_new(cell_key.get(), CELLAR_CELL_DETERMINISTIC, 1, &raw) == CELLAR_OK, "cell cipher");
        CellCipher cc(raw);
        const std::string value = "alice@example.com", ctx = "tenant=1;table=users;col=email";
        std::vector<uint8_t> ct(cellar_cell_ciphertext_len(CELLAR_CELL_DETERMINISTIC, value.size()));
        size_t n = 0;
        check(cellar_cell_encrypt(cc.get(), reinterpret_cast<const uint8_t *>(ctx.data()), ctx.size(),
                                  reinterpret_cast<const uint8_t *>(value.data()), value.size(), ct.data(),
                                  ct.size(), &n) == CELLAR_OK,
              "cell encrypt");
        // DETERMINISTIC succeeds with indicator 0: not an approved scheme (SPEC 10, docs/FIPS.md).
        check(cellar_last_operation_approved() == 0, "deterministic cell encrypt reports not approved");
        std::vector<uint8_t> pt(cellar_cell_plaintext_max_len(CELLAR_CELL_DETERMINISTIC, n));
        size_t m = 0;
        check(cellar_cell_decrypt(cc.get(), reinterpret_cast<const uint8_t *>(ctx.data()), ctx.size(), ct.data(), n,
                                  pt.data(), pt.size(), &m) == CELLAR_OK,
              "cell decrypt");
        check(std::string(pt.begin(), pt.begin() + static_cast<std::ptrdiff_t>(m)) == value, "cell value restored");
    }
    // Keyring: wrap under the active version, rotate, unwrap the old blob.
    {
        cellar_keyring *raw = nullptr;
        check(cellar_keyring_new(nullptr, &raw) == CELLAR_OK, "keyring");
        Keyring kr(raw);
        std::vector<uint8_t> kblob(CELLAR_KEYRING_MAX_WRAPPED_LEN);
        size_t klen = 0;
        check(cellar_keyring_wrap(kr.get(), data.get(), kblob.data(), kblob.size(), &klen) == CELLAR_OK,
              "keyring wrap");
        uint32_t v2 = 0;
        check(cellar_keyring_rotate(kr.get(), nullptr, &v2) == CELLAR_OK && v2 == 2, "keyring rotate");
        cellar_key *raw_dek = nullptr;
        uint32_t used = 0;
        check(cellar_keyring_unwrap(kr.get(), kblob.data(), klen, &raw_dek, &used) == CELLAR_OK && used == 1,
              "keyring unwrap under retained version");
        Key dek(raw_dek);
        check(cellar_last_operation_approved() == 1, "keyring unwrap approved");
        check(dek && id_of(dek) == id_of(data), "keyring round trip");
    }

    std::printf("test_header.cpp: %d passed, %d failed\n", passes, failures);
    return failures == 0 ? 0 : 1;
}
