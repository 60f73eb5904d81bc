//! Page cipher benchmarks, each beside its AWS-LC baseline on the same buffers:
//! * XTS encrypt/decrypt 4, 8, 16 KiB: Cellar (Rust API), Cellar (extern "C"), and AWS-LC's own
//!   AES-256-XTS through aws-lc-fips-sys (context keyed once; per page: set tweak + EVP_Cipher).
//! * GCM encrypt 8 KiB: Cellar (Rust, C) against aws-lc-rs `RandomizedNonceKey` sealing 8 KiB.
//! * Batch of 64 x 8 KiB pages on 2 threads against 1 (Rust and C), XTS and GCM.
//! Before criterion runs, `alternating rounds` prints for the headline ratios the median and
//! spread of 9 alternating rounds (ours, baseline, ours, ...) in this one process (SPEC 7).

use aws_lc_fips_sys as sys;
use aws_lc_rs::aead::{Aad, RandomizedNonceKey, AES_256_GCM};
use cellar::ffi::keys::cellar_key;
use cellar::ffi::page::*;
use cellar::page::{PageCipher, PageMode};
use cellar::{Key, KeyType};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Instant;

struct RawXts {
    ctx: *mut sys::EVP_CIPHER_CTX,
}

impl RawXts {
    fn new(key: &[u8], enc: bool) -> Self {
        unsafe {
            let ctx = sys::EVP_CIPHER_CTX_new();
            assert_eq!(
                sys::EVP_CipherInit_ex(ctx, sys::EVP_aes_256_xts(), std::ptr::null_mut(), key.as_ptr(), std::ptr::null(), enc as i32),
                1
            );
            RawXts { ctx }
        }
    }
    #[inline]
    fn page(&mut self, page_no: u64, file_id: u64, input: &[u8], out: &mut [u8]) {
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&page_no.to_le_bytes());
        t[8..].copy_from_slice(&file_id.to_le_bytes());
        unsafe {
            sys::EVP_CipherInit_ex(self.ctx, std::ptr::null(), std::ptr::null_mut(), std::ptr::null(), t.as_ptr(), -1);
            assert_eq!(sys::EVP_Cipher(self.ctx, out.as_mut_ptr(), input.as_ptr(), input.len()), 1);
        }
    }
}

impl Drop for RawXts {
    fn drop(&mut self) {
        unsafe { sys::EVP_CIPHER_CTX_free(self.ctx) }
    }
}

struct Fixture {
    xts_key: Key,
    xts: PageCipher,
    gcm: PageCipher,
    cx: *mut cellar_page_cipher,
    cg: *mut cellar_page_cipher,
    raw_enc: RawXts,
    raw_dec: RawXts,
    rnk: RandomizedNonceKey,
}

fn fixture() -> Fixture {
    let xts_key = Key::generate(KeyType::Aes256Xts).unwrap();
    let gcm_key = Key::generate(KeyType::Aes256).unwrap();
    let xts = PageCipher::new(&xts_key, PageMode::Xts, 9, 1, 0).unwrap();
    let gcm = PageCipher::new(&gcm_key, PageMode::Gcm, 9, 1, 0).unwrap();
    let mut cx = std::ptr::null_mut();
    let mut cg = std::ptr::null_mut();
    let mut hk: *mut cellar_key = std::ptr::null_mut();
    let raw = xts_key.dangerous_export_raw();
    assert_eq!(cellar::ffi::keys::cellar_key_import(2, raw.as_ptr(), 64, &mut hk), 0);
    assert_eq!(cellar_page_cipher_new(hk, CELLAR_PAGE_XTS, 9, 1, 0, &mut cx), 0);
    cellar::ffi::keys::cellar_key_free(hk);
    let graw = gcm_key.dangerous_export_raw();
    assert_eq!(cellar::ffi::keys::cellar_key_import(1, graw.as_ptr(), 32, &mut hk), 0);
    assert_eq!(cellar_page_cipher_new(hk, CELLAR_PAGE_GCM, 9, 1, 0, &mut cg), 0);
    cellar::ffi::keys::cellar_key_free(hk);
    Fixture {
        raw_enc: RawXts::new(&raw, true),
        raw_dec: RawXts::new(&raw, false),
        rnk: RandomizedNonceKey::new(&AES_256_GCM, &graw).unwrap(),
        xts_key,
        xts,
        gcm,
        cx,
        cg,
    }
}

/// Median and spread (min..max) of `rounds` ratios time(baseline)/time(ours) = throughput ratio.
fn alternate(name: &str, rounds: usize, iters: usize, mut ours: impl FnMut(), mut base: impl FnMut()) {
    let mut ratios = Vec::new();
    for _ in 0..iters / 4 {
        ours();
        base();
    }
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..iters {
            ours();
        }
        let o = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..iters {
            base();
        }
        let b = t.elapsed().as_secs_f64();
        ratios.push(b / o);
    }
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "alternating rounds: {name}: throughput ratio ours/baseline median {:.3} (min {:.3}, max {:.3}, {rounds} rounds x {iters})",
        ratios[rounds / 2],
        ratios[0],
        ratios[rounds - 1]
    );
}

fn alternating_rounds(f: &mut Fixture) {
    let ps = 8192;
    let pt = vec![7u8; ps];
    let mut out = vec![0u8; ps];
    let mut out2 = vec![0u8; ps];
    let (xts, cx) = (f.xts.clone(), f.cx);
    let raw_enc = &mut f.raw_enc;
    let mut o = out.clone();
    alternate("XTS enc 8K (Rust API vs EVP_Cipher)", 9, 20000, || xts.encrypt(1, &pt, &mut o).unwrap(), || raw_enc.page(1, 9, &pt, &mut out2));
    alternate("XTS enc 8K (C API vs EVP_Cipher)", 9, 20000, || assert_eq!(cellar_page_encrypt(cx, 1, pt.as_ptr(), out.as_mut_ptr(), ps), 0), || raw_enc.page(1, 9, &pt, &mut out2));
    let raw_dec = &mut f.raw_dec;
    alternate("XTS dec 8K (Rust API vs EVP_Cipher)", 9, 20000, || xts.decrypt(1, &pt, &mut o).unwrap(), || raw_dec.page(1, 9, &pt, &mut out2));
    let (gcm, cg, rnk) = (f.gcm.clone(), f.cg, &f.rnk);
    let mut buf = vec![0u8; ps];
    alternate("GCM enc 8K (Rust API vs RandomizedNonceKey seal 8K)", 9, 5000, || gcm.encrypt(1, &pt, &mut o).unwrap(), || {
        let _ = black_box(rnk.seal_in_place_separate_tag(Aad::from([0u8; 28]), &mut buf).unwrap());
    });
    alternate("GCM enc 8K (C API vs RandomizedNonceKey seal 8K)", 9, 5000, || assert_eq!(cellar_page_encrypt(cg, 1, pt.as_ptr(), out.as_mut_ptr(), ps), 0), || {
        let _ = black_box(rnk.seal_in_place_separate_tag(Aad::from([0u8; 28]), &mut buf).unwrap());
    });
    // Shared cipher, two long-lived threads against one (threads spawned once per round).
    for (name, c) in [("XTS", xts.clone()), ("GCM", gcm.clone())] {
        let k = if name == "XTS" { 40000 } else { 10000 };
        let work = |c: &PageCipher| {
            let pt = vec![1u8; ps];
            let mut out = vec![0u8; ps];
            for i in 0..k {
                c.encrypt(i, &pt, &mut out).unwrap();
            }
        };
        let mut ratios = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            work(&c);
            let one = t.elapsed().as_secs_f64();
            let t = Instant::now();
            std::thread::scope(|s| {
                s.spawn(|| work(&c));
                s.spawn(|| work(&c));
            });
            let two = t.elapsed().as_secs_f64();
            ratios.push(2.0 * one / two);
        }
        ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "alternating rounds: {name} shared cipher, 2 threads vs 1 (speed-up): median {:.3} (min {:.3}, max {:.3}, 7 rounds x {k} pages/thread)",
            ratios[3], ratios[0], ratios[6]
        );
    }
    let n = 512;
    let run = vec![3u8; ps * n];
    let mut rout = vec![0u8; ps * n];
    let mut rout2 = vec![0u8; ps * n];
    alternate("XTS batch 512x8K: 2 threads vs 1 (speed-up)", 9, 20, || xts.encrypt_pages(0, &run, &mut rout, ps, 2).unwrap(), || xts.encrypt_pages(0, &run, &mut rout2, ps, 1).unwrap());
    alternate("GCM batch 512x8K: 2 threads vs 1 (speed-up)", 9, 10, || gcm.encrypt_pages(0, &run, &mut rout, ps, 2).unwrap(), || gcm.encrypt_pages(0, &run, &mut rout2, ps, 1).unwrap());
}

fn benches(c: &mut Criterion) {
    let mut f = fixture();
    if std::env::var_os("CELLAR_BENCH_NO_ROUNDS").is_none() {
        alternating_rounds(&mut f);
    }
    let _ = &f.xts_key;
    for (dir, enc) in [("xts_encrypt", true), ("xts_decrypt", false)] {
        let mut g = c.benchmark_group(dir);
        for ps in [4096usize, 8192, 16384] {
            let input = vec![5u8; ps];
            let mut out = vec![0u8; ps];
            g.throughput(Throughput::Bytes(ps as u64));
            g.bench_with_input(BenchmarkId::new("cellar", ps), &ps, |b, _| {
                b.iter(|| if enc { f.xts.encrypt(black_box(3), &input, &mut out) } else { f.xts.decrypt(black_box(3), &input, &mut out) }.unwrap())
            });
            let cx = f.cx;
            g.bench_with_input(BenchmarkId::new("cellar_c_api", ps), &ps, |b, _| {
                b.iter(|| {
                    let st = if enc {
                        cellar_page_encrypt(cx, black_box(3), input.as_ptr(), out.as_mut_ptr(), ps)
                    } else {
                        cellar_page_decrypt(cx, black_box(3), input.as_ptr(), out.as_mut_ptr(), ps)
                    };
                    assert_eq!(st, 0)
                })
            });
            let raw = if enc { &mut f.raw_enc } else { &mut f.raw_dec };
            g.bench_with_input(BenchmarkId::new("aws_lc_evp_cipher", ps), &ps, |b, _| {
                b.iter(|| raw.page(black_box(3), 9, &input, &mut out))
            });
        }
        g.finish();
    }
    {
        let ps = 8192;
        let mut g = c.benchmark_group("gcm_encrypt_8k");
        g.throughput(Throughput::Bytes(ps as u64));
        let input = vec![5u8; ps];
        let mut out = vec![0u8; ps];
        g.bench_function("cellar", |b| b.iter(|| f.gcm.encrypt(black_box(3), &input, &mut out).unwrap()));
        let mut inplace = vec![5u8; ps];
        g.bench_function("cellar_in_place", |b| b.iter(|| f.gcm.encrypt_in_place(black_box(3), &mut inplace).unwrap()));
        let cg = f.cg;
        g.bench_function("cellar_c_api", |b| {
            b.iter(|| assert_eq!(cellar_page_encrypt(cg, black_box(3), input.as_ptr(), out.as_mut_ptr(), ps), 0))
        });
        let mut buf = vec![5u8; ps];
        g.bench_function("aws_lc_randomized_nonce_seal_8k", |b| {
            b.iter(|| black_box(f.rnk.seal_in_place_separate_tag(Aad::from([0u8; 28]), &mut buf).unwrap()))
        });
        g.finish();
        let mut g = c.benchmark_group("gcm_decrypt_8k");
        g.throughput(Throughput::Bytes(ps as u64));
        let mut page = vec![0u8; ps];
        f.gcm.encrypt(3, &input, &mut page).unwrap();
        g.bench_function("cellar", |b| b.iter(|| f.gcm.decrypt(black_box(3), &page, &mut out).unwrap()));
        g.finish();
    }
    for (name, cipher, cptr) in [("batch_xts_64x8k", &f.xts, f.cx), ("batch_gcm_64x8k", &f.gcm, f.cg)] {
        let ps = 8192;
        let n = 64;
        let input = vec![1u8; ps * n];
        let mut out = vec![0u8; ps * n];
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes((ps * n) as u64));
        for threads in [1usize, 2] {
            g.bench_with_input(BenchmarkId::new("cellar_threads", threads), &threads, |b, &t| {
                b.iter(|| cipher.encrypt_pages(0, &input, &mut out, ps, t).unwrap())
            });
            g.bench_with_input(BenchmarkId::new("cellar_c_api_threads", threads), &threads, |b, &t| {
                b.iter(|| assert_eq!(cellar_page_encrypt_pages(cptr, 0, input.as_ptr(), out.as_mut_ptr(), ps, n, t as u32), 0))
            });
        }
        g.finish();
    }
    cellar_page_cipher_free(f.cx);
    cellar_page_cipher_free(f.cg);
}

criterion_group!(page, benches);
criterion_main!(page);
