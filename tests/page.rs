//! Page ciphers through the Rust API: round trips, the GCM format against an HKDF + AES-GCM
//! built here from the documented layout, tamper and move detection, key versions, the zero-page
//! flag, sizes at and past the limits, epochs, batches and the approval indicator.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::{hkdf, hmac};
use cellar::page::{self, PageCipher, PageMode, FLAG_ZERO_IS_EMPTY};
use cellar::{last_operation_approved, Approval, Error, Key, KeyType};
use proptest::prelude::*;

fn approved() {
    assert_eq!(last_operation_approved(), Approval::Approved);
}

fn xts_key() -> Key {
    Key::generate(KeyType::Aes256Xts).unwrap()
}
fn gcm_key() -> Key {
    Key::generate(KeyType::Aes256).unwrap()
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// Opens a GCM page from the documented format alone (HKDF + AES-GCM from aws-lc-rs).
fn open_by_spec(material: &[u8], file_id: u64, page_no: u64, page: &[u8]) -> Option<Vec<u8>> {
    let p = page.len();
    let t = &page[p - 48..];
    struct L;
    impl hkdf::KeyType for L {
        fn len(&self) -> usize {
            32
        }
    }
    let fid = file_id.to_le_bytes();
    let mut sub = [0u8; 32];
    if t[0] == 0x02 {
        // Format 0x02: subkey = KDF(key, "cellar page v2", salt | file_id LE, 32), the SP 800-108
        // counter-mode KDF with HMAC-SHA-256, written out with HMAC alone.
        let mut fixed = b"cellar page v2\0".to_vec();
        fixed.extend_from_slice(&t[8..20]);
        fixed.extend_from_slice(&fid);
        fixed.extend_from_slice(&256u32.to_be_bytes());
        let k = hmac::Key::new(hmac::HMAC_SHA256, material);
        let mut ctx = hmac::Context::with_key(&k);
        ctx.update(&1u32.to_be_bytes());
        ctx.update(&fixed);
        sub.copy_from_slice(ctx.sign().as_ref());
    } else {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &t[8..20]).extract(material);
        let info: [&[u8]; 2] = [b"cellar page v1", &fid];
        prk.expand(&info, L).unwrap().fill(&mut sub).unwrap();
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &sub).unwrap());
    let mut aad = t[..20].to_vec();
    aad.extend_from_slice(&page_no.to_le_bytes());
    let mut buf = page[..p - 48].to_vec();
    buf.extend_from_slice(&t[32..48]);
    let nonce = Nonce::try_assume_unique_for_key(&t[20..32]).unwrap();
    key.open_in_place(nonce, Aad::from(aad), &mut buf).ok().map(|b| b.to_vec())
}

#[test]
fn xts_round_trip_sizes_in_and_out_of_place() {
    let c = PageCipher::new(&xts_key(), PageMode::Xts, 7, 1, 0).unwrap();
    approved();
    for size in [512usize, 528, 4096, 8192, 16384, 65520, 65536] {
        let pt = pattern(size, 3);
        let mut ct = vec![0u8; size];
        c.encrypt(42, &pt, &mut ct).unwrap();
        approved();
        assert_ne!(ct, pt);
        let mut inplace = pt.clone();
        c.encrypt_in_place(42, &mut inplace).unwrap();
        approved();
        assert_eq!(inplace, ct, "in place equals out of place");
        let mut back = vec![0u8; size];
        c.decrypt(42, &ct, &mut back).unwrap();
        approved();
        assert_eq!(back, pt);
        c.decrypt_in_place(42, &mut inplace).unwrap();
        assert_eq!(inplace, pt);
        // Another page number or file id gives another ciphertext.
        let mut ct2 = vec![0u8; size];
        c.encrypt(43, &pt, &mut ct2).unwrap();
        assert_ne!(ct2, ct);
    }
    let c2 = PageCipher::new(&xts_key(), PageMode::Xts, 8, 1, 0).unwrap();
    let (pt, mut a, mut b) = (pattern(4096, 1), vec![0u8; 4096], vec![0u8; 4096]);
    c.encrypt(1, &pt, &mut a).unwrap();
    c2.encrypt(1, &pt, &mut b).unwrap();
    assert_ne!(a, b);
}

#[test]
fn page_sizes_outside_limits_are_refused() {
    for mode in [PageMode::Xts, PageMode::Gcm] {
        let key = if mode == PageMode::Xts { xts_key() } else { gcm_key() };
        let c = PageCipher::new(&key, mode, 1, 1, 0).unwrap();
        for size in [0usize, 16, 496, 511, 513, 520, 65537, 65552, 4095] {
            let pt = vec![1u8; size];
            let mut out = vec![9u8; size];
            assert_eq!(
                c.encrypt(0, &pt, &mut out),
                Err(Error::InvalidArgument("page size must be 512 to 65536 bytes and a multiple of 16"))
            );
            assert_eq!(last_operation_approved(), Approval::Unknown);
            let r = c.decrypt(0, &pt, &mut out);
            assert!(matches!(r, Err(Error::InvalidArgument(_))));
            assert!(out.iter().all(|&b| b == 0), "failed decrypt leaves zeros");
        }
        let mut out = vec![0u8; 1024];
        assert!(matches!(c.encrypt(0, &[0u8; 512], &mut out), Err(Error::InvalidArgument(_))));
    }
}

#[test]
fn wrong_key_types_modes_and_flags() {
    assert!(matches!(PageCipher::new(&gcm_key(), PageMode::Xts, 1, 1, 0), Err(Error::InvalidKey(_))));
    assert!(matches!(PageCipher::new(&xts_key(), PageMode::Gcm, 1, 1, 0), Err(Error::InvalidKey(_))));
    assert!(matches!(PageCipher::new(&gcm_key(), PageMode::Gcm, 1, 1, 2), Err(Error::InvalidArgument(_))));
    assert!(matches!(PageMode::from_u32(0), Err(Error::InvalidArgument(_))));
    assert!(matches!(PageMode::from_u32(3), Err(Error::InvalidArgument(_))));
    assert_eq!(PageMode::Xts.reserved_bytes(), 0);
    assert_eq!(PageMode::Gcm.reserved_bytes(), 48);
    let c = PageCipher::new(&gcm_key(), PageMode::Gcm, 5, 9, FLAG_ZERO_IS_EMPTY).unwrap();
    approved();
    assert_eq!((c.mode(), c.file_id(), c.key_version(), c.reserved_bytes()), (PageMode::Gcm, 5, 9, 48));
    let dbg = format!("{c:?}");
    assert!(dbg.contains("Gcm") && !dbg.contains("material"));
}

#[test]
fn gcm_page_opens_by_the_documented_format() {
    let key = gcm_key();
    let material = key.dangerous_export_raw();
    let c = PageCipher::new(&key, PageMode::Gcm, 0x0102_0304_0506_0708, 0xA1B2_C3D4, 0).unwrap();
    for size in [512usize, 8192, 65536] {
        let mut pt = pattern(size, 5);
        let mut page = vec![0u8; size];
        c.encrypt(99, &pt, &mut page).unwrap();
        approved();
        let t = &page[size - 48..];
        assert_eq!(t[0], 0x02, "new pages have trailer format 0x02");
        assert_eq!(&t[1..4], &[0, 0, 0]);
        assert_eq!(&t[4..8], &0xA1B2_C3D4u32.to_le_bytes());
        assert_eq!(page::page_key_version(&page).unwrap(), 0xA1B2_C3D4);
        let opened = open_by_spec(&material, 0x0102_0304_0506_0708, 99, &page).expect("opens by spec");
        assert_eq!(&opened[..], &pt[..size - 48]);
        assert!(open_by_spec(&material, 0x0102_0304_0506_0708, 98, &page).is_none());
        // Decrypt: payload back, zeros in the trailer.
        let mut back = vec![7u8; size];
        c.decrypt(99, &page, &mut back).unwrap();
        approved();
        pt[size - 48..].fill(0);
        assert_eq!(back, pt);
        // In place the same.
        let mut inplace = page.clone();
        c.decrypt_in_place(99, &mut inplace).unwrap();
        assert_eq!(inplace, pt);
    }
    // Two encryptions of one page differ (fresh module nonce) but share the epoch salt.
    let pt = pattern(4096, 0);
    let (mut a, mut b) = (vec![0u8; 4096], vec![0u8; 4096]);
    c.encrypt(1, &pt, &mut a).unwrap();
    c.encrypt(1, &pt, &mut b).unwrap();
    assert_ne!(a[4096 - 28..4096 - 16], b[4096 - 28..4096 - 16], "nonces differ");
    assert_eq!(a[4096 - 40..4096 - 28], b[4096 - 40..4096 - 28], "same epoch salt");
    // Encrypt ignores whatever the input holds in the trailer.
    let mut junk = pt.clone();
    junk[4096 - 48..].fill(0xEE);
    let mut c1 = vec![0u8; 4096];
    c.encrypt(1, &junk, &mut c1).unwrap();
    let mut d1 = vec![0u8; 4096];
    c.decrypt(1, &c1, &mut d1).unwrap();
    assert_eq!(d1[..4096 - 48], pt[..4096 - 48]);
    assert!(d1[4096 - 48..].iter().all(|&x| x == 0));
}

#[test]
fn gcm_every_bit_flip_fails_on_512_byte_page() {
    let c = PageCipher::new(&gcm_key(), PageMode::Gcm, 3, 4, 0).unwrap();
    let pt = pattern(512, 9);
    let mut page = vec![0u8; 512];
    c.encrypt(10, &pt, &mut page).unwrap();
    let mut out = vec![0u8; 512];
    for bit in 0..512 * 8 {
        let mut bad = page.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        out.fill(0x55);
        let r = c.decrypt(10, &bad, &mut out);
        assert!(matches!(r, Err(Error::AuthenticationFailed(_))), "bit {bit} accepted");
        assert!(out.iter().all(|&b| b == 0), "bit {bit}: output not zeroed");
        assert_eq!(last_operation_approved(), Approval::Unknown);
    }
    c.decrypt(10, &page, &mut out).unwrap();
    assert_eq!(out[..464], pt[..464]);
}

#[test]
fn gcm_sampled_bit_flips_fail_on_8k_page() {
    let c = PageCipher::new(&gcm_key(), PageMode::Gcm, 3, 4, 0).unwrap();
    let pt = pattern(8192, 2);
    let mut page = vec![0u8; 8192];
    c.encrypt(10, &pt, &mut page).unwrap();
    let mut out = vec![0u8; 8192];
    // Every bit of the trailer, and every 7th bit of the payload.
    let bits = (0..8192 * 8).filter(|b| *b >= (8192 - 48) * 8 || b % 7 == 0);
    for bit in bits {
        let mut bad = page.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        out.fill(1);
        assert!(c.decrypt(10, &bad, &mut out).is_err(), "bit {bit} accepted");
        assert!(out.iter().all(|&b| b == 0));
    }
}

#[test]
fn gcm_moved_pages_and_other_keys_fail() {
    let key = gcm_key();
    let c = PageCipher::new(&key, PageMode::Gcm, 100, 1, 0).unwrap();
    let pt = pattern(4096, 4);
    let mut page = vec![0u8; 4096];
    c.encrypt(5, &pt, &mut page).unwrap();
    let mut out = vec![3u8; 4096];
    assert!(matches!(c.decrypt(6, &page, &mut out), Err(Error::AuthenticationFailed(_))));
    assert!(out.iter().all(|&b| b == 0));
    let other_file = PageCipher::new(&key, PageMode::Gcm, 101, 1, 0).unwrap();
    assert!(matches!(other_file.decrypt(5, &page, &mut out), Err(Error::AuthenticationFailed(_))));
    let other_key = PageCipher::new(&gcm_key(), PageMode::Gcm, 100, 1, 0).unwrap();
    assert!(matches!(other_key.decrypt(5, &page, &mut out), Err(Error::AuthenticationFailed(_))));
    // Another cipher instance (another salt) with the same key and file reads it.
    let twin = PageCipher::new(&key, PageMode::Gcm, 100, 1, 0).unwrap();
    twin.decrypt(5, &page, &mut out).unwrap();
    approved();
    assert_eq!(out[..4048], pt[..4048]);
}

#[test]
fn gcm_key_version_is_reported() {
    let key = gcm_key();
    let v1 = PageCipher::new(&key, PageMode::Gcm, 1, 1, 0).unwrap();
    let v2 = PageCipher::new(&key, PageMode::Gcm, 1, 2, 0).unwrap();
    let mut page = vec![0u8; 1024];
    v1.encrypt(0, &pattern(1024, 0), &mut page).unwrap();
    assert_eq!(page::page_key_version(&page), Ok(1));
    let mut out = vec![1u8; 1024];
    assert_eq!(
        v2.decrypt(0, &page, &mut out),
        Err(Error::AuthenticationFailed("the page was written under another key version (read it with the key-version call)"))
    );
    assert!(out.iter().all(|&b| b == 0));
    // Forging the version byte does not help: it is in the AAD.
    page[1024 - 44..1024 - 40].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(page::page_key_version(&page), Ok(2));
    assert!(matches!(v2.decrypt(0, &page, &mut out), Err(Error::AuthenticationFailed(_))));
    assert!(matches!(page::page_key_version(&[0u8; 1024]), Err(Error::UnsupportedFormat(_))));
    assert!(matches!(page::page_key_version(&[0u8; 100]), Err(Error::InvalidArgument(_))));
}

#[test]
fn zero_page_flag() {
    let zeros = vec![0u8; 4096];
    let mut out = vec![5u8; 4096];
    let g = PageCipher::new(&gcm_key(), PageMode::Gcm, 1, 1, 0).unwrap();
    assert!(matches!(g.decrypt(0, &zeros, &mut out), Err(Error::AuthenticationFailed(_))));
    assert!(out.iter().all(|&b| b == 0));
    let gz = PageCipher::new(&gcm_key(), PageMode::Gcm, 1, 1, FLAG_ZERO_IS_EMPTY).unwrap();
    out.fill(5);
    gz.decrypt(0, &zeros, &mut out).unwrap();
    approved();
    assert!(out.iter().all(|&b| b == 0));
    // Zero trailer but a non-zero payload byte is not an empty page.
    let mut almost = zeros.clone();
    almost[17] = 1;
    assert!(gz.decrypt(0, &almost, &mut out).is_err());
    // XTS: with the flag an all-zero page reads as zeros; without it, it decrypts like any
    // ciphertext (XTS cannot tell).
    let x = PageCipher::new(&xts_key(), PageMode::Xts, 1, 1, 0).unwrap();
    x.decrypt(0, &zeros, &mut out).unwrap();
    assert!(out.iter().any(|&b| b != 0));
    let xz = PageCipher::new(&xts_key(), PageMode::Xts, 1, 1, FLAG_ZERO_IS_EMPTY).unwrap();
    xz.decrypt(0, &zeros, &mut out).unwrap();
    approved();
    assert!(out.iter().all(|&b| b == 0));
    // The flag changes nothing for real pages.
    let pt = pattern(4096, 8);
    let mut ct = vec![0u8; 4096];
    xz.encrypt(3, &pt, &mut ct).unwrap();
    xz.decrypt(3, &ct, &mut out).unwrap();
    assert_eq!(out, pt);
}

/// Issue 20 item 7: below the written mark an all-zero page is an error, at or above it still
/// empty; real pages are unaffected; the mark only rises, is shared by clones, and needs the flag.
#[test]
fn written_mark_makes_zeroed_written_pages_fail() {
    let ps = 4096;
    let zeros = vec![0u8; ps];
    for (mode, key) in [(PageMode::Gcm, gcm_key()), (PageMode::Xts, xts_key())] {
        let c = PageCipher::new(&key, mode, 7, 1, FLAG_ZERO_IS_EMPTY).unwrap();
        assert_eq!(c.written_mark(), 0);
        let mut out = vec![5u8; ps];
        // Mark 0: every all-zero page is empty (the flag's old behaviour).
        c.decrypt(3, &zeros, &mut out).unwrap();
        assert!(out.iter().all(|&b| b == 0));
        assert_eq!(c.set_written_mark(4).unwrap(), 4);
        for p in 0..4u64 {
            out.fill(5);
            let e = c.decrypt(p, &zeros, &mut out).unwrap_err();
            assert!(matches!(e, Error::AuthenticationFailed(m) if m.contains("below the written mark")), "{mode:?} {p}");
            assert!(out.iter().all(|&b| b == 0), "failed output is zeroed");
            assert_eq!(last_operation_approved(), Approval::Unknown);
            // In place too.
            let mut inplace = zeros.clone();
            assert!(c.decrypt_in_place(p, &mut inplace).is_err());
        }
        for p in [4u64, 5, u64::MAX] {
            out.fill(5);
            c.decrypt(p, &zeros, &mut out).unwrap();
            approved();
            assert!(out.iter().all(|&b| b == 0), "{mode:?} page {p} at or above the mark is empty");
        }
        // A real page below the mark reads as always.
        let pt = pattern(ps, 3);
        let mut ct = vec![0u8; ps];
        c.encrypt(1, &pt, &mut ct).unwrap();
        c.decrypt(1, &ct, &mut out).unwrap();
        let payload = ps - c.reserved_bytes();
        assert_eq!(out[..payload], pt[..payload]);
        // Never lowered; a clone shares the mark; it rises from any handle.
        assert_eq!(c.set_written_mark(2).unwrap(), 4);
        assert_eq!(c.written_mark(), 4);
        let clone = c.clone();
        assert_eq!(clone.set_written_mark(10).unwrap(), 10);
        assert_eq!(c.written_mark(), 10);
        assert!(c.decrypt(9, &zeros, &mut out).is_err());
        c.decrypt(10, &zeros, &mut out).unwrap();
        // A run across the mark: the per-page statuses name exactly the pages below it.
        let mut run = vec![0u8; ps * 4];
        c.encrypt(8, &pt, &mut run[..ps]).unwrap(); // page 8 real, 9..11 zero
        let mut st = [0i32; 4];
        let mut dec = vec![5u8; ps * 4];
        let err = c.decrypt_pages_each(8, &run, &mut dec, ps, 1, &mut st).unwrap_err();
        assert_eq!(err.index, 1);
        let fail = Error::AuthenticationFailed("").code();
        assert_eq!(st, [0, fail, 0, 0], "{mode:?}");
        assert_eq!(dec[..payload], pt[..payload]);
        assert!(dec[ps..].iter().all(|&b| b == 0));
        // The plain run fails as a whole at that page.
        let e = c.decrypt_pages(8, &run, &mut dec, ps, 1).unwrap_err();
        assert_eq!(e.index, 1);
    }
    // Without the flag: refused (GCM already fails every all-zero page; XTS cannot tell).
    for (mode, key) in [(PageMode::Gcm, gcm_key()), (PageMode::Xts, xts_key())] {
        let c = PageCipher::new(&key, mode, 7, 1, 0).unwrap();
        assert!(matches!(c.set_written_mark(4), Err(Error::InvalidArgument(_))));
        assert_eq!(c.written_mark(), 0);
    }
}

/// The mark raised by one thread is seen by decrypts on others, and concurrent raises keep the
/// largest.
#[test]
fn written_mark_from_many_threads() {
    let c = PageCipher::new(&gcm_key(), PageMode::Gcm, 1, 1, FLAG_ZERO_IS_EMPTY).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let c = &c;
            s.spawn(move || {
                for i in 0..1000u64 {
                    c.set_written_mark(i * 4 + t).unwrap();
                }
            });
        }
    });
    assert_eq!(c.written_mark(), 3999);
    let zeros = vec![0u8; 512];
    let mut out = vec![0u8; 512];
    std::thread::scope(|s| {
        s.spawn(|| assert!(c.decrypt(3998, &zeros, &mut vec![0u8; 512]).is_err()));
    });
    c.decrypt(3999, &zeros, &mut out).unwrap();
}

#[test]
fn gcm_epochs_rotate_the_salt() {
    let key = gcm_key();
    let c = PageCipher::with_epoch_limit(&key, PageMode::Gcm, 1, 1, 0, 3).unwrap();
    let pt = pattern(512, 1);
    let mut salts = Vec::new();
    let mut pages = Vec::new();
    for i in 0..9u64 {
        let mut p = vec![0u8; 512];
        c.encrypt(i, &pt, &mut p).unwrap();
        approved();
        salts.push(p[512 - 40..512 - 28].to_vec());
        pages.push(p);
    }
    // Three encryptions per salt, then a new one.
    assert_eq!(salts[0], salts[2]);
    assert_ne!(salts[2], salts[3]);
    assert_eq!(salts[3], salts[5]);
    assert_ne!(salts[5], salts[6]);
    assert_ne!(salts[0], salts[6]);
    // Every epoch still decrypts (the subkey cache or a fresh derivation).
    for (i, p) in pages.iter().enumerate() {
        let mut out = vec![0u8; 512];
        c.decrypt(i as u64, p, &mut out).unwrap();
        approved();
        assert_eq!(out[..464], pt[..464]);
    }
    // Many epochs (beyond every cache) still decrypt, through a fresh cipher too.
    let c = PageCipher::with_epoch_limit(&key, PageMode::Gcm, 1, 1, 0, 1).unwrap();
    let mut many = Vec::new();
    for i in 0..150u64 {
        let mut p = vec![0u8; 512];
        c.encrypt(i, &pt, &mut p).unwrap();
        many.push(p);
    }
    let reader = PageCipher::new(&key, PageMode::Gcm, 1, 1, 0).unwrap();
    for (i, p) in many.iter().enumerate().rev() {
        let mut out = vec![0u8; 512];
        c.decrypt(i as u64, p, &mut out).unwrap();
        reader.decrypt(i as u64, p, &mut out).unwrap();
        assert_eq!(out[..464], pt[..464]);
    }
    assert!(PageCipher::with_epoch_limit(&key, PageMode::Gcm, 1, 1, 0, 0).is_err());
    assert!(PageCipher::with_epoch_limit(&key, PageMode::Gcm, 1, 1, 0, (1 << 31) + 1).is_err());
}

#[test]
fn page_gcm_does_not_use_the_key_usage_limit() {
    let key = gcm_key();
    key.set_usage_limit(1).unwrap();
    let c = PageCipher::new(&key, PageMode::Gcm, 1, 1, 0).unwrap();
    let mut p = vec![0u8; 512];
    for i in 0..5 {
        c.encrypt_in_place(i, &mut p).unwrap();
    }
    assert_eq!(key.usage_count(), 0);
}

#[test]
fn batches_equal_single_pages_on_any_thread_count() {
    for mode in [PageMode::Xts, PageMode::Gcm] {
        let key = if mode == PageMode::Xts { xts_key() } else { gcm_key() };
        let c = PageCipher::new(&key, mode, 77, 1, 0).unwrap();
        let ps = 1024;
        let n = 13;
        let pt = pattern(ps * n, 6);
        for threads in [0usize, 1, 2, 3, 13, 100] {
            let mut ct = vec![0u8; ps * n];
            c.encrypt_pages(1000, &pt, &mut ct, ps, threads).unwrap();
            approved();
            for i in 0..n {
                let mut one = vec![0u8; ps];
                c.decrypt(1000 + i as u64, &ct[i * ps..(i + 1) * ps], &mut one).unwrap();
                let r = mode.reserved_bytes();
                assert_eq!(one[..ps - r], pt[i * ps..(i + 1) * ps - r], "mode {mode:?} threads {threads} page {i}");
                if mode == PageMode::Xts {
                    let mut single = vec![0u8; ps];
                    c.encrypt(1000 + i as u64, &pt[i * ps..(i + 1) * ps], &mut single).unwrap();
                    assert_eq!(single, ct[i * ps..(i + 1) * ps]);
                }
            }
            let mut back = vec![0u8; ps * n];
            c.decrypt_pages(1000, &ct, &mut back, ps, threads).unwrap();
            approved();
            let mut inplace = ct.clone();
            c.decrypt_pages_in_place(1000, &mut inplace, ps, threads).unwrap();
            assert_eq!(inplace, back);
            let mut enc_in_place = pt.clone();
            c.encrypt_pages_in_place(1000, &mut enc_in_place, ps, threads).unwrap();
            let mut back2 = vec![0u8; ps * n];
            c.decrypt_pages(1000, &enc_in_place, &mut back2, ps, threads).unwrap();
            assert_eq!(back2, back);
        }
    }
}

#[test]
fn batch_failure_zeroes_everything_and_names_the_page() {
    let c = PageCipher::new(&gcm_key(), PageMode::Gcm, 1, 1, 0).unwrap();
    let ps = 512;
    let n = 10;
    let mut ct = vec![0u8; ps * n];
    c.encrypt_pages(0, &pattern(ps * n, 1), &mut ct, ps, 1).unwrap();
    ct[7 * ps + 3] ^= 0x80;
    ct[8 * ps + 3] ^= 0x80;
    for threads in [1usize, 2, 4] {
        let mut out = vec![9u8; ps * n];
        let e = c.decrypt_pages(0, &ct, &mut out, ps, threads).unwrap_err();
        assert_eq!(e.index, 7, "threads {threads}");
        assert!(matches!(e.error, Error::AuthenticationFailed(_)));
        assert!(out.iter().all(|&b| b == 0));
        assert_eq!(last_operation_approved(), Approval::Unknown);
    }
    let mut out = vec![0u8; ps * n];
    assert!(matches!(c.decrypt_pages(0, &ct, &mut out[..ps * n - 16], ps, 1).unwrap_err().error, Error::InvalidArgument(_)));
    assert!(matches!(c.decrypt_pages(0, &ct[..ps * 3 + 16], &mut out[..ps * 3 + 16], ps, 1).unwrap_err().error, Error::InvalidArgument(_)));
    assert!(matches!(c.encrypt_pages(u64::MAX - 8, &ct, &mut out, ps, 1).unwrap_err().error, Error::InvalidArgument(_)));
    c.encrypt_pages(u64::MAX - 9, &ct, &mut out, ps, 1).unwrap();
    c.encrypt_pages(0, &[], &mut [], ps, 2).unwrap();
}

#[test]
fn shared_cipher_across_threads() {
    for mode in [PageMode::Xts, PageMode::Gcm] {
        let key = if mode == PageMode::Xts { xts_key() } else { gcm_key() };
        let c = PageCipher::with_epoch_limit(&key, mode, 9, 1, 0, 50).unwrap();
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let c = c.clone();
                s.spawn(move || {
                    let pt = pattern(2048, t as u8);
                    for i in 0..200u64 {
                        let mut p = pt.clone();
                        c.encrypt_in_place(t * 1000 + i, &mut p).unwrap();
                        approved();
                        c.decrypt_in_place(t * 1000 + i, &mut p).unwrap();
                        approved();
                        let r = mode.reserved_bytes();
                        assert_eq!(p[..2048 - r], pt[..2048 - r]);
                    }
                });
            }
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn prop_round_trip_and_binding(
        size_blocks in 32usize..=80, page_no in any::<u64>(), file_id in any::<u64>(),
        seed in any::<u8>(), gcm in any::<bool>(), delta in 1u64..1000,
    ) {
        let size = size_blocks * 16;
        let (key, mode) = if gcm { (gcm_key(), PageMode::Gcm) } else { (xts_key(), PageMode::Xts) };
        let c = PageCipher::new(&key, mode, file_id, 1, 0).unwrap();
        let pt = pattern(size, seed);
        let mut ct = vec![0u8; size];
        c.encrypt(page_no, &pt, &mut ct).unwrap();
        let mut back = vec![0u8; size];
        c.decrypt(page_no, &ct, &mut back).unwrap();
        let r = mode.reserved_bytes();
        prop_assert_eq!(&back[..size - r], &pt[..size - r]);
        let moved = c.decrypt(page_no.wrapping_add(delta), &ct, &mut back);
        if gcm {
            prop_assert!(moved.is_err());
        } else {
            prop_assert!(moved.is_ok());
            prop_assert_ne!(&back, &pt);
        }
        let other = PageCipher::new(&key, mode, file_id.wrapping_add(delta), 1, 0).unwrap();
        let r2 = other.decrypt(page_no, &ct, &mut back);
        let bound = if gcm { r2.is_err() } else { back != pt };
        prop_assert!(bound);
    }
}
