// A C++ host built with CMake against the installed Cellar::cellar (shared): a page round trip.
#include <cellar.h>
#include <cstdio>
#include <memory>
#include <vector>

int main() {
    cellar_key *k = nullptr;
    cellar_page_cipher *c = nullptr;
    if (cellar_key_generate(CELLAR_KEY_AES256_XTS, &k) != CELLAR_OK) return 1;
    std::unique_ptr<cellar_key, void (*)(cellar_key *)> key(k, cellar_key_free);
    if (cellar_page_cipher_new(key.get(), CELLAR_PAGE_XTS, 1, 1, 0, &c) != CELLAR_OK) return 1;
    std::unique_ptr<cellar_page_cipher, void (*)(cellar_page_cipher *)> cipher(c, cellar_page_cipher_free);
    std::vector<uint8_t> page(8192, 0x5a), enc(8192), dec(8192);
    bool ok = cellar_page_encrypt(cipher.get(), 3, page.data(), enc.data(), page.size()) == CELLAR_OK && enc != page &&
              cellar_page_decrypt(cipher.get(), 3, enc.data(), dec.data(), dec.size()) == CELLAR_OK && dec == page &&
              cellar_last_operation_approved() == 1 && cellar_fips_mode() == 1;
    std::printf("C++ host via find_package(Cellar): %s (ABI %#x)\n", ok ? "ok" : "FAILED", cellar_abi_version());
    return ok ? 0 : 1;
}
