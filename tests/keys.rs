//! Key handles through the public Rust API: round trips, derivation, the documented errors and
//! tamper detection of wrapped blobs and password files. (KATs for HKDF and KWP are unit tests
//! in src/keys.rs; independent format checks are in ffi-tests/python/test_keys.py.)

use cellar::keys::{self, Key, KeyType};
use cellar::Error;
use proptest::prelude::*;

const PW: &[u8] = b"correct horse battery staple";
/// The minimum count, to keep tamper tests fast.
const IT: u32 = keys::MIN_PASSWORD_ITERATIONS;

fn is_auth_failure<T>(r: &cellar::Result<T>) -> bool {
    matches!(r, Err(Error::AuthenticationFailed(_)))
}

#[test]
fn generate_gives_distinct_keys_of_the_right_type() {
    for t in [KeyType::Aes256, KeyType::Aes256Xts] {
        let a = Key::generate(t).unwrap();
        let b = Key::generate(t).unwrap();
        assert_eq!(a.key_type(), t);
        assert_eq!(a.dangerous_export_raw().len(), t.material_len());
        assert_ne!(a.id(), b.id());
        assert_ne!(*a.dangerous_export_raw(), *b.dangerous_export_raw());
    }
    let x = Key::generate(KeyType::Aes256Xts).unwrap().dangerous_export_raw();
    assert_ne!(x[..32], x[32..]);
}

#[test]
fn import_validates_length() {
    for (t, len) in [(KeyType::Aes256, 0), (KeyType::Aes256, 31), (KeyType::Aes256, 33), (KeyType::Aes256, 64),
                     (KeyType::Aes256Xts, 32), (KeyType::Aes256Xts, 63), (KeyType::Aes256Xts, 65)] {
        let m: Vec<u8> = (0..len as u8).collect();
        assert_eq!(
            Key::import(t, &m).unwrap_err(),
            Error::InvalidKey("key material has the wrong length for its type"),
            "{t:?} with {len} bytes"
        );
    }
    assert!(matches!(Key::import(KeyType::Aes256Xts, &[4u8; 64]), Err(Error::InvalidKey(_))));
    assert!(KeyType::from_u32(0).is_err());
    assert!(KeyType::from_u32(3).is_err());
    assert_eq!(KeyType::from_u32(1).unwrap(), KeyType::Aes256);
    assert_eq!(KeyType::from_u32(2).unwrap(), KeyType::Aes256Xts);
}

#[test]
fn import_keeps_material_and_id_is_deterministic() {
    let m = [0x42u8; 32];
    let a = Key::import(KeyType::Aes256, &m).unwrap();
    let b = Key::import(KeyType::Aes256, &m).unwrap();
    assert_eq!(*a.dangerous_export_raw(), m.to_vec());
    assert_eq!(a.id(), b.id());
    assert_ne!(a.id(), Key::import(KeyType::Aes256, &[0x43u8; 32]).unwrap().id());
}

#[test]
fn derive_is_deterministic_and_separates_inputs() {
    let p = Key::import(KeyType::Aes256, &[1u8; 32]).unwrap();
    let q = Key::import(KeyType::Aes256, &[2u8; 32]).unwrap();
    let a = p.derive(KeyType::Aes256, b"table:orders").unwrap();
    assert_eq!(a.id(), p.derive(KeyType::Aes256, b"table:orders").unwrap().id());
    assert_ne!(a.id(), p.derive(KeyType::Aes256, b"table:orderz").unwrap().id());
    assert_ne!(a.id(), q.derive(KeyType::Aes256, b"table:orders").unwrap().id());
    assert_ne!(a.id(), p.id());
    let x = p.derive(KeyType::Aes256Xts, b"table:orders").unwrap();
    assert_eq!(x.key_type(), KeyType::Aes256Xts);
    // The type byte is in the info: the XTS child's first half is not the AES-256 child.
    assert_ne!(x.dangerous_export_raw()[..32], a.dangerous_export_raw()[..]);
    // An XTS parent works too.
    let xx = x.derive(KeyType::Aes256, b"child").unwrap();
    assert_eq!(xx.key_type(), KeyType::Aes256);
    assert_eq!(
        p.derive(KeyType::Aes256, b"").unwrap_err(),
        Error::InvalidArgument("derive label must be non-empty")
    );
}

#[test]
fn wrap_round_trip_both_types_and_versions() {
    let kek = Key::generate(KeyType::Aes256).unwrap();
    for t in [KeyType::Aes256, KeyType::Aes256Xts] {
        for version in [0u32, 1, 0x8000_0000, u32::MAX] {
            let key = Key::generate(t).unwrap();
            let blob = keys::wrap(&kek, &key, version).unwrap();
            assert_eq!(blob.len(), keys::wrapped_len(t));
            assert_eq!(keys::wrapped_kek_id(&blob).unwrap(), kek.id());
            let (back, v) = keys::unwrap(&kek, &blob).unwrap();
            assert_eq!(v, version);
            assert_eq!(back.key_type(), t);
            assert_eq!(back.id(), key.id());
            assert_eq!(*back.dangerous_export_raw(), *key.dangerous_export_raw());
        }
    }
    // A KEK can wrap itself.
    let blob = keys::wrap(&kek, &kek, 9).unwrap();
    assert_eq!(keys::unwrap(&kek, &blob).unwrap().0.id(), kek.id());
}

#[test]
fn wrap_refuses_xts_kek_and_unwrap_refuses_other_kek() {
    let xts = Key::generate(KeyType::Aes256Xts).unwrap();
    let kek = Key::generate(KeyType::Aes256).unwrap();
    let err = keys::wrap(&xts, &kek, 1).unwrap_err();
    assert_eq!(err, Error::InvalidKey("the key-encryption key must be an AES-256 key"));
    let blob = keys::wrap(&kek, &xts, 1).unwrap();
    assert!(matches!(keys::unwrap(&xts, &blob), Err(Error::InvalidKey(_))));
    let other = Key::generate(KeyType::Aes256).unwrap();
    assert!(is_auth_failure(&keys::unwrap(&other, &blob)));
    // Same KEK id in the header but another key under it: the KWP check catches it.
    let mut forged = blob.clone();
    forged[2..18].copy_from_slice(&other.id());
    assert!(is_auth_failure(&keys::unwrap(&other, &forged)));
    // A password file is not a wrapped blob.
    let pf = keys::export_with_password(&xts, 1, PW, IT).unwrap();
    assert!(is_auth_failure(&keys::unwrap(&kek, &pf)));
    assert!(keys::wrapped_kek_id(&pf).is_err());
    assert!(keys::wrapped_kek_id(&[]).is_err());
}

/// Every single-byte change, every truncation and extensions of a wrapped blob: one error
/// (AuthenticationFailed) and no key.
#[test]
fn wrapped_blob_tamper_is_refused() {
    let kek = Key::generate(KeyType::Aes256).unwrap();
    for t in [KeyType::Aes256, KeyType::Aes256Xts] {
        let key = Key::generate(t).unwrap();
        let blob = keys::wrap(&kek, &key, 7).unwrap();
        let mut checked = 0;
        for i in 0..blob.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut b = blob.clone();
                b[i] ^= mask;
                assert!(is_auth_failure(&keys::unwrap(&kek, &b)), "{t:?}: byte {i} ^ {mask:#x} accepted");
                checked += 1;
            }
        }
        for n in 0..blob.len() {
            assert!(is_auth_failure(&keys::unwrap(&kek, &blob[..n])), "{t:?}: truncated to {n} accepted");
            checked += 1;
        }
        for extra in 1..=24 {
            for fill in [0u8, 0xA5] {
                let mut b = blob.clone();
                b.extend(std::iter::repeat(fill).take(extra));
                assert!(is_auth_failure(&keys::unwrap(&kek, &b)), "{t:?}: extended by {extra} accepted");
                checked += 1;
            }
        }
        assert_eq!(checked, blob.len() * 4 + 48);
        assert!(keys::unwrap(&kek, &blob).is_ok(), "the original still unwraps");
    }
}

/// The same for password files (at the minimum iteration count, to stay fast). Shape checks
/// come before PBKDF2; every flip that keeps a valid shape runs the full KDF and the KWP check.
#[test]
fn password_file_tamper_is_refused() {
    for t in [KeyType::Aes256, KeyType::Aes256Xts] {
        let key = Key::generate(t).unwrap();
        let file = keys::export_with_password(&key, 7, PW, IT).unwrap();
        assert_eq!(file.len(), keys::password_file_len(t));
        let masks: &[u8] = if t == KeyType::Aes256 { &[0x01, 0x80] } else { &[0x01] };
        for i in 0..file.len() {
            for &mask in masks {
                let mut f = file.clone();
                f[i] ^= mask;
                assert!(is_auth_failure(&keys::import_with_password(&f, PW)), "{t:?}: byte {i} ^ {mask:#x} accepted");
            }
        }
        for n in 0..file.len() {
            assert!(is_auth_failure(&keys::import_with_password(&file[..n], PW)), "{t:?}: truncated to {n}");
        }
        for extra in [1usize, 7, 8, 16] {
            let mut f = file.clone();
            f.extend(std::iter::repeat(0u8).take(extra));
            assert!(is_auth_failure(&keys::import_with_password(&f, PW)), "{t:?}: extended by {extra}");
        }
        let (back, v) = keys::import_with_password(&file, PW).unwrap();
        assert_eq!((back.id(), v), (key.id(), 7));
    }
}

#[test]
fn password_rules() {
    let key = Key::generate(KeyType::Aes256).unwrap();
    // 13 bytes refused, 14 accepted.
    let e = keys::export_with_password(&key, 1, b"thirteen-byte", IT).unwrap_err();
    assert_eq!(e, Error::InvalidArgument("password must be at least 14 bytes"));
    assert_eq!(e.to_string(), "invalid argument: password must be at least 14 bytes");
    assert!(keys::export_with_password(&key, 1, b"", IT).is_err());
    let file = keys::export_with_password(&key, 1, b"fourteen-bytes", IT).unwrap();
    // Iterations: below 100 000 and above 10 000 000 refused.
    for it in [0, 1, 1000, 99_999, 10_000_001, u32::MAX] {
        let e = keys::export_with_password(&key, 1, PW, it).unwrap_err();
        assert_eq!(e, Error::InvalidArgument("iterations must be between 100000 and 10000000"), "{it}");
    }
    // Import: a short password is an argument error (not a guess at the password), a wrong one
    // an authentication failure.
    assert_eq!(
        keys::import_with_password(&file, b"fourteen-byte").unwrap_err(),
        Error::InvalidArgument("password must be at least 14 bytes")
    );
    assert!(is_auth_failure(&keys::import_with_password(&file, b"fourteen-bytez")));
    assert!(is_auth_failure(&keys::import_with_password(&file, b"fourteen-bytes ")));
    assert_eq!(keys::import_with_password(&file, b"fourteen-bytes").unwrap().0.id(), key.id());
    // A wrapped blob is not a password file.
    let kek = Key::generate(KeyType::Aes256).unwrap();
    assert!(is_auth_failure(&keys::import_with_password(&keys::wrap(&kek, &key, 1).unwrap(), PW)));
}

/// A file that claims fewer than the minimum iterations is refused before any KDF runs
/// (an attacker cannot downgrade the count); the header layout is as documented.
#[test]
fn password_file_iterations_are_bound() {
    let key = Key::generate(KeyType::Aes256).unwrap();
    let file = keys::export_with_password(&key, 1, PW, 123_456).unwrap();
    assert_eq!(&file[..2], b"P\x01");
    assert_eq!(u32::from_be_bytes(file[2..6].try_into().unwrap()), 123_456);
    let mut f = file.clone();
    f[2..6].copy_from_slice(&1000u32.to_be_bytes());
    assert!(is_auth_failure(&keys::import_with_password(&f, PW)));
    let mut f = file.clone();
    f[2..6].copy_from_slice(&u32::MAX.to_be_bytes());
    let t = std::time::Instant::now();
    assert!(is_auth_failure(&keys::import_with_password(&f, PW)));
    assert!(t.elapsed().as_secs() < 5, "an oversized count is refused without running it");
}

#[test]
fn usage_limit_api() {
    let k = Key::generate(KeyType::Aes256).unwrap();
    assert_eq!(k.usage_count(), 0);
    assert_eq!(k.usage_limit(), keys::DEFAULT_USAGE_LIMIT);
    assert_eq!(keys::DEFAULT_USAGE_LIMIT, 1 << 32);
    assert!(k.set_usage_limit(0).is_err());
    assert!(k.set_usage_limit((1 << 32) + 1).is_err());
    k.set_usage_limit(5).unwrap();
    assert_eq!(k.clone().usage_limit(), 5, "clones share the limit");
    // Unwrapped copies are new handles with the default limit (and the key's shared count).
    let kek = Key::generate(KeyType::Aes256).unwrap();
    let (back, _) = keys::unwrap(&kek, &keys::wrap(&kek, &k, 1).unwrap()).unwrap();
    assert_eq!(back.usage_limit(), keys::DEFAULT_USAGE_LIMIT);
}

#[test]
fn debug_never_prints_material() {
    let k = Key::import(KeyType::Aes256Xts, &(0x10u8..0x50).collect::<Vec<_>>()).unwrap();
    let d = format!("{k:?}");
    assert!(d.starts_with("Key"), "{d}");
    assert!(!d.contains("101112"), "{d}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any change to any byte of a wrapped blob, of any key version, is refused.
    #[test]
    fn prop_wrap_tamper(version in any::<u32>(), xts in any::<bool>(), pos in any::<prop::sample::Index>(),
                        mask in 1u8..=255) {
        let kek = Key::import(KeyType::Aes256, &[0x5Au8; 32]).unwrap();
        let t = if xts { KeyType::Aes256Xts } else { KeyType::Aes256 };
        let key = Key::generate(t).unwrap();
        let blob = keys::wrap(&kek, &key, version).unwrap();
        let (back, v) = keys::unwrap(&kek, &blob).unwrap();
        prop_assert_eq!((back.id(), v), (key.id(), version));
        let mut b = blob.clone();
        b[pos.index(blob.len())] ^= mask;
        prop_assert!(is_auth_failure(&keys::unwrap(&kek, &b)));
    }

    /// Arbitrary bytes are never accepted as a wrapped blob (and never panic).
    #[test]
    fn prop_unwrap_garbage(mut data in prop::collection::vec(any::<u8>(), 0..160)) {
        let kek = Key::import(KeyType::Aes256, &[0x5Au8; 32]).unwrap();
        if data.len() >= 18 {
            data[0] = b'W';
            data[1] = 1;
            data[2..18].copy_from_slice(&kek.id());
        }
        prop_assert!(is_auth_failure(&keys::unwrap(&kek, &data)));
    }
}

// ---- Finding 5 of the security review: the usage count is per key, not per handle ----

/// Two handles imported from the same material, and a key unwrapped twice from one blob, share
/// one count; the limit is reached through two handles together.
#[test]
fn usage_count_is_shared_by_every_handle_of_a_key() {
    use cellar::cell::{CellCipher, CellMode};
    let a = Key::generate(KeyType::Aes256).unwrap();
    let b = Key::import(KeyType::Aes256, &a.dangerous_export_raw()).unwrap();
    let (ca, cb) = (
        CellCipher::new(&a, CellMode::Randomized, 1).unwrap(),
        CellCipher::new(&b, CellMode::Randomized, 1).unwrap(),
    );
    ca.encrypt(b"", b"1").unwrap();
    cb.encrypt(b"", b"2").unwrap();
    cb.encrypt(b"", b"3").unwrap();
    assert_eq!((a.usage_count(), b.usage_count()), (3, 3));
    // The limit is per handle, checked against the shared count: 5 allows two more in total.
    a.set_usage_limit(5).unwrap();
    b.set_usage_limit(5).unwrap();
    ca.encrypt(b"", b"4").unwrap();
    cb.encrypt(b"", b"5").unwrap();
    assert!(matches!(ca.encrypt(b"", b"6"), Err(Error::UsageLimit(_))));
    assert!(matches!(cb.encrypt(b"", b"6"), Err(Error::UsageLimit(_))));
    assert_eq!(a.usage_count(), 5);

    // Unwrapped twice from one blob: one count, shared with the original.
    let kek = Key::generate(KeyType::Aes256).unwrap();
    let blob = keys::wrap(&kek, &a, 1).unwrap();
    let (u1, _) = keys::unwrap(&kek, &blob).unwrap();
    let (u2, _) = keys::unwrap(&kek, &blob).unwrap();
    assert_eq!(u1.usage_count(), 5);
    u1.set_usage_limit(6).unwrap();
    u2.set_usage_limit(6).unwrap();
    CellCipher::new(&u1, CellMode::Randomized, 1).unwrap().encrypt(b"", b"7").unwrap();
    let c2 = CellCipher::new(&u2, CellMode::Randomized, 1).unwrap();
    assert!(matches!(c2.encrypt(b"", b"8"), Err(Error::UsageLimit(_))));
    assert_eq!(a.usage_count(), 6);
    // Another type with other material is another key.
    let x = Key::generate(KeyType::Aes256Xts).unwrap();
    assert_eq!(x.usage_count(), 0);
}

/// A host restores a persisted count: raised, never lowered, shared with other handles.
#[test]
fn usage_count_restore_raises_only() {
    let a = Key::generate(KeyType::Aes256).unwrap();
    let b = Key::import(KeyType::Aes256, &a.dangerous_export_raw()).unwrap();
    a.restore_usage_count(1000);
    assert_eq!(b.usage_count(), 1000);
    b.restore_usage_count(10);
    assert_eq!(a.usage_count(), 1000, "never lowered");
    a.set_usage_limit(1001).unwrap();
    let c = cellar::cell::CellCipher::new(&a, cellar::cell::CellMode::Randomized, 1).unwrap();
    c.encrypt(b"", b"x").unwrap();
    assert!(matches!(c.encrypt(b"", b"y"), Err(Error::UsageLimit(_))));
    // Once every handle of the key is gone its count goes too (documented): a host that frees
    // all of them persists the count first and restores it on the next import.
    let raw = a.dangerous_export_raw();
    drop((c, a, b));
    assert_eq!(Key::import(KeyType::Aes256, &raw).unwrap().usage_count(), 0);
}
