//! Key operations: Cellar (Rust API), the same through the `extern "C"` functions, and a baseline
//! that makes the same module calls through `aws-lc-rs` directly on the same buffers, in one
//! group each so the ratios come from one run.
//!
//! What "the same work" is, per group (Cellar's checks and bookkeeping are the difference):
//! * generate: DRBG 32 bytes + HMAC-SHA256 key id;
//! * derive:   HKDF-SHA256 (32 zero-byte salt, info) 32 bytes + HMAC key id;
//! * wrap:     AES-256-KWP of the 53-byte inner record;
//! * unwrap:   AES-256-KWP unwrap + HMAC key id of the material;
//! * password export: PBKDF2-HMAC-SHA256 at 100 000 iterations + DRBG salt + KWP.
//!
//! Run: `cargo bench --bench keys -- --warm-up-time 1 --measurement-time 3`

use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::{hkdf, hmac, pbkdf2, rand};
use cellar::ffi::keys as c;
use cellar::keys::{self, Key, KeyType};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use std::num::NonZeroU32;

const ID_LABEL: &[u8] = b"cellar key id v1";

fn key_id(material: &[u8]) -> [u8; 16] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, material), ID_LABEL);
    let mut id = [0u8; 16];
    id.copy_from_slice(&tag.as_ref()[..16]);
    id
}

fn generate(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("key_generate_aes256");
    g.bench_function("cellar", |b| b.iter(|| Key::generate(KeyType::Aes256).unwrap()));
    g.bench_function("cellar_ffi", |b| {
        b.iter(|| {
            let mut k = core::ptr::null_mut();
            assert_eq!(c::cellar_key_generate(c::CELLAR_KEY_AES256, &mut k), 0);
            c::cellar_key_free(black_box(k));
        })
    });
    g.bench_function("aws_lc_rs", |b| {
        b.iter(|| {
            let mut m = [0u8; 32];
            rand::fill(&mut m).unwrap();
            black_box(key_id(&m))
        })
    });
    g.finish();
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn derive(cr: &mut Criterion) {
    let material = [7u8; 32];
    let parent = Key::import(KeyType::Aes256, &material).unwrap();
    let mut cparent = core::ptr::null_mut();
    assert_eq!(c::cellar_key_import(c::CELLAR_KEY_AES256, material.as_ptr(), 32, &mut cparent), 0);
    let label = b"tenant42/orders.customer_email";
    let mut g = cr.benchmark_group("key_derive_aes256");
    g.bench_function("cellar", |b| b.iter(|| parent.derive(KeyType::Aes256, black_box(label)).unwrap()));
    g.bench_function("cellar_ffi", |b| {
        b.iter(|| {
            let mut k = core::ptr::null_mut();
            assert_eq!(c::cellar_key_derive(cparent, c::CELLAR_KEY_AES256, label.as_ptr(), label.len(), &mut k), 0);
            c::cellar_key_free(black_box(k));
        })
    });
    g.bench_function("aws_lc_rs", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[0u8; 32]).extract(&material);
            prk.expand(&[b"cellar derive v1", &[1u8], black_box(label)], Len32).unwrap().fill(&mut out).unwrap();
            black_box(key_id(&out))
        })
    });
    g.finish();
    c::cellar_key_free(cparent);
}

fn wrap_unwrap(cr: &mut Criterion) {
    let kek_material = [3u8; 32];
    let kek = Key::import(KeyType::Aes256, &kek_material).unwrap();
    let dek = Key::import(KeyType::Aes256, &[4u8; 32]).unwrap();
    let (mut ckek, mut cdek) = (core::ptr::null_mut(), core::ptr::null_mut());
    assert_eq!(c::cellar_key_import(c::CELLAR_KEY_AES256, kek_material.as_ptr(), 32, &mut ckek), 0);
    assert_eq!(c::cellar_key_import(c::CELLAR_KEY_AES256, [4u8; 32].as_ptr(), 32, &mut cdek), 0);
    let blob = keys::wrap(&kek, &dek, 1).unwrap();
    // The baseline wraps the same 53-byte inner record.
    let inner: Vec<u8> = {
        let mut v = vec![1u8, 0, 0, 0, 1];
        v.extend_from_slice(&dek.id());
        v.extend_from_slice(&[4u8; 32]);
        v
    };
    let mut g = cr.benchmark_group("key_wrap_aes256");
    g.bench_function("cellar", |b| b.iter(|| keys::wrap(&kek, &dek, black_box(1)).unwrap()));
    g.bench_function("cellar_ffi", |b| {
        let mut out = [0u8; 128];
        let mut len = 0usize;
        b.iter(|| assert_eq!(c::cellar_key_wrap(ckek, cdek, 1, out.as_mut_ptr(), out.len(), &mut len), 0))
    });
    g.bench_function("aws_lc_rs", |b| {
        b.iter(|| {
            let mut out = vec![0u8; 64];
            let k = AesKek::new(&AES_256, &kek_material).unwrap();
            let n = k.wrap_with_padding(black_box(&inner), &mut out).unwrap().len();
            out.truncate(n);
            out
        })
    });
    g.finish();

    let mut g = cr.benchmark_group("key_unwrap_aes256");
    g.bench_function("cellar", |b| b.iter(|| keys::unwrap(&kek, black_box(&blob)).unwrap()));
    g.bench_function("cellar_ffi", |b| {
        b.iter(|| {
            let (mut k, mut v) = (core::ptr::null_mut(), 0u32);
            assert_eq!(c::cellar_key_unwrap(ckek, blob.as_ptr(), blob.len(), &mut k, &mut v), 0);
            c::cellar_key_free(black_box(k));
        })
    });
    g.bench_function("aws_lc_rs", |b| {
        b.iter(|| {
            let mut out = [0u8; 64];
            let k = AesKek::new(&AES_256, &kek_material).unwrap();
            let p = k.unwrap_with_padding(black_box(&blob[18..]), &mut out).unwrap();
            black_box(key_id(&p[21..]))
        })
    });
    g.finish();
    c::cellar_key_free(ckek);
    c::cellar_key_free(cdek);
}

fn password(cr: &mut Criterion) {
    let key = Key::import(KeyType::Aes256, &[5u8; 32]).unwrap();
    let pw = b"correct horse battery staple";
    let it = keys::MIN_PASSWORD_ITERATIONS;
    let mut g = cr.benchmark_group("key_export_password_100k");
    g.sample_size(10);
    g.bench_function("cellar", |b| b.iter(|| keys::export_with_password(&key, 1, pw, it).unwrap()));
    g.bench_function("aws_lc_rs", |b| {
        b.iter_batched(
            || [0u8; 53],
            |inner| {
                let mut salt = [0u8; 16];
                rand::fill(&mut salt).unwrap();
                let mut kek = [0u8; 32];
                pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, NonZeroU32::new(it).unwrap(), &salt, pw, &mut kek);
                let mut out = vec![0u8; 64];
                AesKek::new(&AES_256, &kek).unwrap().wrap_with_padding(&inner, &mut out).unwrap().len()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, generate, derive, wrap_unwrap, password);
criterion_main!(benches);
