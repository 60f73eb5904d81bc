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

    std::printf("test_header.cpp: %d passed, %d failed\n", passes, failures);
    return failures == 0 ? 0 : 1;
}
