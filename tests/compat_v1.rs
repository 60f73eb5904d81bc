//! Format v1 data made by the code before format v2 (tests/data/compat_v1, commit ecc1753) is
//! still read by the current code, and what the current code writes is format v2 (SPEC 10):
//! GCM page trailer 0x02, DETERMINISTIC header 0x03, blind index and derive v2.

use cellar::cell::{self, BlindIndexKey, CellCipher, CellMode};
use cellar::keyring::Keyring;
use cellar::keys::{self, Key, KeyPurpose, KeyType};
use cellar::page::{self, PageCipher, PageMode, FLAG_ZERO_IS_EMPTY};
use cellar::{last_operation_approved, Approval};
use std::collections::HashMap;

fn fixtures() -> HashMap<String, Vec<u8>> {
    let text = include_str!("data/compat_v1/fixtures.txt");
    text.lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.to_string(), hex::decode(v).expect("hex")))
        .collect()
}

struct F {
    f: HashMap<String, Vec<u8>>,
}

impl F {
    fn new() -> Self {
        F { f: fixtures() }
    }
    fn get(&self, k: &str) -> &[u8] {
        self.f.get(k).unwrap_or_else(|| panic!("fixture {k}"))
    }
    fn key(&self) -> Key {
        Key::import(KeyType::Aes256, self.get("key_aes256")).unwrap()
    }
    fn xts(&self) -> Key {
        Key::import(KeyType::Aes256Xts, self.get("key_xts")).unwrap()
    }
}

const FILE_ID: u64 = 0x1122_3344_5566_7788;
const CONTEXT: &[u8] = b"tenant/table/col/row";
const PLAIN: &[u8] = b"alice@example.com";

#[test]
fn v1_gcm_page_still_decrypts_and_reports_not_approved() {
    let f = F::new();
    let ct = f.get("page_gcm_v1");
    assert_eq!(ct[ct.len() - 48], page::GCM_FORMAT_V1);
    assert_eq!(page::page_key_version(ct).unwrap(), 7);
    let c = PageCipher::new(&f.key(), PageMode::Gcm, FILE_ID, 7, FLAG_ZERO_IS_EMPTY).unwrap();
    let mut out = vec![0u8; ct.len()];
    c.decrypt(42, ct, &mut out).unwrap();
    assert_eq!(out, f.get("page_plain"));
    // HKDF subkey: the page reads, the scheme is not approved (SPEC 10).
    assert_eq!(last_operation_approved(), Approval::NotApproved);
    // Still bound to its page number and file.
    assert!(c.decrypt(43, ct, &mut out).is_err());
    let other = PageCipher::new(&f.key(), PageMode::Gcm, FILE_ID + 1, 7, 0).unwrap();
    assert!(other.decrypt(42, ct, &mut out).is_err());
    // Changing the format byte to 0x02 does not make it a v2 page: the AAD covers it.
    let mut forged = ct.to_vec();
    let n = forged.len();
    forged[n - 48] = page::GCM_FORMAT_V2;
    assert!(c.decrypt(42, &forged, &mut out).is_err());
    assert!(out.iter().all(|&b| b == 0));
    // A batch mixing a v1 and a v2 page reads both.
    let mut run = ct.to_vec();
    let mut v2 = vec![0u8; ct.len()];
    c.encrypt(43, f.get("page_plain"), &mut v2).unwrap();
    run.extend_from_slice(&v2);
    let mut back = vec![0u8; run.len()];
    c.decrypt_pages(42, &run, &mut back, ct.len(), 1).unwrap();
    assert_eq!(&back[..ct.len()], f.get("page_plain"));
    assert_eq!(&back[ct.len()..], f.get("page_plain"));
}

#[test]
fn new_gcm_pages_are_format_2_and_approved() {
    let f = F::new();
    let c = PageCipher::new(&f.key(), PageMode::Gcm, FILE_ID, 7, 0).unwrap();
    let plain = f.get("page_plain");
    let mut ct = vec![0u8; plain.len()];
    c.encrypt(42, plain, &mut ct).unwrap();
    assert_eq!(last_operation_approved(), Approval::Approved);
    let t = &ct[ct.len() - 48..];
    assert_eq!(t[0], page::GCM_FORMAT_V2);
    assert_eq!(&t[1..4], &[0, 0, 0]);
    assert_eq!(page::page_key_version(&ct).unwrap(), 7);
    let mut out = vec![0u8; ct.len()];
    c.decrypt(42, &ct, &mut out).unwrap();
    assert_eq!(last_operation_approved(), Approval::Approved);
    assert_eq!(out, plain);
    // Format 0x02 with the subkey of format 0x01 would not authenticate: flip to 0x01.
    let mut forged = ct.clone();
    let n = forged.len();
    forged[n - 48] = page::GCM_FORMAT_V1;
    assert!(c.decrypt(42, &forged, &mut out).is_err());
    // Unknown formats are refused.
    forged[n - 48] = 0x03;
    assert!(c.decrypt(42, &forged, &mut out).is_err());
    assert!(page::page_key_version(&forged).is_err());
}

#[test]
fn xts_page_is_unchanged() {
    let f = F::new();
    let c = PageCipher::new(&f.xts(), PageMode::Xts, FILE_ID, 7, 0).unwrap();
    let mut ct = vec![0u8; 4096];
    let mut plain = f.get("page_plain").to_vec();
    // The fixture's plaintext had a trailer area zeroed only for GCM; XTS encrypted the full
    // original page, so rebuild it.
    let orig: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    plain.copy_from_slice(&orig);
    c.encrypt(42, &plain, &mut ct).unwrap();
    assert_eq!(ct, f.get("page_xts"));
}

#[test]
fn v1_cells_still_decrypt() {
    let f = F::new();
    let key = f.key();
    for (name, mode) in [
        ("cell_randomized", CellMode::Randomized),
        ("cell_deterministic_v1", CellMode::Deterministic),
        ("cell_mssql_randomized", CellMode::MssqlRandomized),
        ("cell_mssql_deterministic", CellMode::MssqlDeterministic),
    ] {
        let c = CellCipher::new(&key, mode, 3).unwrap();
        let ctx: &[u8] = if mode.is_mssql() { b"" } else { CONTEXT };
        let pt = c.decrypt(ctx, f.get(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&pt[..], PLAIN, "{name}");
    }
    let det = f.get("cell_deterministic_v1");
    assert_eq!(det[0], cell::FORMAT_DETERMINISTIC);
    assert_eq!(cell::key_version(det).unwrap(), 3);
    // Always Encrypted stays byte-identical (its format has no version to move).
    let c = CellCipher::new(&key, CellMode::MssqlDeterministic, 3).unwrap();
    assert_eq!(c.encrypt(b"", PLAIN).unwrap(), f.get("cell_mssql_deterministic"));
    // A tampered v1 cell still fails.
    let mut bad = det.to_vec();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let c = CellCipher::new(&key, CellMode::Deterministic, 3).unwrap();
    assert!(c.decrypt(CONTEXT, &bad).is_err());
}

#[test]
fn new_deterministic_cells_are_format_3() {
    let f = F::new();
    let c = CellCipher::new(&f.key(), CellMode::Deterministic, 3).unwrap();
    let ct = c.encrypt(CONTEXT, PLAIN).unwrap();
    assert_eq!(ct[0], cell::FORMAT_DETERMINISTIC_V2);
    assert_eq!(cell::key_version(&ct).unwrap(), 3);
    assert_eq!(ct.len(), f.get("cell_deterministic_v1").len(), "same layout as 0x02");
    assert_ne!(&ct[5..], &f.get("cell_deterministic_v1")[5..], "v2 subkeys differ from v1");
    assert_eq!(c.encrypt(CONTEXT, PLAIN).unwrap(), ct, "still deterministic");
    assert_eq!(&c.decrypt(CONTEXT, &ct).unwrap()[..], PLAIN);
    // The header byte is authenticated: 0x03 relabelled 0x02 (or the reverse) fails.
    let mut relabel = ct.clone();
    relabel[0] = cell::FORMAT_DETERMINISTIC;
    assert!(c.decrypt(CONTEXT, &relabel).is_err());
    let mut relabel = f.get("cell_deterministic_v1").to_vec();
    relabel[0] = cell::FORMAT_DETERMINISTIC_V2;
    assert!(c.decrypt(CONTEXT, &relabel).is_err());
}

#[test]
fn blind_index_versions() {
    let f = F::new();
    let key = f.key();
    let mut v1 = [0u8; 32];
    cell::blind_index(&key, CONTEXT, PLAIN, &mut v1).unwrap();
    assert_eq!(&v1[..], f.get("blind_index_v1"), "the v1 entry points still match old indexes");
    let mut w = [0u8; 32];
    BlindIndexKey::with_version(&key, 1).unwrap().compute(CONTEXT, PLAIN, &mut w).unwrap();
    assert_eq!(w, v1);
    BlindIndexKey::new(&key).unwrap().compute(CONTEXT, PLAIN, &mut w).unwrap();
    assert_eq!(w, v1);
    let k2 = BlindIndexKey::with_version(&key, 2).unwrap();
    assert_eq!(k2.version(), 2);
    let mut v2 = [0u8; 32];
    k2.compute(CONTEXT, PLAIN, &mut v2).unwrap();
    assert_ne!(v2, v1);
    let mut one = [0u8; 16];
    cell::blind_index_versioned(&key, 2, CONTEXT, PLAIN, &mut one).unwrap();
    assert_eq!(one, v2[..16]);
    for bad in [0u32, 3, u32::MAX] {
        assert!(matches!(BlindIndexKey::with_version(&key, bad), Err(cellar::Error::InvalidArgument(_))));
    }
}

#[test]
fn derive_versions() {
    let f = F::new();
    let key = f.key();
    for (name, t) in [("derive_v1_aes256", KeyType::Aes256), ("derive_v1_xts", KeyType::Aes256Xts)] {
        let old = key.derive_v1(t, b"orders.email").unwrap();
        assert_eq!(&old.dangerous_export_raw()[..], f.get(name), "{name}");
        let new = key.derive(t, b"orders.email").unwrap();
        assert_ne!(new.id(), old.id());
        assert_eq!(new.id(), key.derive(t, b"orders.email").unwrap().id());
    }
}

#[test]
fn v1_blobs_still_open() {
    let f = F::new();
    let key = f.key();
    let (k, v) = keys::unwrap(&key, f.get("wrap_v1")).unwrap();
    assert_eq!(v, 9);
    assert_eq!(k.id(), f.xts().id());
    // Blobs from before key purposes (format 0x01) carry none: the key works everywhere (SPEC 10).
    assert_eq!(k.purpose(), KeyPurpose::None);
    let (k, v) = keys::import_with_password(f.get("password_v1"), b"correct horse battery staple").unwrap();
    assert_eq!(v, 9);
    assert_eq!(k.id(), f.xts().id());
    assert_eq!(k.purpose(), KeyPurpose::None);
    let kr = Keyring::import_with_root_key(f.get("keyring_export_root"), &key).unwrap();
    let (k, _) = kr.unwrap(f.get("keyring_wrapped_datakey")).unwrap();
    assert_eq!(k.id(), f.xts().id());
    assert_eq!(k.purpose(), KeyPurpose::None);
    // A key-wrapping handle of the same KEK opens the old blob too, and a purpose-less data key
    // from it still makes XTS pages.
    let kw = Key::import_with_purpose(KeyType::Aes256, f.get("key_aes256"), KeyPurpose::KeyWrapping).unwrap();
    let (k, _) = keys::unwrap(&kw, f.get("wrap_v1")).unwrap();
    assert!(PageCipher::new(&k, PageMode::Xts, FILE_ID, 1, 0).is_ok());
    // ...and rewrapped it stays format 0x01, byte for byte (KWP is deterministic).
    assert_eq!(keys::wrap(&key, &k, 9).unwrap(), f.get("wrap_v1"));
}
