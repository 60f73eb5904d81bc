//! Concurrency stress over every handle type, bounded in time (about a second per test), with
//! every result verified: keys shared by many threads, page ciphers and cell ciphers used from
//! several threads at once, and a keyring whose rotate/lock/unlock race wrap/unwrap.

use cellar::keys::KeyType;
use cellar::{CellCipher, CellMode, Error, Key, Keyring, PageCipher, PageMode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const THREADS: usize = 4;
const BUDGET: Duration = Duration::from_millis(800);

/// Runs `f(thread_index, iteration)` on THREADS threads until the budget is spent; returns
/// the total number of iterations.
fn race(f: impl Fn(usize, u64) + Send + Sync + 'static) -> u64 {
    let f = Arc::new(f);
    let total = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + BUDGET;
    let hs: Vec<_> = (0..THREADS)
        .map(|t| {
            let (f, total) = (f.clone(), total.clone());
            thread::spawn(move || {
                let mut i = 0u64;
                while Instant::now() < end {
                    f(t, i);
                    i += 1;
                }
                total.fetch_add(i, Ordering::Relaxed);
            })
        })
        .collect();
    for h in hs {
        h.join().expect("a stress thread panicked");
    }
    total.load(Ordering::Relaxed)
}

#[test]
fn page_ciphers_shared_by_threads() {
    let k = Key::generate(KeyType::Aes256).unwrap();
    let x = Key::generate(KeyType::Aes256Xts).unwrap();
    let gcm = Arc::new(PageCipher::new(&k, PageMode::Gcm, 9, 3, 0).unwrap());
    let xts = Arc::new(PageCipher::new(&x, PageMode::Xts, 9, 3, 0).unwrap());
    let n = race(move |t, i| {
        let ps = 4096;
        let page_no = (t as u64) << 32 | i;
        let mut pt = vec![0u8; ps];
        for (j, b) in pt.iter_mut().enumerate() {
            *b = (j as u64 ^ page_no) as u8;
        }
        for (c, payload) in [(&gcm, ps - 48), (&xts, ps)] {
            let mut ct = vec![0u8; ps];
            c.encrypt(page_no, &pt, &mut ct).unwrap();
            let mut back = vec![0xAAu8; ps];
            c.decrypt(page_no, &ct, &mut back).unwrap();
            assert_eq!(back[..payload], pt[..payload]);
            if c.mode() == PageMode::Gcm {
                let mut bad = vec![0xAAu8; ps];
                let e = c.decrypt(page_no + 1, &ct, &mut bad).unwrap_err();
                assert!(matches!(e, Error::AuthenticationFailed(_)), "{e}");
                assert!(bad.iter().all(|&b| b == 0));
            }
        }
    });
    assert!(n > 0);
}

#[test]
fn cell_ciphers_shared_by_threads() {
    let k = Key::generate(KeyType::Aes256).unwrap();
    let ciphers: Arc<Vec<CellCipher>> = Arc::new(
        [CellMode::Randomized, CellMode::Deterministic, CellMode::MssqlRandomized, CellMode::MssqlDeterministic]
            .into_iter()
            .map(|m| CellCipher::new(&k, m, 1).unwrap())
            .collect(),
    );
    let n = race(move |t, i| {
        let c = &ciphers[(i as usize + t) % 4];
        let ctx: &[u8] = if c.mode().is_mssql() { b"" } else { b"tbl.col" };
        let pt = format!("value {t} {i}").into_bytes();
        let ct = c.encrypt(ctx, &pt).unwrap();
        assert_eq!(&c.decrypt(ctx, &ct).unwrap()[..], &pt[..]);
        let mut bad = ct.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let e = c.decrypt(ctx, &bad).unwrap_err();
        assert!(matches!(e, Error::AuthenticationFailed(_)), "{e}");
    });
    assert!(n > 0);
}

#[test]
fn keys_shared_by_threads() {
    let k = Arc::new(Key::generate(KeyType::Aes256).unwrap());
    let data = Arc::new(Key::generate(KeyType::Aes256Xts).unwrap());
    let n = race(move |t, i| {
        // Clone, derive, wrap/unwrap and make ciphers from one key on every thread.
        let kc = (*k).clone();
        let child = kc.derive(KeyType::Aes256, format!("t{t}").as_bytes()).unwrap();
        assert_eq!(child.id(), k.derive(KeyType::Aes256, format!("t{t}").as_bytes()).unwrap().id());
        let blob = cellar::keys::wrap(&kc, &data, i as u32).unwrap();
        let (back, v) = cellar::keys::unwrap(&kc, &blob).unwrap();
        assert_eq!((back.id(), v), (data.id(), i as u32));
        let c = CellCipher::new(&child, CellMode::Randomized, 1).unwrap();
        let ct = c.encrypt(b"", b"x").unwrap();
        assert_eq!(&c.decrypt(b"", &ct).unwrap()[..], b"x");
    });
    assert!(n > 0);
}

#[test]
fn keyring_rotate_lock_unlock_race_wrap_unwrap() {
    let k1 = Key::generate(KeyType::Aes256).unwrap();
    let ring = Arc::new(Keyring::new(Some(&k1)).unwrap());
    let keys = Arc::new(std::sync::Mutex::new(vec![k1]));
    let data = Arc::new(Key::generate(KeyType::Aes256Xts).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // One admin thread rotates, locks and unlocks (with every version's key) in a loop.
    let admin = {
        let (ring, keys, stop) = (ring.clone(), keys.clone(), stop.clone());
        thread::spawn(move || {
            let mut rounds = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if rounds % 4 == 0 && rounds < 40 {
                    let nk = Key::generate(KeyType::Aes256).unwrap();
                    ring.rotate(Some(&nk)).unwrap();
                    keys.lock().unwrap().push(nk);
                }
                ring.lock().unwrap();
                for k in keys.lock().unwrap().iter() {
                    ring.unlock(k).unwrap();
                }
                // Leave the workers an unlocked window (on a loaded 2-core machine a tight
                // lock/unlock loop can otherwise keep every worker call on the locked side).
                thread::sleep(std::time::Duration::from_micros(300));
                rounds += 1;
            }
            rounds
        })
    };
    let blob0 = loop {
        // The first wrap may meet a lock; retry until unlocked.
        match ring.wrap(&data) {
            Ok(b) => break b,
            Err(Error::TenantLocked(_)) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    let (ok, locked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (ok2, locked2, ring2, data2, blob1) = (ok.clone(), locked.clone(), ring.clone(), data.clone(), blob0.clone());
    race(move |_, _| {
        let check = |r: Result<(Key, u32), Error>| match r {
            Ok((k, _)) => {
                assert_eq!(k.id(), data2.id());
                ok2.fetch_add(1, Ordering::Relaxed);
            }
            Err(Error::TenantLocked(_)) => {
                locked2.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => panic!("unexpected error: {e}"),
        };
        check(ring2.unwrap(&blob1));
        match ring2.wrap(&data2) {
            Ok(b) => check(ring2.unwrap(&b)),
            Err(Error::TenantLocked(_)) => {
                locked2.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    });
    stop.store(true, Ordering::Relaxed);
    let rounds = admin.join().unwrap();
    assert!(rounds > 0);
    assert!(ok.load(Ordering::Relaxed) > 0, "no unwrap succeeded");
    // After the race, with everything unlocked, the first blob still unwraps.
    assert!(!ring.is_locked().unwrap());
    assert_eq!(ring.unwrap(&blob0).unwrap().0.id(), data.id());
    eprintln!("keyring stress: {} ok, {} locked, {rounds} admin rounds", ok.load(Ordering::Relaxed), locked.load(Ordering::Relaxed));
}
