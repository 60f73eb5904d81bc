//! Key purposes (SPEC 10, NIST SP 800-57 Part 1 5.2): a key made with a purpose is refused by
//! every operation of another purpose, naming both; a key without one works everywhere; the
//! purpose survives wrap/unwrap, password files and the keyring; keyring tenant keys are
//! key-wrapping keys; the purpose never changes the approval indicator.

use cellar::cell::{self, BlindIndexKey, CellCipher, CellMode};
use cellar::keyring::Keyring;
use cellar::keys::{self, Key, KeyPurpose, KeyType};
use cellar::page::{PageCipher, PageMode};
use cellar::{last_operation_approved, Approval, Error};

const PW: &[u8] = b"correct horse battery staple";
const IT: u32 = keys::MIN_PASSWORD_ITERATIONS;
const ALL: [KeyPurpose; 4] =
    [KeyPurpose::None, KeyPurpose::DataEncryption, KeyPurpose::KeyWrapping, KeyPurpose::KeyDerivation];

fn aes(p: KeyPurpose) -> Key {
    Key::generate_with_purpose(KeyType::Aes256, p).unwrap()
}

fn xts(p: KeyPurpose) -> Key {
    Key::generate_with_purpose(KeyType::Aes256Xts, p).unwrap()
}

/// The message a refusal of a `have` key for a `need` use carries.
fn refusal(have: KeyPurpose, need: KeyPurpose) -> Error {
    use KeyPurpose::*;
    Error::InvalidKey(match (have, need) {
        (DataEncryption, KeyWrapping) => "a data-encryption key cannot be used as a key-encryption (key-wrapping) key",
        (DataEncryption, KeyDerivation) => "a data-encryption key cannot be used as a key-derivation (parent) key",
        (KeyWrapping, DataEncryption) => "a key-wrapping key cannot be used as a data-encryption key",
        (KeyWrapping, KeyDerivation) => "a key-wrapping key cannot be used as a key-derivation (parent) key",
        (KeyDerivation, DataEncryption) => "a key-derivation key cannot be used as a data-encryption key",
        (KeyDerivation, KeyWrapping) => "a key-derivation key cannot be used as a key-encryption (key-wrapping) key",
        _ => unreachable!(),
    })
}

/// `Ok` when a key of `have` may serve `need`, else the refusal naming both; a refusal reports
/// indicator -1 (a failed operation).
fn expect<T: std::fmt::Debug>(r: cellar::Result<T>, have: KeyPurpose, need: KeyPurpose, what: &str) {
    if have == KeyPurpose::None || have == need {
        r.unwrap_or_else(|e| panic!("{what}: a {have:?} key must be accepted: {e}"));
    } else {
        assert_eq!(r.unwrap_err(), refusal(have, need), "{what}: a {have:?} key");
        assert_eq!(last_operation_approved(), Approval::Unknown, "{what}: a refusal is a failure");
    }
}

#[test]
fn purpose_values_and_names() {
    for (v, p) in ALL.iter().enumerate() {
        assert_eq!(KeyPurpose::from_u32(v as u32).unwrap(), *p);
        assert_eq!(*p as u32, v as u32);
    }
    for bad in [4u32, 5, 255, 256, u32::MAX] {
        assert_eq!(KeyPurpose::from_u32(bad).unwrap_err(), Error::InvalidArgument("unknown key purpose"));
    }
    assert_eq!(KeyPurpose::default(), KeyPurpose::None);
    assert_eq!(KeyPurpose::KeyWrapping.name(), "key wrapping");
    // The SPEC 8 calls make keys without a purpose.
    assert_eq!(Key::generate(KeyType::Aes256).unwrap().purpose(), KeyPurpose::None);
    assert_eq!(Key::import(KeyType::Aes256, &[1u8; 32]).unwrap().purpose(), KeyPurpose::None);
    assert_eq!(Key::generate(KeyType::Aes256).unwrap().derive(KeyType::Aes256, b"x").unwrap().purpose(), KeyPurpose::None);
}

#[test]
fn generate_import_and_derive_fix_the_purpose() {
    let m: Vec<u8> = (0u8..64).collect();
    for p in ALL {
        assert_eq!(aes(p).purpose(), p);
        let i = Key::import_with_purpose(KeyType::Aes256, &m[..32], p).unwrap();
        assert_eq!(i.purpose(), p);
        // The purpose is not part of the key id (a fingerprint of the material).
        assert_eq!(i.id(), Key::import(KeyType::Aes256, &m[..32]).unwrap().id());
        if p != KeyPurpose::KeyWrapping {
            assert_eq!(xts(p).purpose(), p);
            assert_eq!(Key::import_with_purpose(KeyType::Aes256Xts, &m, p).unwrap().purpose(), p);
        }
        let parent = aes(KeyPurpose::KeyDerivation);
        assert_eq!(parent.derive_with_purpose(KeyType::Aes256, b"t", p).unwrap().purpose(), p);
        // Clones share the purpose.
        assert_eq!(i.clone().purpose(), p);
        assert!(format!("{i:?}").contains(p.name()), "Debug names the purpose");
    }
    // Key wrapping is AES-KWP with an AES-256 key: an XTS key-wrapping key cannot be made.
    let e = Error::InvalidArgument("an AES-256-XTS key cannot be a key-wrapping key (key wrapping uses AES-256 keys)");
    assert_eq!(Key::generate_with_purpose(KeyType::Aes256Xts, KeyPurpose::KeyWrapping).unwrap_err(), e);
    assert_eq!(Key::import_with_purpose(KeyType::Aes256Xts, &m, KeyPurpose::KeyWrapping).unwrap_err(), e);
    assert_eq!(
        aes(KeyPurpose::None).derive_with_purpose(KeyType::Aes256Xts, b"t", KeyPurpose::KeyWrapping).unwrap_err(),
        e
    );
    // Import with a purpose validates the material like import.
    assert!(matches!(
        Key::import_with_purpose(KeyType::Aes256, &m[..31], KeyPurpose::DataEncryption),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn page_ciphers_need_a_data_encryption_key() {
    for p in ALL {
        expect(PageCipher::new(&aes(p), PageMode::Gcm, 7, 1, 0), p, KeyPurpose::DataEncryption, "GCM page");
        if p != KeyPurpose::KeyWrapping {
            expect(PageCipher::new(&xts(p), PageMode::Xts, 7, 1, 0), p, KeyPurpose::DataEncryption, "XTS page");
        }
    }
    // An accepted data key encrypts and decrypts.
    let c = PageCipher::new(&xts(KeyPurpose::DataEncryption), PageMode::Xts, 7, 1, 0).unwrap();
    let page = vec![0x5Au8; 4096];
    let mut enc = vec![0u8; 4096];
    let mut dec = vec![0u8; 4096];
    c.encrypt(3, &page, &mut enc).unwrap();
    c.decrypt(3, &enc, &mut dec).unwrap();
    assert_eq!(dec, page);
}

#[test]
fn cell_ciphers_and_blind_indexes_need_a_data_encryption_key() {
    for p in ALL {
        let k = aes(p);
        for mode in [CellMode::Randomized, CellMode::Deterministic, CellMode::MssqlRandomized, CellMode::MssqlDeterministic] {
            expect(CellCipher::new(&k, mode, 1), p, KeyPurpose::DataEncryption, &format!("{mode:?} cells"));
        }
        for v in [1, 2] {
            expect(BlindIndexKey::with_version(&k, v), p, KeyPurpose::DataEncryption, "blind index key");
            let mut out = [0u8; 16];
            expect(cell::blind_index_versioned(&k, v, b"ctx", b"value", &mut out), p, KeyPurpose::DataEncryption, "blind index");
        }
        expect(BlindIndexKey::new(&k), p, KeyPurpose::DataEncryption, "v1 blind index key");
    }
    let c = CellCipher::new(&aes(KeyPurpose::DataEncryption), CellMode::Randomized, 4).unwrap();
    let ct = c.encrypt(b"row 1", b"alice").unwrap();
    assert_eq!(&c.decrypt(b"row 1", &ct).unwrap()[..], b"alice");
}

#[test]
fn wrapping_needs_a_key_wrapping_kek() {
    let dk = aes(KeyPurpose::DataEncryption);
    for p in ALL {
        let kek = aes(p);
        expect(keys::wrap(&kek, &dk, 1), p, KeyPurpose::KeyWrapping, "wrap");
        // A blob made under the same material by a purpose-less handle: unwrap refuses the KEK
        // by purpose before looking at the blob.
        let plain = Key::import(KeyType::Aes256, &kek.dangerous_export_raw()).unwrap();
        let blob = keys::wrap(&plain, &dk, 1).unwrap();
        expect(keys::unwrap(&kek, &blob), p, KeyPurpose::KeyWrapping, "unwrap");
    }
    // The key being wrapped may have any purpose (a key-wrapping key wraps keys of all kinds).
    let kek = aes(KeyPurpose::KeyWrapping);
    for p in ALL {
        let (k, v) = keys::unwrap(&kek, &keys::wrap(&kek, &aes(p), 9).unwrap()).unwrap();
        assert_eq!((k.purpose(), v), (p, 9));
    }
}

#[test]
fn derivation_needs_a_key_derivation_parent() {
    for p in ALL {
        let parent = aes(p);
        expect(parent.derive(KeyType::Aes256, b"label"), p, KeyPurpose::KeyDerivation, "derive");
        expect(parent.derive_v1(KeyType::Aes256, b"label"), p, KeyPurpose::KeyDerivation, "derive v1");
        for child in ALL {
            expect(parent.derive_with_purpose(KeyType::Aes256, b"label", child), p, KeyPurpose::KeyDerivation, "derive with purpose");
        }
        if p != KeyPurpose::KeyWrapping {
            expect(xts(p).derive(KeyType::Aes256, b"label"), p, KeyPurpose::KeyDerivation, "derive from XTS");
        }
    }
}

/// SP 800-108 counter mode with HMAC-SHA-256, computed here with plain HMAC (not the module's
/// KBKDF service): `K(i) = HMAC(K, [i]_32 | label | 0x00 | context | [8L]_32)`.
fn kdf(key: &[u8], label: &[u8], context: &[u8], len: usize) -> Vec<u8> {
    use aws_lc_rs::hmac;
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut out = Vec::new();
    let mut i = 1u32;
    while out.len() < len {
        let mut m = i.to_be_bytes().to_vec();
        m.extend_from_slice(label);
        m.push(0);
        m.extend_from_slice(context);
        m.extend_from_slice(&((len * 8) as u32).to_be_bytes());
        out.extend_from_slice(hmac::sign(&k, &m).as_ref());
        i += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn derive_with_purpose_is_separated_by_purpose() {
    let raw = [0x3Cu8; 32];
    let parent = Key::import_with_purpose(KeyType::Aes256, &raw, KeyPurpose::KeyDerivation).unwrap();
    let plain_parent = Key::import(KeyType::Aes256, &raw).unwrap();
    for t in [KeyType::Aes256, KeyType::Aes256Xts] {
        // None is derive v2 exactly, from either handle of the parent.
        let none = parent.derive_with_purpose(t, b"orders.email", KeyPurpose::None).unwrap();
        assert_eq!(none.id(), plain_parent.derive(t, b"orders.email").unwrap().id());
        let mut ctx = vec![t as u8];
        ctx.extend_from_slice(b"orders.email");
        assert_eq!(&none.dangerous_export_raw()[..], &kdf(&raw, b"cellar derive v2", &ctx, t.material_len())[..]);
        let mut ids = vec![none.id()];
        for p in [KeyPurpose::DataEncryption, KeyPurpose::KeyWrapping, KeyPurpose::KeyDerivation] {
            if t == KeyType::Aes256Xts && p == KeyPurpose::KeyWrapping {
                continue;
            }
            let c = parent.derive_with_purpose(t, b"orders.email", p).unwrap();
            assert_eq!(c.id(), parent.derive_with_purpose(t, b"orders.email", p).unwrap().id(), "deterministic");
            let mut ctx = vec![p as u8, t as u8];
            ctx.extend_from_slice(b"orders.email");
            assert_eq!(
                &c.dangerous_export_raw()[..],
                &kdf(&raw, b"cellar derive v2 purpose", &ctx, t.material_len())[..],
                "{t:?} {p:?}: FORMATS.md 1.2"
            );
            assert_eq!(last_operation_approved(), Approval::Approved);
            ids.push(c.id());
        }
        let mut d = ids.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), ids.len(), "children of different purposes share no material");
    }
    assert!(matches!(parent.derive_with_purpose(KeyType::Aes256, b"", KeyPurpose::DataEncryption), Err(Error::InvalidArgument(_))));
}

#[test]
fn purpose_round_trips_through_wrap_and_password_files() {
    let kek = aes(KeyPurpose::KeyWrapping);
    for p in ALL {
        for k in [Some(aes(p)), (p != KeyPurpose::KeyWrapping).then(|| xts(p))].into_iter().flatten() {
            let blob = keys::wrap(&kek, &k, 77).unwrap();
            assert_eq!(blob[1], if p == KeyPurpose::None { 0x01 } else { 0x02 });
            assert_eq!(blob.len(), keys::wrapped_len(k.key_type()));
            assert_eq!(keys::wrapped_kek_id(&blob).unwrap(), kek.id());
            let (back, v) = keys::unwrap(&kek, &blob).unwrap();
            assert_eq!((back.purpose(), back.id(), back.key_type(), v), (p, k.id(), k.key_type(), 77));
            let file = keys::export_with_password(&k, 78, PW, IT).unwrap();
            assert_eq!(file[1], blob[1]);
            assert_eq!(file.len(), keys::password_file_len(k.key_type()));
            let (back, v) = keys::import_with_password(&file, PW).unwrap();
            assert_eq!((back.purpose(), back.id(), v), (p, k.id(), 78));
            // Every byte of a v2 blob is authenticated (the format byte through the record length).
            if p != KeyPurpose::None {
                for i in 0..blob.len() {
                    let mut t = blob.clone();
                    t[i] ^= 0x01;
                    assert!(keys::unwrap(&kek, &t).is_err(), "byte {i} flipped");
                }
            }
        }
    }
}

#[test]
fn purpose_free_keys_write_format_1_byte_for_byte() {
    // The same key and KEK wrapped by a purpose-less handle: AES-KWP is deterministic, so the
    // blob is what the code before purposes wrote (fixtures in tests/compat_v1.rs).
    let kek = Key::import(KeyType::Aes256, &[7u8; 32]).unwrap();
    let dk = Key::import(KeyType::Aes256, &[9u8; 32]).unwrap();
    let a = keys::wrap(&kek, &dk, 5).unwrap();
    assert_eq!(a[1], 0x01);
    // A key-wrapping handle of the same KEK material makes the identical blob.
    let kek2 = Key::import_with_purpose(KeyType::Aes256, &[7u8; 32], KeyPurpose::KeyWrapping).unwrap();
    assert_eq!(keys::wrap(&kek2, &dk, 5).unwrap(), a);
}

#[test]
fn keyring_tenant_keys_are_key_wrapping_keys() {
    for p in ALL {
        let k = aes(p);
        expect(Keyring::new(Some(&k)), p, KeyPurpose::KeyWrapping, "keyring new (BYOK)");
        let kr = Keyring::new(None).unwrap();
        expect(kr.rotate(Some(&k)), p, KeyPurpose::KeyWrapping, "keyring rotate");
    }
    // Unlock with a key of the wrong purpose is refused; the same material as a key-wrapping
    // or purpose-less handle unlocks.
    let raw = [0x21u8; 32];
    let kr = Keyring::new(Some(&Key::import(KeyType::Aes256, &raw).unwrap())).unwrap();
    kr.lock().unwrap();
    for p in [KeyPurpose::DataEncryption, KeyPurpose::KeyDerivation] {
        let wrong = Key::import_with_purpose(KeyType::Aes256, &raw, p).unwrap();
        assert_eq!(kr.unlock(&wrong).unwrap_err(), refusal(p, KeyPurpose::KeyWrapping));
        assert!(kr.is_locked().unwrap());
    }
    assert_eq!(kr.unlock(&Key::import_with_purpose(KeyType::Aes256, &raw, KeyPurpose::KeyWrapping).unwrap()).unwrap(), 1);
    // The caller's handle keeps its own purpose (the keyring holds its own copy).
    let mine = Key::import(KeyType::Aes256, &raw).unwrap();
    let _kr2 = Keyring::new(Some(&mine)).unwrap();
    assert_eq!(mine.purpose(), KeyPurpose::None);
}

#[test]
fn keyring_carries_data_key_purposes_and_checks_root_keys() {
    let kr = Keyring::new(None).unwrap();
    for p in ALL {
        let dk = aes(p);
        let blob = kr.wrap(&dk).unwrap();
        assert_eq!(blob[1], if p == KeyPurpose::None { 0x01 } else { 0x02 });
        let (back, v) = kr.unwrap(&blob).unwrap();
        assert_eq!((back.purpose(), back.id(), v), (p, dk.id(), kr.active_version().unwrap()));
        kr.rotate(None).unwrap();
        let re = kr.rewrap(&blob).unwrap();
        assert_eq!(re[1], blob[1]);
        assert_eq!(kr.unwrap(&re).unwrap().0.purpose(), p);
    }
    // The tenant key unwrapped a data key's blob: a key-wrapping key. A root key sealing the
    // keyring's export is a key-encryption key too.
    for p in ALL {
        let root = aes(p);
        expect(kr.export_with_root_key(&root), p, KeyPurpose::KeyWrapping, "keyring export under a root key");
    }
    let plain_root = Key::import(KeyType::Aes256, &[0x55u8; 32]).unwrap();
    let export = kr.export_with_root_key(&plain_root).unwrap();
    for p in ALL {
        let root = Key::import_with_purpose(KeyType::Aes256, &[0x55u8; 32], p).unwrap();
        expect(Keyring::import_with_root_key(&export, &root), p, KeyPurpose::KeyWrapping, "keyring import under a root key");
    }
}

#[test]
fn purpose_does_not_change_the_indicator() {
    let run = |p: KeyPurpose| -> Vec<Approval> {
        let mut seen = Vec::new();
        let kek = if p == KeyPurpose::None { aes(p) } else { aes(KeyPurpose::KeyWrapping) };
        seen.push(last_operation_approved());
        let dp = if p == KeyPurpose::None { p } else { KeyPurpose::DataEncryption };
        let dk = aes(dp);
        seen.push(last_operation_approved());
        let blob = keys::wrap(&kek, &dk, 1).unwrap();
        seen.push(last_operation_approved());
        keys::unwrap(&kek, &blob).unwrap();
        seen.push(last_operation_approved());
        let c = CellCipher::new(&dk, CellMode::Randomized, 1).unwrap();
        seen.push(last_operation_approved());
        c.encrypt(b"c", b"v").unwrap();
        seen.push(last_operation_approved());
        PageCipher::new(&dk, PageMode::Gcm, 1, 1, 0).unwrap();
        seen.push(last_operation_approved());
        let parent = if p == KeyPurpose::None { aes(p) } else { aes(KeyPurpose::KeyDerivation) };
        parent.derive(KeyType::Aes256, b"l").unwrap();
        seen.push(last_operation_approved());
        seen
    };
    let without = run(KeyPurpose::None);
    assert!(without.iter().all(|a| *a == Approval::Approved), "{without:?}");
    assert_eq!(run(KeyPurpose::DataEncryption), without);
}

/// A stand-in external provider (no cryptography: it masks the record), enough to see the record
/// a provider is given and gets back.
struct MaskProvider {
    seen: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl cellar::keyring::KeyProvider for MaskProvider {
    fn key_id(&self) -> cellar::KeyId {
        [0xA5; 16]
    }
    fn wrap(&self, record: &[u8]) -> Result<Vec<u8>, cellar::keyring::ProviderError> {
        self.seen.lock().unwrap().push(record.to_vec());
        Ok(record.iter().map(|b| b ^ 0x5A).collect())
    }
    fn unwrap(&self, wrapped: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, cellar::keyring::ProviderError> {
        Ok(zeroize::Zeroizing::new(wrapped.iter().map(|b| b ^ 0x5A).collect()))
    }
}

#[test]
fn provider_versions_carry_the_purpose_in_the_v2_record() {
    let p = std::sync::Arc::new(MaskProvider { seen: Default::default() });
    let kr = Keyring::with_provider(p.clone()).unwrap();
    for purpose in ALL {
        let dk = aes(purpose);
        let blob = kr.wrap(&dk).unwrap();
        let rec = p.seen.lock().unwrap().last().unwrap().clone();
        if purpose == KeyPurpose::None {
            assert_eq!(blob[1], 0x01);
            assert_eq!(rec.len(), 53);
        } else {
            assert_eq!(blob[1], 0x02);
            assert_eq!(rec.len(), 54);
            assert_eq!((rec[0], rec[1]), (1, purpose as u8));
            assert_eq!(&rec[6..22], &dk.id());
        }
        let (back, _) = kr.unwrap(&blob).unwrap();
        assert_eq!((back.purpose(), back.id()), (purpose, dk.id()));
        // The format byte must agree with the record the provider returns.
        let mut t = blob.clone();
        t[1] ^= 0x03; // 0x01 <-> 0x02
        assert!(matches!(kr.unwrap(&t), Err(Error::AuthenticationFailed(_))), "{purpose:?}");
    }
}
