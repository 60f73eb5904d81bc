//! Keyring benchmarks: wrap, unwrap and rewrap of one AES-256 data key, each beside the same
//! AES-KWP work done with aws-lc-rs directly (key schedule + KWP on the same 53-byte inner record)
//! and beside the `extern "C"` path; and rewrapping 10 000 blobs after a rotation.
//!
//! Run: `cargo bench --bench keyring -- --warm-up-time 1 --measurement-time 3`

use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use cellar::ffi::keyring::{
    cellar_keyring, cellar_keyring_free, cellar_keyring_new, cellar_keyring_rewrap, cellar_keyring_unwrap,
    cellar_keyring_wrap,
};
use cellar::ffi::keys::{cellar_key, cellar_key_free, cellar_key_import};
use cellar::keyring::Keyring;
use cellar::{Key, KeyType};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use std::ptr;

const N_BLOBS: usize = 10_000;

fn raw_wrap(kek: &[u8], inner: &[u8], out: &mut [u8]) -> usize {
    let k = AesKek::new(&AES_256, kek).unwrap();
    k.wrap_with_padding(inner, out).unwrap().len()
}

fn raw_unwrap(kek: &[u8], wrapped: &[u8], out: &mut [u8]) -> usize {
    let k = AesKek::new(&AES_256, kek).unwrap();
    k.unwrap_with_padding(wrapped, out).unwrap().len()
}

fn per_key(c: &mut Criterion) {
    let tenant = Key::generate(KeyType::Aes256).unwrap();
    let t_raw = tenant.dangerous_export_raw();
    let kr = Keyring::new(Some(&tenant)).unwrap();
    let dk = Key::generate(KeyType::Aes256).unwrap();
    let blob = kr.wrap(&dk).unwrap();
    let inner = {
        let mut v = vec![1u8];
        v.extend_from_slice(&1u32.to_be_bytes());
        v.extend_from_slice(&dk.id());
        v.extend_from_slice(&dk.dangerous_export_raw());
        v
    };

    // The same keyring and data key through the C ABI.
    let mut ckr: *mut cellar_keyring = ptr::null_mut();
    let mut cdk: *mut cellar_key = ptr::null_mut();
    let t = tenant.dangerous_export_raw();
    let mut ctenant: *mut cellar_key = ptr::null_mut();
    assert_eq!(cellar_key_import(1, t.as_ptr(), 32, &mut ctenant), 0);
    assert_eq!(cellar_keyring_new(ctenant, &mut ckr), 0);
    let d = dk.dangerous_export_raw();
    assert_eq!(cellar_key_import(1, d.as_ptr(), 32, &mut cdk), 0);

    let mut g = c.benchmark_group("keyring_wrap");
    g.bench_function("cellar", |b| b.iter(|| black_box(kr.wrap(black_box(&dk)).unwrap())));
    g.bench_function("aws_lc_kwp", |b| {
        let mut out = [0u8; 64];
        b.iter(|| {
            let mut blob = Vec::with_capacity(82);
            blob.extend_from_slice(&[0x57, 1]);
            blob.extend_from_slice(&tenant.id());
            let n = raw_wrap(&t_raw, black_box(&inner), &mut out);
            blob.extend_from_slice(&out[..n]);
            black_box(blob)
        })
    });
    g.bench_function("cellar_c_abi", |b| {
        let mut out = [0u8; 82];
        let mut n = 0usize;
        b.iter(|| assert_eq!(cellar_keyring_wrap(ckr, cdk, out.as_mut_ptr(), out.len(), &mut n), 0))
    });
    g.finish();

    let mut g = c.benchmark_group("keyring_unwrap");
    g.bench_function("cellar", |b| b.iter(|| black_box(kr.unwrap(black_box(&blob)).unwrap())));
    g.bench_function("aws_lc_kwp", |b| {
        let mut out = [0u8; 64];
        b.iter(|| black_box(raw_unwrap(&t_raw, black_box(&blob[18..]), &mut out)))
    });
    g.bench_function("cellar_c_abi", |b| {
        b.iter(|| {
            let mut k: *mut cellar_key = ptr::null_mut();
            let mut v = 0u32;
            assert_eq!(cellar_keyring_unwrap(ckr, blob.as_ptr(), blob.len(), &mut k, &mut v), 0);
            cellar_key_free(k);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("keyring_rewrap");
    g.bench_function("cellar", |b| b.iter(|| black_box(kr.rewrap(black_box(&blob)).unwrap())));
    g.bench_function("aws_lc_kwp", |b| {
        let mut plain = [0u8; 64];
        let mut out = [0u8; 64];
        b.iter(|| {
            let n = raw_unwrap(&t_raw, black_box(&blob[18..]), &mut plain);
            black_box(raw_wrap(&t_raw, &plain[..n], &mut out))
        })
    });
    g.bench_function("cellar_c_abi", |b| {
        let mut out = [0u8; 82];
        let mut n = 0usize;
        b.iter(|| assert_eq!(cellar_keyring_rewrap(ckr, blob.as_ptr(), blob.len(), out.as_mut_ptr(), 82, &mut n), 0))
    });
    g.finish();

    cellar_keyring_free(ckr);
    cellar_key_free(cdk);
    cellar_key_free(ctenant);
}

fn rewrap_all(c: &mut Criterion) {
    let kr = Keyring::new(None).unwrap();
    let blobs: Vec<Vec<u8>> =
        (0..N_BLOBS).map(|_| kr.wrap(&Key::generate(KeyType::Aes256).unwrap()).unwrap()).collect();
    kr.rotate(None).unwrap();
    let old = Key::generate(KeyType::Aes256).unwrap().dangerous_export_raw();
    let new = Key::generate(KeyType::Aes256).unwrap().dangerous_export_raw();
    let raw_blobs: Vec<Vec<u8>> = (0..N_BLOBS)
        .map(|i| {
            let mut out = vec![0u8; 64];
            let n = raw_wrap(&old, &[i as u8; 53], &mut out);
            out.truncate(n);
            out
        })
        .collect();

    let mut g = c.benchmark_group("keyring_rewrap_10000_after_rotation");
    g.sample_size(10);
    g.bench_function("cellar", |b| {
        b.iter_batched(
            || (),
            |()| black_box(blobs.iter().map(|bl| kr.rewrap(bl).unwrap()).collect::<Vec<_>>()),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("aws_lc_kwp", |b| {
        b.iter(|| {
            let mut plain = [0u8; 64];
            black_box(
                raw_blobs
                    .iter()
                    .map(|bl| {
                        let n = raw_unwrap(&old, bl, &mut plain);
                        let mut out = vec![0u8; 82];
                        out[..18].copy_from_slice(&[0x57; 18]);
                        let m = raw_wrap(&new, &plain[..n], &mut out[18..]);
                        out.truncate(18 + m);
                        out
                    })
                    .collect::<Vec<_>>(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, per_key, rewrap_all);
criterion_main!(benches);
