"""A tour of the cellar package: FIPS status, a tenant keyring holding data keys, TDE pages and
encrypted columns. Run it from the repository after `make build`:

    python3 python/examples/example.py

(With the package installed, `pip install ./python`, set CELLAR_LIBRARY to the library file.)
"""
import os
import sys
from pathlib import Path

try:
    import cellar
except ImportError:  # running from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import cellar


def main() -> None:
    # Fail closed unless the module runs in FIPS mode and its self tests passed.
    cellar.init(require_fips=True)
    print(cellar.fips_status())

    # A tenant keyring ("manage keys"): the tenant's key never leaves the library.
    keyring = cellar.Keyring.create()  # service-managed tenant key, version 1

    # Data keys: one XTS key for pages, one AES-256 key for a column. The host stores them wrapped.
    with cellar.Key.generate(cellar.KeyType.AES256_XTS) as page_key, \
            cellar.Key.generate(cellar.KeyType.AES256) as column_key:
        stored_page_key = keyring.wrap(page_key)
        stored_column_key = keyring.wrap(column_key)
    print(f"wrapped data keys: {len(stored_page_key)} and {len(stored_column_key)} bytes")

    # Later (another process): unwrap the data keys through the keyring.
    page_key, _ = keyring.unwrap(stored_page_key)
    column_key, version = keyring.unwrap(stored_column_key)

    # TDE: encrypt a run of 8 KiB pages in place, as a storage engine writes an extent.
    pages = cellar.PageCipher(page_key, cellar.PageMode.XTS, file_id=7)
    extent = bytearray(os.urandom(8192 * 16))
    original = bytes(extent)
    pages.encrypt_pages(first_page_no=128, buffer=extent, page_size=8192)
    assert extent != original
    pages.decrypt_pages(128, extent, 8192)
    assert extent == original and cellar.last_operation_approved()
    print("pages: 16 x 8 KiB encrypted and decrypted in place (XTS)")

    # Authenticated pages: GCM with a 48-byte trailer; a changed byte is detected.
    with cellar.Key.generate() as gcm_key:
        gcm_pages = cellar.PageCipher(gcm_key, cellar.PageMode.GCM, file_id=7, key_version=1)
    page = gcm_pages.encrypt(5, os.urandom(8192))
    tampered = bytearray(page)
    tampered[10] ^= 1
    try:
        gcm_pages.decrypt(5, tampered)
    except cellar.AuthenticationError as exc:
        print(f"tampered GCM page refused: {exc.name}")

    # Cells: randomized for secrets, deterministic for lookups, a blind index for equality search.
    emails = cellar.CellCipher(column_key, cellar.CellMode.RANDOMIZED, key_version=version)
    ctx = b"tenant=42/users/email"
    column = [b"alice@example.com", b"bob@example.com", b"carol@example.com"]
    encrypted = emails.encrypt_many(column, context=ctx)  # one C call for the batch
    assert emails.decrypt_many(encrypted, context=ctx) == column
    try:
        emails.decrypt(encrypted[0], context=b"tenant=43/users/email")  # moved to another tenant
    except cellar.AuthenticationError:
        print("a cell moved to another context is refused")
    lookup = cellar.blind_index(column_key, b"bob@example.com", context=ctx)
    print(f"cells: {len(encrypted)} values, blind index {lookup.hex()}")

    # Rotation: a new tenant key; old blobs rewrap without touching the data they protect.
    keyring.rotate()
    stored_column_key = keyring.rewrap(stored_column_key)
    keyring.retire(1)
    print(f"keyring: active version {keyring.active_version}, versions {keyring.versions}")

    # Lock the tenant: every operation needing its key fails until it is unlocked, and so do
    # the keys already unwrapped from it and the ciphers made from them. A service-generated
    # keyring can be locked only once an export holds its versions (else nothing could unlock
    # it): persist the export first.
    sealed = keyring.export(password="correct horse battery staple", iterations=100_000)
    keyring.lock()
    try:
        keyring.unwrap(stored_column_key)
    except cellar.TenantLockedError:
        print("locked tenant: unwrap refused")
    print(f"{keyring!r}; the export to come back from is {len(sealed)} bytes")

    for obj in (emails, gcm_pages, pages, column_key, page_key, keyring):
        obj.close()
    print("all done")


if __name__ == "__main__":
    main()
