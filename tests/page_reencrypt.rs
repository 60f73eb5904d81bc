//! Online re-encryption: a file of pages under key version 1 is rewritten page by page under
//! version 2 while reader threads keep reading every page and must always get the right data.
//! GCM: readers pick the cipher from the key version in each page's trailer (no key needed to
//! read it). XTS: pages carry nothing, so the host keeps a watermark (pages below it are under
//! version 2), published only after the page is written, and readers choose by it.
//! Bounded in time: a fixed number of pages and a deadline for the readers.

use cellar::page::{self, PageCipher, PageMode};
use cellar::{last_operation_approved, Approval, Key, KeyType};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

const PAGES: usize = 256;
const PS: usize = 4096;
const READERS: usize = 3;

fn content(page_no: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (page_no as u8) ^ (i as u8).wrapping_mul(13)).collect()
}

/// The "file": one lock per page, like a buffer manager's page latch (a reader never sees a
/// torn page write; that is the engine's job, not the cipher's).
struct File {
    pages: Vec<RwLock<Vec<u8>>>,
}

fn run(mode: PageMode) {
    let kt = if mode == PageMode::Xts { KeyType::Aes256Xts } else { KeyType::Aes256 };
    let (k1, k2) = (Key::generate(kt).unwrap(), Key::generate(kt).unwrap());
    let v1 = PageCipher::new(&k1, mode, 21, 1, 0).unwrap();
    let v2 = PageCipher::new(&k2, mode, 21, 2, 0).unwrap();
    let payload = PS - mode.reserved_bytes();
    let file = File {
        pages: (0..PAGES)
            .map(|p| {
                let mut b = content(p, PS);
                v1.encrypt_in_place(p as u64, &mut b).unwrap();
                RwLock::new(b)
            })
            .collect(),
    };
    let watermark = AtomicUsize::new(0); // XTS: pages [0, watermark) are under version 2
    let done = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let (mut seen1, mut seen2) = (AtomicU64::new(0), AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    std::thread::scope(|s| {
        for r in 0..READERS {
            let (file, v1, v2, watermark, done, reads, seen1, seen2) =
                (&file, &v1, &v2, &watermark, &done, &reads, &seen1, &seen2);
            s.spawn(move || {
                let mut out = vec![0u8; PS];
                let mut p = r * 37 % PAGES;
                while !done.load(Ordering::Acquire) && Instant::now() < deadline {
                    let g = file.pages[p].read().unwrap();
                    let version = match mode {
                        PageMode::Gcm => page::page_key_version(&g).unwrap(),
                        PageMode::Xts => {
                            if p < watermark.load(Ordering::Acquire) {
                                2
                            } else {
                                1
                            }
                        }
                    };
                    let c = if version == 2 { v2 } else { v1 };
                    c.decrypt(p as u64, &g, &mut out).unwrap_or_else(|e| panic!("page {p} v{version}: {e}"));
                    drop(g);
                    assert_eq!(last_operation_approved(), Approval::Approved);
                    assert_eq!(out[..payload], content(p, PS)[..payload], "page {p} under v{version}");
                    if version == 2 { seen2.fetch_add(1, Ordering::Relaxed) } else { seen1.fetch_add(1, Ordering::Relaxed) };
                    reads.fetch_add(1, Ordering::Relaxed);
                    p = (p + 7) % PAGES;
                }
            });
        }
        // The re-encryption scan: read under the page's version, write under version 2.
        let mut plain = vec![0u8; PS];
        for p in 0..PAGES {
            {
                let mut g = file.pages[p].write().unwrap();
                let old = match mode {
                    PageMode::Gcm => page::page_key_version(&g).unwrap(),
                    PageMode::Xts => 1,
                };
                assert_eq!(old, 1);
                v1.decrypt(p as u64, &g, &mut plain).unwrap();
                v2.encrypt(p as u64, &plain, &mut g).unwrap();
                // XTS: the watermark moves while the page latch is still held, so a reader
                // never pairs the new bytes with the old version or the reverse.
                watermark.store(p + 1, Ordering::Release);
            }
            if p % 16 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Let the readers see the finished file for a moment.
        std::thread::sleep(Duration::from_millis(50));
        done.store(true, Ordering::Release);
    });
    assert!(Instant::now() < deadline, "test ran past its deadline");
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert!(*seen1.get_mut() > 0 && *seen2.get_mut() > 0, "readers saw both versions");
    // Every page is now under version 2 and no longer opens under version 1.
    for p in 0..PAGES {
        let g = file.pages[p].read().unwrap();
        let mut out = vec![0u8; PS];
        v2.decrypt(p as u64, &g, &mut out).unwrap();
        assert_eq!(out[..payload], content(p, PS)[..payload]);
        if mode == PageMode::Gcm {
            assert_eq!(page::page_key_version(&g).unwrap(), 2);
            assert!(v1.decrypt(p as u64, &g, &mut out).is_err());
        }
    }
}

#[test]
fn online_reencryption_gcm_by_trailer_version() {
    run(PageMode::Gcm);
}

#[test]
fn online_reencryption_xts_by_watermark() {
    run(PageMode::Xts);
}
