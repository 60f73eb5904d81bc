//! A lock that locks (issue 20, item 4): data keys unwrapped from a keyring, keys derived from
//! them, and page and cell ciphers made from them refuse with `TenantLocked` while the keyring
//! is locked, and work again after unlock; a lock that could never be undone is refused unless
//! forced. Over live ciphers, made before the lock.

use cellar::cell::{CellCipher, CellMode};
use cellar::page::{PageCipher, PageMode};
use cellar::{Key, KeyType, Keyring};

const LOCKED: i32 = 8;
const INVALID_ARG: i32 = 2;

fn code<T: std::fmt::Debug>(r: cellar::Result<T>) -> i32 {
    r.map(|_| ()).map_err(|e| e.code()).err().unwrap_or(0)
}

#[test]
fn live_ciphers_stop_at_lock_and_resume_at_unlock() {
    let tenant = Key::generate(KeyType::Aes256).unwrap();
    let kr = Keyring::new(Some(&tenant)).unwrap();
    let page_key = Key::generate(KeyType::Aes256).unwrap();
    let cell_key = Key::generate(KeyType::Aes256).unwrap();
    let (pk, pv) = kr.unwrap(&kr.wrap(&page_key).unwrap()).unwrap();
    let (ck, _) = kr.unwrap(&kr.wrap(&cell_key).unwrap()).unwrap();
    let derived = ck.derive(KeyType::Aes256, b"users.email").unwrap();
    let pages = PageCipher::new(&pk, PageMode::Gcm, 1, pv, 0).unwrap();
    let cells = CellCipher::new(&ck, CellMode::Randomized, 1).unwrap();
    let det = CellCipher::new(&derived, CellMode::Deterministic, 1).unwrap();
    // A key that never saw the keyring is not affected by it.
    let free = CellCipher::new(&cell_key, CellMode::Randomized, 1).unwrap();

    let mut page = vec![7u8; 4096];
    pages.encrypt_in_place(3, &mut page).unwrap();
    let ct = cells.encrypt(b"ctx", b"alice").unwrap();
    let dct = det.encrypt(b"ctx", b"bob").unwrap();
    assert!(!ck.is_locked());

    kr.lock().unwrap();
    assert!(ck.is_locked() && pk.is_locked() && derived.is_locked() && !cell_key.is_locked());
    let mut out = vec![0xA5u8; 4096];
    assert_eq!(code(pages.decrypt(3, &page, &mut out)), LOCKED);
    assert!(out.iter().all(|&b| b == 0), "a refused page leaves zeros");
    let mut run = page.clone();
    assert_eq!(pages.decrypt_pages_in_place(3, &mut run, 4096, 1).map_err(|e| e.error.code()).err(), Some(LOCKED));
    assert_eq!(code(pages.encrypt_in_place(4, &mut vec![1u8; 4096])), LOCKED);
    assert_eq!(code(cells.encrypt(b"ctx", b"x")), LOCKED);
    assert_eq!(code(cells.decrypt(b"ctx", &ct)), LOCKED);
    assert_eq!(code(det.decrypt(b"ctx", &dct)), LOCKED);
    let mut o = vec![0u8; 200];
    let mut oo = [0usize; 2];
    assert_eq!(cells.encrypt_batch_to(b"ctx", b"ab", &[0, 2], &mut o, &mut oo).map_err(|e| e.error.code()).err(), Some(LOCKED));
    assert_eq!(code(CellCipher::new(&ck, CellMode::Randomized, 1)), LOCKED);
    assert_eq!(code(PageCipher::new(&pk, PageMode::Gcm, 1, pv, 0)), LOCKED);
    assert_eq!(code(ck.derive(KeyType::Aes256, b"x")), LOCKED);
    assert_eq!(code(cellar::keys::wrap(&tenant, &ck, 1)), LOCKED);
    assert_eq!(code(cellar::keys::export_with_password(&ck, 1, b"a long enough password", 100_000)), LOCKED);
    assert!(free.encrypt(b"ctx", b"still works").is_ok());

    // Unlock: everything made before the lock works again.
    kr.unlock(&tenant).unwrap();
    assert!(!ck.is_locked());
    pages.decrypt(3, &page, &mut out).unwrap();
    assert_eq!(&out[..4096 - 48], &vec![7u8; 4096 - 48][..]);
    assert_eq!(&cells.decrypt(b"ctx", &ct).unwrap()[..], b"alice");
    assert_eq!(&det.decrypt(b"ctx", &dct).unwrap()[..], b"bob");
}

#[test]
fn a_lock_with_no_way_back_needs_force() {
    // Service-generated and never exported: nothing outside could unlock it.
    let kr = Keyring::new(None).unwrap();
    let dk = Key::generate(KeyType::Aes256).unwrap();
    let (k, _) = kr.unwrap(&kr.wrap(&dk).unwrap()).unwrap();
    let c = CellCipher::new(&k, CellMode::Randomized, 1).unwrap();
    let e = kr.lock().unwrap_err();
    assert_eq!(e.code(), INVALID_ARG);
    assert!(e.to_string().contains("export the keyring first"), "{e}");
    assert!(!kr.is_locked().unwrap() && c.encrypt(b"", b"x").is_ok());
    // Exported: the lock can be undone (import the export, or unlock), so it is allowed.
    let root = Key::generate(KeyType::Aes256).unwrap();
    let export = kr.export_with_root_key(&root).unwrap();
    // A version generated after the export is again only here.
    kr.rotate(None).unwrap();
    assert_eq!(code(kr.lock()), INVALID_ARG);
    let export2 = kr.export_with_root_key(&root).unwrap();
    kr.lock().unwrap();
    assert_eq!(code(c.encrypt(b"", b"x")), LOCKED);
    assert!(Keyring::import_with_root_key(&export, &root).is_ok() && !export2.is_empty());

    // Forced: allowed, and final.
    let kr = Keyring::new(None).unwrap();
    assert_eq!(code(kr.lock_with(2)), INVALID_ARG);
    kr.lock_with(cellar::keyring::LOCK_FORCE).unwrap();
    assert!(kr.is_locked().unwrap());
    // A customer keyring can always be locked: the customer holds the key.
    let kr = Keyring::new(Some(&Key::generate(KeyType::Aes256).unwrap())).unwrap();
    kr.lock().unwrap();
}

/// A blind-index key made from a tenant's data key follows the tenant's lock too (issue 20): it
/// refuses single and batch computation while the keyring is locked and computes the same
/// indexes again after unlock; making a new one from the locked key is refused as well.
#[test]
fn blind_index_keys_follow_the_tenant_lock() {
    use cellar::cell::BlindIndexKey;
    let tenant = Key::generate(KeyType::Aes256).unwrap();
    let kr = Keyring::new(Some(&tenant)).unwrap();
    let (k, _) = kr.unwrap(&kr.wrap(&Key::generate(KeyType::Aes256).unwrap()).unwrap()).unwrap();
    for version in [1, 2] {
        let bik = BlindIndexKey::with_version(&k, version).unwrap();
        let mut before = [0u8; 16];
        bik.compute(b"users.email", b"alice@example.com", &mut before).unwrap();
        let mut batch = [0u8; 32];
        bik.compute_batch(b"ctx", b"ab", &[0, 1, 2], 16, &mut batch).unwrap();

        kr.lock().unwrap();
        let mut out = [0u8; 16];
        assert_eq!(code(bik.compute(b"users.email", b"alice@example.com", &mut out)), LOCKED);
        assert_eq!(out, [0u8; 16], "nothing written while locked");
        assert_eq!(
            bik.compute_batch(b"ctx", b"ab", &[0, 1, 2], 16, &mut batch).map_err(|e| e.error.code()).err(),
            Some(LOCKED)
        );
        assert_eq!(code(BlindIndexKey::with_version(&k, version)), LOCKED);
        let mut one = [0u8; 16];
        assert_eq!(code(cellar::cell::blind_index_versioned(&k, version, b"c", b"v", &mut one)), LOCKED);

        kr.unlock(&tenant).unwrap();
        bik.compute(b"users.email", b"alice@example.com", &mut out).unwrap();
        assert_eq!(out, before, "the same index after unlock");
    }
}
