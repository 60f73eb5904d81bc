//! The tenant keyring through the Rust API: lifecycle, errors, blob format, lock semantics,
//! external providers, export/import, approval, and a bounded concurrency stress test.

use aws_lc_rs::key_wrap::{self, KeyWrapPadded};
use cellar::keyring::{KeyProvider, Keyring, ProviderError};
use cellar::{keys, last_operation_approved, Approval, Key, KeyId, KeyType};
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

const PW: &[u8] = b"correct horse battery staple";
const IT: u32 = 100_000;

fn approved() {
    assert_eq!(last_operation_approved(), Approval::Approved);
}

fn aes() -> Key {
    Key::generate(KeyType::Aes256).unwrap()
}

fn xts() -> Key {
    Key::generate(KeyType::Aes256Xts).unwrap()
}

fn code<T: std::fmt::Debug>(r: cellar::Result<T>) -> i32 {
    r.expect_err("expected an error").code()
}

const NOT_FOUND: i32 = 7;
const LOCKED: i32 = 8;
const AUTH: i32 = 4;
const INVALID_KEY: i32 = 5;
const INVALID_ARG: i32 = 2;
const PROVIDER: i32 = 11;

#[test]
fn full_lifecycle() {
    let kr = Keyring::new(None).unwrap();
    approved();
    assert_eq!(kr.active_version().unwrap(), 1);
    assert!(!kr.is_locked().unwrap());

    let dks: Vec<Key> = (0..4).map(|i| if i % 2 == 0 { aes() } else { xts() }).collect();
    let blobs: Vec<Vec<u8>> = dks
        .iter()
        .map(|k| {
            let b = kr.wrap(k).unwrap();
            approved();
            b
        })
        .collect();
    assert_eq!(blobs[0].len(), keys::wrapped_len(KeyType::Aes256));
    assert_eq!(blobs[1].len(), keys::wrapped_len(KeyType::Aes256Xts));

    // Rotate twice: generated, then a customer key.
    assert_eq!(kr.rotate(None).unwrap(), 2);
    approved();
    let customer = aes();
    assert_eq!(kr.rotate(Some(&customer)).unwrap(), 3);
    approved();
    assert_eq!(kr.active_version().unwrap(), 3);
    let v = kr.versions().unwrap();
    assert_eq!(v.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(v[2].1, customer.id());

    // Old blobs still unwrap under version 1.
    let (k, ver) = kr.unwrap(&blobs[0]).unwrap();
    approved();
    assert_eq!((k.id(), ver), (dks[0].id(), 1));

    // Rewrap everything to version 3.
    let rewrapped: Vec<Vec<u8>> = blobs
        .iter()
        .map(|b| {
            let r = kr.rewrap(b).unwrap();
            approved();
            r
        })
        .collect();
    for (r, k) in rewrapped.iter().zip(&dks) {
        assert_eq!(keys::wrapped_kek_id(r).unwrap(), customer.id());
        let (u, ver) = kr.unwrap(r).unwrap();
        assert_eq!((u.id(), u.key_type(), ver), (k.id(), k.key_type(), 3));
        assert_eq!(u.dangerous_export_raw()[..], k.dangerous_export_raw()[..]);
    }

    // Retire version 1: its blobs are gone for good, the rewrapped ones work.
    kr.retire(1).unwrap();
    assert_eq!(code(kr.unwrap(&blobs[0])), NOT_FOUND);
    assert_eq!(code(kr.rewrap(&blobs[0])), NOT_FOUND);
    assert!(kr.unwrap(&rewrapped[0]).is_ok());
    assert!(kr.version_info(1).unwrap().retired);
    assert_eq!(kr.versions().unwrap().len(), 2);

    // Version 2 was generated here and never exported: a lock could never be undone, so it is
    // refused until the keyring is exported (issue 20).
    assert_eq!(code(kr.lock()), INVALID_ARG);
    assert!(!kr.is_locked().unwrap());
    let _escrow = kr.export_with_root_key(&aes()).unwrap();

    // Lock: wrap and unwrap fail with tenant-locked; metadata stays.
    kr.lock().unwrap();
    assert!(kr.is_locked().unwrap());
    assert_eq!(code(kr.wrap(&dks[0])), LOCKED);
    assert_eq!(last_operation_approved(), Approval::Unknown);
    assert_eq!(code(kr.unwrap(&rewrapped[0])), LOCKED);
    assert_eq!(code(kr.rewrap(&rewrapped[0])), LOCKED);
    assert_eq!(code(kr.rotate(None)), LOCKED);
    assert_eq!(code(kr.export_with_password(PW, IT)), LOCKED);
    assert_eq!(kr.active_version().unwrap(), 3);
    assert_eq!(kr.versions().unwrap().len(), 2);
    assert!(kr.version_info(3).unwrap().locked);

    // Unlock with a wrong key (refused), then the right one.
    assert_eq!(code(kr.unlock(&aes())), NOT_FOUND);
    assert_eq!(code(kr.unlock(&xts())), INVALID_KEY);
    assert!(kr.is_locked().unwrap());
    assert_eq!(kr.unlock(&customer).unwrap(), 3);
    approved();
    assert!(!kr.is_locked().unwrap());
    assert_eq!(kr.unwrap(&rewrapped[1]).unwrap().0.id(), dks[1].id());
    // Version 2 is retained but still locked: its blobs say so until its key comes back.
    let b2 = {
        let kr2 = Keyring::new(Some(&customer)).unwrap();
        kr2.wrap(&dks[0]).unwrap()
    };
    // Same tenant key but wrapped as version 1 by another keyring: the inner version binds it.
    assert_eq!(code(kr.unwrap(&b2)), AUTH);
    assert!(kr.version_info(2).unwrap().locked);

    // Export with a password, import into a fresh keyring, unwrap.
    // Version 2 is still locked: the export records it by id and it comes back locked.
    let exp = kr.export_with_password(PW, IT).unwrap();
    approved();
    assert_eq!(exp.len(), kr.export_len(true).unwrap());
    assert_eq!(exp[0], 0x4B);
    let kr2 = Keyring::import_with_password(&exp, PW).unwrap();
    approved();
    assert_eq!(kr2.active_version().unwrap(), 3);
    assert_eq!(kr2.versions().unwrap(), kr.versions().unwrap());
    assert!(kr2.version_info(1).unwrap().retired);
    assert!(kr2.version_info(2).unwrap().locked && !kr2.version_info(2).unwrap().retired);
    assert_eq!(code(kr2.unwrap(&b2)), AUTH);
    for (r, k) in rewrapped.iter().zip(&dks) {
        assert_eq!(kr2.unwrap(r).unwrap().0.id(), k.id());
    }
    assert_eq!(code(kr2.unwrap(&blobs[0])), NOT_FOUND);
    assert_eq!(kr2.unlock(&customer).unwrap(), 3); // already unlocked: accepted, no change

    // Wrong password and a tampered export are refused.
    assert_eq!(code(Keyring::import_with_password(&exp, b"wrong horse battery staple")), AUTH);
    for i in [0usize, 1, 5, 10, exp.len() / 2, exp.len() - 1] {
        let mut t = exp.clone();
        t[i] ^= 0x01;
        assert!(Keyring::import_with_password(&t, PW).is_err(), "byte {i}");
    }
    let mut t = exp.clone();
    t[30] ^= 0x80;
    assert_eq!(code(Keyring::import_with_password(&t, PW)), AUTH);
}

#[test]
fn blobs_are_spec3_wrapped_keys_under_the_tenant_key() {
    let tenant = aes();
    let kr = Keyring::new(Some(&tenant)).unwrap();
    let dk = xts();
    let blob = kr.wrap(&dk).unwrap();
    assert_eq!(&blob[..2], &[0x57, 0x01]);
    assert_eq!(blob[2..18], tenant.id());
    let (k, v) = keys::unwrap(&tenant, &blob).unwrap();
    assert_eq!((k.id(), v), (dk.id(), 1));
    // And a blob made by keys::wrap under the tenant key with the right version opens too.
    let b = keys::wrap(&tenant, &dk, 1).unwrap();
    assert_eq!(b, blob); // KWP is deterministic
    // A wrong inner version is refused even though it authenticates under the tenant key.
    let b = keys::wrap(&tenant, &dk, 7).unwrap();
    assert_eq!(code(kr.unwrap(&b)), AUTH);
    // Independent AES-KWP (aws-lc-rs directly) opens the blob given the format.
    let kek = key_wrap::AesKek::new(&key_wrap::AES_256, &tenant.dangerous_export_raw()).unwrap();
    let mut out = vec![0u8; blob.len()];
    let inner = kek.unwrap_with_padding(&blob[18..], &mut out).unwrap();
    assert_eq!(inner[0], 2);
    assert_eq!(&inner[1..5], &1u32.to_be_bytes());
    assert_eq!(inner[5..21], dk.id());
    assert_eq!(inner[21..], dk.dangerous_export_raw()[..]);
}

#[test]
fn errors_and_tamper_matrix() {
    let kr = Keyring::new(None).unwrap();
    let dk = aes();
    let blob = kr.wrap(&dk).unwrap();
    for i in 0..blob.len() {
        let mut t = blob.clone();
        t[i] ^= 0x20;
        let want = if (2..18).contains(&i) { NOT_FOUND } else { AUTH };
        assert_eq!(code(kr.unwrap(&t)), want, "byte {i}");
    }
    assert_eq!(code(kr.unwrap(&blob[..blob.len() - 8])), AUTH);
    assert_eq!(code(kr.unwrap(&[])), AUTH);
    let mut longer = blob.clone();
    longer.extend_from_slice(&[0; 8]);
    assert_eq!(code(kr.unwrap(&longer)), AUTH);
    // A blob of another keyring: unknown KEK id.
    let other = Keyring::new(None).unwrap();
    assert_eq!(code(kr.unwrap(&other.wrap(&dk).unwrap())), NOT_FOUND);

    assert_eq!(code(Keyring::new(Some(&xts()))), INVALID_KEY);
    assert_eq!(code(kr.rotate(Some(&xts()))), INVALID_KEY);
    assert_eq!(code(kr.retire(1)), INVALID_ARG);
    assert_eq!(code(kr.retire(9)), NOT_FOUND);
    assert_eq!(code(kr.version_info(9)), NOT_FOUND);
    let c = aes();
    kr.rotate(Some(&c)).unwrap();
    assert_eq!(code(kr.rotate(Some(&c))), INVALID_KEY); // same id twice
    kr.retire(1).unwrap();
    kr.retire(1).unwrap(); // idempotent
    let v3 = kr.rotate(None).unwrap();
    kr.retire(2).unwrap();
    assert_eq!(code(kr.rotate(Some(&c))), INVALID_KEY); // retired id stays reserved
    assert_eq!(code(kr.unlock(&c)), NOT_FOUND);
    assert_eq!(kr.versions().unwrap().iter().map(|v| v.0).collect::<Vec<_>>(), vec![v3]);
    // The keyring holds its own copy: freeing the caller's handle changes nothing.
    let c2 = aes();
    let id = c2.id();
    kr.rotate(Some(&c2)).unwrap();
    drop(c2);
    let b = kr.wrap(&dk).unwrap();
    assert_eq!(b[2..18], id);
    assert!(kr.unwrap(&b).is_ok());
}

#[test]
fn lock_waits_for_no_one_and_partial_unlock() {
    let k1 = aes();
    let k2 = aes();
    let kr = Keyring::new(Some(&k1)).unwrap();
    let b1 = kr.wrap(&aes()).unwrap();
    kr.rotate(Some(&k2)).unwrap();
    let b2 = kr.wrap(&aes()).unwrap();
    kr.lock().unwrap();
    kr.lock().unwrap();
    // Only an old version back: still locked (the active one is needed).
    assert_eq!(kr.unlock(&k1).unwrap(), 1);
    assert!(kr.is_locked().unwrap());
    assert_eq!(code(kr.unwrap(&b1)), LOCKED);
    assert_eq!(kr.unlock(&k2).unwrap(), 2);
    assert_eq!(kr.unlock(&k2).unwrap(), 2); // idempotent
    assert!(!kr.is_locked().unwrap());
    assert!(kr.unwrap(&b1).is_ok() && kr.unwrap(&b2).is_ok());
    // Retire while locked is allowed (crypto-shredding a locked tenant).
    kr.lock().unwrap();
    kr.retire(1).unwrap();
    kr.unlock(&k2).unwrap();
    assert_eq!(code(kr.unwrap(&b1)), NOT_FOUND);
}

#[test]
fn export_import_root_key() {
    let root = aes();
    let kr = Keyring::new(None).unwrap();
    let dk = aes();
    let b1 = kr.wrap(&dk).unwrap();
    kr.rotate(None).unwrap();
    kr.rotate(None).unwrap();
    kr.retire(2).unwrap();
    let exp = kr.export_with_root_key(&root).unwrap();
    approved();
    assert_eq!(exp.len(), kr.export_len(false).unwrap());
    assert_eq!(&exp[..2], &[0x52, 0x02]);
    assert_eq!(exp[2..18], root.id());
    let kr2 = Keyring::import_with_root_key(&exp, &root).unwrap();
    approved();
    assert_eq!(kr2.active_version().unwrap(), 3);
    assert_eq!(kr2.unwrap(&b1).unwrap().0.id(), dk.id());
    assert_eq!(kr2.versions().unwrap(), kr.versions().unwrap());
    // Both keyrings wrap identically (same active key).
    assert_eq!(kr2.wrap(&dk).unwrap(), kr.wrap(&dk).unwrap());

    assert_eq!(code(Keyring::import_with_root_key(&exp, &aes())), AUTH);
    assert_eq!(code(Keyring::import_with_root_key(&exp, &xts())), INVALID_KEY);
    assert_eq!(code(Keyring::import_with_password(&exp, PW)), INVALID_ARG);
    let pexp = kr.export_with_password(PW, IT).unwrap();
    assert_eq!(code(Keyring::import_with_root_key(&pexp, &root)), INVALID_ARG);
    for i in 18..exp.len() {
        let mut t = exp.clone();
        t[i] ^= 1;
        assert_eq!(code(Keyring::import_with_root_key(&t, &root)), AUTH, "byte {i}");
    }
    assert_eq!(code(Keyring::import_with_root_key(&exp[..exp.len() - 8], &root)), AUTH);
    assert_eq!(code(kr.export_with_root_key(&xts())), INVALID_KEY);
    assert_eq!(code(kr.export_with_password(b"short", IT)), INVALID_ARG);
    assert_eq!(code(kr.export_with_password(PW, 1000)), INVALID_ARG);
}

/// A stand-in for an HSM: AES-KWP under a key that Cellar never sees (aws-lc-rs directly).
struct TestHsm {
    key: Zeroizing<Vec<u8>>,
    id: KeyId,
    fail: AtomicBool,
    calls: AtomicUsize,
}

impl TestHsm {
    fn new(id_byte: u8) -> Arc<Self> {
        let raw = aes().dangerous_export_raw();
        Arc::new(TestHsm { key: raw, id: [id_byte; 16], fail: AtomicBool::new(false), calls: AtomicUsize::new(0) })
    }
}

impl KeyProvider for TestHsm {
    fn key_id(&self) -> KeyId {
        self.id
    }
    fn wrap(&self, record: &[u8]) -> Result<Vec<u8>, ProviderError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.fail.load(Ordering::Relaxed) {
            return Err(ProviderError::Failed);
        }
        let k = key_wrap::AesKek::new(&key_wrap::AES_256, &self.key).map_err(|_| ProviderError::Failed)?;
        let mut out = vec![0u8; record.len() + 16];
        let n = k.wrap_with_padding(record, &mut out).map_err(|_| ProviderError::Failed)?.len();
        out.truncate(n);
        Ok(out)
    }
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.fail.load(Ordering::Relaxed) {
            return Err(ProviderError::Failed);
        }
        let k = key_wrap::AesKek::new(&key_wrap::AES_256, &self.key).map_err(|_| ProviderError::Failed)?;
        let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
        let n = k.unwrap_with_padding(wrapped, &mut out).map_err(|_| ProviderError::Rejected)?.len();
        out.truncate(n);
        Ok(out)
    }
}

#[test]
fn external_provider() {
    let kr = Keyring::new(None).unwrap();
    let dk = aes();
    let b1 = kr.wrap(&dk).unwrap();
    let hsm = TestHsm::new(0xA5);

    // A failing provider is refused at registration and nothing is added.
    hsm.fail.store(true, Ordering::Relaxed);
    assert_eq!(code(kr.add_provider(hsm.clone())), PROVIDER);
    assert_eq!(kr.active_version().unwrap(), 1);
    assert_eq!(kr.versions().unwrap().len(), 1);
    hsm.fail.store(false, Ordering::Relaxed);

    assert_eq!(kr.add_provider(hsm.clone()).unwrap(), 2);
    // Provider-performed wrapping: succeeded, not approved (security review finding 4).
    assert_eq!(last_operation_approved(), Approval::NotApproved);
    let info = kr.version_info(2).unwrap();
    assert!(info.provider && info.active && !info.locked);
    assert_eq!(code(kr.add_provider(hsm.clone())), INVALID_KEY); // same id twice

    let bp = kr.wrap(&dk).unwrap();
    // Provider-performed wrapping: succeeded, not approved (security review finding 4).
    assert_eq!(last_operation_approved(), Approval::NotApproved);
    assert_eq!(bp[2..18], [0xA5; 16]);
    // The HSM does AES-KWP: the blob is byte-for-byte a SPEC 3 blob (same length too).
    assert_eq!(bp.len(), keys::wrapped_len(KeyType::Aes256));
    let (k, v) = kr.unwrap(&bp).unwrap();
    // Provider-performed wrapping: succeeded, not approved (security review finding 4).
    assert_eq!(last_operation_approved(), Approval::NotApproved);
    assert_eq!((k.id(), v), (dk.id(), 2));
    let r = kr.rewrap(&b1).unwrap();
    // Provider-performed wrapping: succeeded, not approved (security review finding 4).
    assert_eq!(last_operation_approved(), Approval::NotApproved);
    assert_eq!(r, bp);

    // Failures: provider-failed, nothing changed; tamper: authentication failed.
    hsm.fail.store(true, Ordering::Relaxed);
    assert_eq!(code(kr.wrap(&dk)), PROVIDER);
    assert_eq!(code(kr.unwrap(&bp)), PROVIDER);
    assert_eq!(code(kr.rewrap(&b1)), PROVIDER);
    assert_eq!(kr.active_version().unwrap(), 2);
    assert_eq!(kr.versions().unwrap().len(), 2);
    assert!(!kr.is_locked().unwrap());
    hsm.fail.store(false, Ordering::Relaxed);
    let mut t = bp.clone();
    let last = t.len() - 1;
    t[last] ^= 1;
    assert_eq!(code(kr.unwrap(&t)), AUTH);

    // Lock drops the provider; unlock_provider attaches it again.
    let k0 = aes();
    let kr = Keyring::new(Some(&k0)).unwrap();
    let b0 = kr.wrap(&dk).unwrap();
    kr.add_provider(hsm.clone()).unwrap();
    let bp = kr.wrap(&dk).unwrap();
    kr.lock().unwrap();
    assert_eq!(kr.unlock(&k0).unwrap(), 1);
    assert!(kr.is_locked().unwrap());
    assert_eq!(code(kr.unwrap(&bp)), LOCKED);
    let before = hsm.calls.load(Ordering::Relaxed);
    assert_eq!(code(kr.wrap(&dk)), LOCKED);
    assert_eq!(hsm.calls.load(Ordering::Relaxed), before, "a locked keyring must not call the provider");
    assert_eq!(code(kr.unlock_provider(TestHsm::new(0x11))), NOT_FOUND);
    assert_eq!(kr.unlock_provider(hsm.clone()).unwrap(), 2);
    assert!(!kr.is_locked().unwrap());
    assert_eq!(kr.unwrap(&bp).unwrap().0.id(), dk.id());

    // Export records the provider as a reference; import brings it back detached.
    let root = aes();
    let exp = kr.export_with_root_key(&root).unwrap();
    let kr2 = Keyring::import_with_root_key(&exp, &root).unwrap();
    assert!(kr2.is_locked().unwrap());
    let info = kr2.version_info(2).unwrap();
    assert!(info.provider && info.locked);
    assert_eq!(code(kr2.unwrap(&bp)), LOCKED);
    kr2.unlock_provider(hsm.clone()).unwrap();
    assert_eq!(kr2.unwrap(&bp).unwrap().0.id(), dk.id());
    // Version 1 (local) came across with its material.
    assert_eq!(kr2.unwrap(&b0).unwrap().0.id(), dk.id());
    assert_eq!(kr2.unwrap(&b0).unwrap().1, 1);
    // Attaching to a version that already has its provider just replaces it.
    assert_eq!(kr2.unlock_provider(hsm).unwrap(), 2);
    assert_eq!(kr2.versions().unwrap().len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn wrap_unwrap_round_trip_and_tamper(material in proptest::collection::vec(any::<u8>(), 32), flip in 18usize..82, bit in 0u8..8) {
        let kr = Keyring::new(None).unwrap();
        let dk = Key::import(KeyType::Aes256, &material).unwrap();
        let b = kr.wrap(&dk).unwrap();
        let (k, v) = kr.unwrap(&b).unwrap();
        prop_assert_eq!(k.id(), dk.id());
        prop_assert_eq!(v, 1);
        let mut t = b.clone();
        t[flip] ^= 1 << bit;
        prop_assert_eq!(kr.unwrap(&t).unwrap_err().code(), AUTH);
    }
}

/// A blob and the id of the data key inside it.
type Made = (Vec<u8>, KeyId);

/// Several threads wrap and unwrap while another rotates, locks and unlocks. Every success must
/// be right (the data key that was wrapped, under a real version); every failure must be
/// tenant-locked; at the end every blob ever made still opens.
#[test]
fn concurrency_stress() {
    const WORKERS: usize = 4;
    const MAX_ITERS: usize = 20_000;
    const ROUNDS: usize = 15;
    let first = aes();
    let kr = Arc::new(Keyring::new(Some(&first)).unwrap());
    let made: Arc<Mutex<Vec<Made>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let ok_count = Arc::new(AtomicUsize::new(0));
    let locked_count = Arc::new(AtomicUsize::new(0));

    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (kr, made, ok_count, locked_count, stop) =
            (kr.clone(), made.clone(), ok_count.clone(), locked_count.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            // Run until the controller is done (bounded), so locks overlap the work.
            for i in 0..MAX_ITERS {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let dk = if (i + w) % 3 == 0 { xts() } else { aes() };
                match kr.wrap(&dk) {
                    Ok(b) => {
                        assert_eq!(last_operation_approved(), Approval::Approved);
                        match kr.unwrap(&b) {
                            Ok((k, v)) => {
                                assert_eq!(k.id(), dk.id());
                                assert_eq!(k.dangerous_export_raw()[..], dk.dangerous_export_raw()[..]);
                                assert!(v >= 1);
                                ok_count.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                assert_eq!(e.code(), LOCKED, "{e}");
                                locked_count.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        if i % 4 == 0 {
                            made.lock().unwrap().push((b, dk.id()));
                        }
                    }
                    Err(e) => {
                        assert_eq!(e.code(), LOCKED, "{e}");
                        locked_count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // Re-open an older blob from any thread.
                let old = made.lock().unwrap().get(i % 7).cloned();
                if let Some((b, id)) = old {
                    match kr.rewrap(&b) {
                        Ok(r) => {
                            match kr.unwrap(&r) {
                                Ok((k, _)) => assert_eq!(k.id(), id),
                                Err(e) => assert_eq!(e.code(), LOCKED, "{e}"),
                            }
                        }
                        Err(e) => assert_eq!(e.code(), LOCKED, "{e}"),
                    }
                }
            }
        }));
    }

    let ctl = {
        let (kr, stop) = (kr.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut tenant_keys = vec![first];
            for r in 0..ROUNDS {
                let k = aes();
                assert_eq!(kr.rotate(Some(&k)).unwrap() as usize, r + 2);
                tenant_keys.push(k);
                std::thread::yield_now();
                kr.lock().unwrap();
                assert!(kr.is_locked().unwrap());
                std::thread::sleep(std::time::Duration::from_millis(1));
                // Unlock newest first, so the keyring reopens before older versions are back.
                for k in tenant_keys.iter().rev() {
                    kr.unlock(k).unwrap();
                }
                assert!(!kr.is_locked().unwrap());
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    for w in workers {
        w.join().unwrap();
    }
    ctl.join().unwrap();

    assert_eq!(kr.active_version().unwrap() as usize, ROUNDS + 1);
    assert!(ok_count.load(Ordering::Relaxed) > 0);
    // The locks really overlapped the work (each window is 1 ms while four threads call in).
    assert!(locked_count.load(Ordering::Relaxed) > 0);
    let made = made.lock().unwrap();
    assert!(!made.is_empty());
    for (b, id) in made.iter() {
        let (k, v) = kr.unwrap(b).unwrap();
        assert_eq!(k.id(), *id);
        assert_eq!(kr.version_info(v).unwrap().key_id[..], b[2..18]);
    }
    eprintln!(
        "stress: {} ok round trips, {} tenant-locked refusals, {} blobs",
        ok_count.load(Ordering::Relaxed),
        locked_count.load(Ordering::Relaxed),
        made.len()
    );
}

// ---- Finding 3 of the security review: keyring generations and rollback ----

const ROLLBACK: &str = "rollback";

fn is_rollback<T: std::fmt::Debug>(r: cellar::Result<T>) -> bool {
    match r {
        Err(e) => e.code() == AUTH && e.to_string().contains(ROLLBACK),
        Ok(_) => false,
    }
}

/// Every change of the persisted state advances the generation by one; lock, unlock, attaching
/// a provider, retiring a retired version and failed changes do not; export/import keeps it.
#[test]
fn generation_advances_on_every_persisted_change() {
    let kr = Keyring::new(None).unwrap();
    assert_eq!(kr.generation().unwrap(), 1);
    kr.rotate(None).unwrap();
    assert_eq!(kr.generation().unwrap(), 2);
    let customer = aes();
    kr.rotate(Some(&customer)).unwrap();
    assert_eq!(kr.generation().unwrap(), 3);
    // A refused change (key id already present) leaves it.
    assert_eq!(code(kr.rotate(Some(&customer))), INVALID_KEY);
    assert_eq!(kr.generation().unwrap(), 3);
    let hsm = TestHsm::new(0x31);
    kr.add_provider(hsm.clone()).unwrap();
    assert_eq!(kr.generation().unwrap(), 4);
    kr.retire(1).unwrap();
    assert_eq!(kr.generation().unwrap(), 5);
    kr.retire(1).unwrap(); // already retired: nothing changes
    assert_eq!(kr.generation().unwrap(), 5);
    assert_eq!(code(kr.retire(4)), INVALID_ARG); // the active version
    assert_eq!(kr.generation().unwrap(), 5);
    // Version 2 was generated here and never exported: the lock must be forced (issue 20).
    kr.lock_with(cellar::keyring::LOCK_FORCE).unwrap();
    assert_eq!(kr.generation().unwrap(), 5, "known while locked; lock does not advance");
    kr.unlock(&customer).unwrap();
    kr.unlock_provider(hsm.clone()).unwrap();
    assert_eq!(kr.generation().unwrap(), 5, "unlock does not advance");
    let root = aes();
    let back = Keyring::import_with_root_key(&kr.export_with_root_key(&root).unwrap(), &root).unwrap();
    assert_eq!(back.generation().unwrap(), 5);
    let back = Keyring::import_with_password(&kr.export_with_password(PW, IT).unwrap(), PW).unwrap();
    assert_eq!(back.generation().unwrap(), 5);
    back.unlock_provider(hsm.clone()).unwrap();
    back.rotate(None).unwrap();
    assert_eq!(back.generation().unwrap(), 6, "an imported keyring continues from its generation");
}

/// The review's scenario: an export taken before `retire` brings the retired version back when
/// imported without a minimum; with the generation the host last saw it is refused, under both
/// seals, while the current export imports.
#[test]
fn export_before_retire_cannot_be_imported_past_it() {
    let root = aes();
    let kr = Keyring::new(None).unwrap();
    let dk = aes();
    let old_blob = kr.wrap(&dk).unwrap();
    kr.rotate(None).unwrap();
    let before_root = kr.export_with_root_key(&root).unwrap();
    let before_pw = kr.export_with_password(PW, IT).unwrap();
    let g_before = kr.generation().unwrap();
    kr.retire(1).unwrap();
    let after_root = kr.export_with_root_key(&root).unwrap();
    let after_pw = kr.export_with_password(PW, IT).unwrap();
    let seen = kr.generation().unwrap();
    assert_eq!(seen, g_before + 1);
    assert_eq!(kr.unwrap(&old_blob).unwrap_err().code(), NOT_FOUND);

    // Without a minimum the stale export resurrects version 1: the attack.
    let stale = Keyring::import_with_root_key(&before_root, &root).unwrap();
    assert_eq!(stale.unwrap(&old_blob).unwrap().0.id(), dk.id());

    // With the host's generation it is refused, and nothing is returned.
    assert!(is_rollback(Keyring::import_with_root_key_min_generation(&before_root, &root, seen)));
    assert_eq!(last_operation_approved(), Approval::Unknown);
    assert!(is_rollback(Keyring::import_with_password_min_generation(&before_pw, PW, seen)));
    // The current exports import, and version 1 stays shredded.
    let via_root = Keyring::import_with_root_key_min_generation(&after_root, &root, seen).unwrap();
    approved();
    let via_pw = Keyring::import_with_password_min_generation(&after_pw, PW, seen).unwrap();
    approved();
    for kr2 in [via_root, via_pw] {
        assert_eq!(kr2.generation().unwrap(), seen);
        assert_eq!(kr2.unwrap(&old_blob).unwrap_err().code(), NOT_FOUND);
    }
    // A minimum above the export's generation (a newer export exists) is refused too; the
    // stale export still imports with its own generation as the minimum.
    assert!(is_rollback(Keyring::import_with_root_key_min_generation(&after_root, &root, seen + 1)));
    assert!(Keyring::import_with_root_key_min_generation(&before_root, &root, g_before).is_ok());
    assert!(Keyring::import_with_root_key_min_generation(&before_root, &root, 0).is_ok());
    // The other errors come first: wrong key, wrong password.
    assert_eq!(code(Keyring::import_with_root_key_min_generation(&after_root, &aes(), 0)), AUTH);
    assert!(!is_rollback(Keyring::import_with_password_min_generation(&after_pw, b"wrong password here", 0)));
}

/// Seals a format-0x01 state (the layout before generations) under `root` the way the earlier
/// releases did, with aws-lc-rs's KWP directly.
fn v1_root_export(root: &Key, entries: &[(u32, u8, KeyId, Option<&[u8]>)], active: u32, outer_format: u8) -> Vec<u8> {
    let mut state = vec![0x52, 0x01];
    state.extend_from_slice(&active.to_be_bytes());
    state.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (n, kind, id, material) in entries {
        state.extend_from_slice(&n.to_be_bytes());
        state.push(*kind);
        state.extend_from_slice(id);
        if let Some(m) = material {
            state.push(1);
            state.extend_from_slice(m);
        }
    }
    let kek = key_wrap::AesKek::new(&key_wrap::AES_256, &root.dangerous_export_raw()).unwrap();
    let mut sealed = vec![0u8; state.len().div_ceil(8) * 8 + 8];
    let n = kek.wrap_with_padding(&state, &mut sealed).unwrap().len();
    sealed.truncate(n);
    let mut blob = vec![0x52, outer_format];
    blob.extend_from_slice(&root.id());
    blob.extend_from_slice(&sealed);
    blob
}

/// Exports in the first format (no generation) still import, as generation 0: accepted with no
/// minimum, refused by any minimum above 0. A format byte changed outside the seal is refused.
#[test]
fn version_1_exports_read_as_generation_0() {
    let root = aes();
    let (t1, t2) = (aes(), aes());
    let raw2 = t2.dangerous_export_raw();
    let v1 = v1_root_export(&root, &[(1, 3, t1.id(), None), (2, 1, t2.id(), Some(&raw2[..]))], 2, 0x01);
    let kr = Keyring::import_with_root_key(&v1, &root).unwrap();
    approved();
    assert_eq!(kr.generation().unwrap(), 0);
    assert_eq!(kr.active_version().unwrap(), 2);
    assert!(kr.version_info(1).unwrap().retired);
    let dk = aes();
    assert_eq!(kr.unwrap(&keys::wrap(&t2, &dk, 2).unwrap()).unwrap().0.id(), dk.id());
    assert!(Keyring::import_with_root_key_min_generation(&v1, &root, 0).is_ok());
    assert!(is_rollback(Keyring::import_with_root_key_min_generation(&v1, &root, 1)));
    // Re-exported, it is format 0x02 and keeps generation 0 until its next change.
    let again = kr.export_with_root_key(&root).unwrap();
    assert_eq!(again[1], 0x02);
    assert_eq!(Keyring::import_with_root_key(&again, &root).unwrap().generation().unwrap(), 0);
    kr.rotate(None).unwrap();
    assert_eq!(kr.generation().unwrap(), 1);
    // The outer format byte must match the sealed state's: 0x02 outside a 0x01 state, or the
    // reverse (a downgrade of a current export), is refused.
    let relabelled = v1_root_export(&root, &[(1, 1, t2.id(), Some(&raw2[..]))], 1, 0x02);
    assert_eq!(code(Keyring::import_with_root_key(&relabelled, &root)), AUTH);
    let mut downgraded = again.clone();
    downgraded[1] = 0x01;
    assert_eq!(code(Keyring::import_with_root_key(&downgraded, &root)), AUTH);
    let mut pw = kr.export_with_password(PW, IT).unwrap();
    assert_eq!(pw[1], 0x02);
    pw[1] = 0x01;
    assert_eq!(code(Keyring::import_with_password(&pw, PW)), AUTH);
    pw[1] = 0x03;
    assert_eq!(code(Keyring::import_with_password(&pw, PW)), AUTH);
}
