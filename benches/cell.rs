//! Cell encryption against AWS-LC called directly on the same buffers, and through the C ABI.
//! Each group holds Cellar's function and its baseline, so ratios are read from one run:
//!   cargo bench --bench cell -- --warm-up-time 1 --measurement-time 3

use aws_lc_rs::aead::{Aad, RandomizedNonceKey, AES_256_GCM};
use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_256};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use cellar::cell::{CellCipher, CellMode};
use cellar::ffi::cell::{
    cellar_cell_cipher, cellar_cell_cipher_new, cellar_cell_decrypt, cellar_cell_encrypt, cellar_cell_encrypt_batch,
};
use cellar::ffi::keys::{cellar_key, cellar_key_import};
use cellar::{Key, KeyType};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const RAW: [u8; 32] = [0x11; 32];
const CTX: &[u8] = b"tenant 7/users/email/row 123456"; // 31 bytes

fn ffi_cipher(mode: CellMode) -> *mut cellar_cell_cipher {
    let mut k: *mut cellar_key = std::ptr::null_mut();
    assert_eq!(cellar_key_import(1, RAW.as_ptr(), 32, &mut k), 0);
    let mut c = std::ptr::null_mut();
    assert_eq!(cellar_cell_cipher_new(k, mode as u32, 1, &mut c), 0);
    c
}

fn ctx_for(mode: CellMode) -> &'static [u8] {
    if mode.is_mssql() {
        b""
    } else {
        CTX
    }
}

fn randomized(c: &mut Criterion) {
    let key = Key::import(KeyType::Aes256, &RAW).unwrap();
    let cell = CellCipher::new(&key, CellMode::Randomized, 1).unwrap();
    let base = RandomizedNonceKey::new(&AES_256_GCM, &RAW).unwrap();
    let fc = ffi_cipher(CellMode::Randomized);
    let mut g = c.benchmark_group("cell_randomized_encrypt");
    for n in [16usize, 64, 256, 4096] {
        g.throughput(Throughput::Bytes(n as u64));
        let pt = vec![0x42u8; n];
        let mut out = vec![0u8; n + 33];
        // Baseline: what Cellar must do at least: copy the plaintext into the output, seal it
        // with a module nonce and the same AAD length (5-byte header + context).
        let mut aad = [0u8; 5 + 31];
        aad[5..].copy_from_slice(CTX);
        g.bench_with_input(BenchmarkId::new("RandomizedNonceKey", n), &n, |b, _| {
            b.iter(|| {
                out[17..17 + n].copy_from_slice(&pt);
                let (nonce, tag) = base.seal_in_place_separate_tag(Aad::from(&aad[..]), &mut out[17..17 + n]).unwrap();
                out[5..17].copy_from_slice(nonce.as_ref());
                out[17 + n..].copy_from_slice(tag.as_ref());
                black_box(&out);
            })
        });
        g.bench_with_input(BenchmarkId::new("cellar", n), &n, |b, _| {
            b.iter(|| black_box(cell.encrypt_to(CTX, &pt, &mut out).unwrap()))
        });
        g.bench_with_input(BenchmarkId::new("cellar_ffi", n), &n, |b, _| {
            let mut len = 0usize;
            b.iter(|| {
                let st = cellar_cell_encrypt(fc, CTX.as_ptr(), CTX.len(), pt.as_ptr(), n, out.as_mut_ptr(), out.len(), &mut len);
                black_box((st, len))
            })
        });
    }
    g.finish();
}

/// Baseline for the CBC-HMAC modes: the same module calls made directly through aws-lc-rs
/// (HMAC for the IV, CBC on a padded copy, HMAC for the tag), with keys prepared once.
struct CbcBaseline {
    enc: EncryptingKey,
    mac: hmac::Key,
    iv: hmac::Key,
}

impl CbcBaseline {
    fn new() -> Self {
        CbcBaseline {
            enc: EncryptingKey::cbc(UnboundCipherKey::new(&AES_256, &[1u8; 32]).unwrap()).unwrap(),
            mac: hmac::Key::new(hmac::HMAC_SHA256, &[2u8; 32]),
            iv: hmac::Key::new(hmac::HMAC_SHA256, &[3u8; 32]),
        }
    }

    /// `native`: Cellar DETERMINISTIC layout; else Always Encrypted (random IV if `random_iv`).
    fn seal(&self, native: bool, random_iv: bool, ctx: &[u8], pt: &[u8], out: &mut [u8]) -> usize {
        let h = [2u8, 0, 0, 0, 1];
        let l = (ctx.len() as u32).to_be_bytes();
        let mut iv = [0u8; 16];
        if random_iv {
            aws_lc_rs::rand::fill(&mut iv).unwrap();
        } else {
            let mut m = hmac::Context::with_key(&self.iv);
            if native {
                m.update(&h);
                m.update(&l);
                m.update(ctx);
            }
            m.update(pt);
            iv.copy_from_slice(&m.sign().as_ref()[..16]);
        }
        let off = if native { 21 } else { 49 };
        let clen = (pt.len() / 16 + 1) * 16;
        let c = &mut out[off..off + clen];
        c[..pt.len()].copy_from_slice(pt);
        c[pt.len()..].fill((clen - pt.len()) as u8);
        self.enc.less_safe_encrypt(c, EncryptionContext::Iv128(FixedLength::from(iv))).unwrap();
        let mut m = hmac::Context::with_key(&self.mac);
        if native {
            m.update(&h);
            m.update(&iv);
            m.update(&out[off..off + clen]);
            m.update(&l);
            m.update(ctx);
            out[off + clen..off + clen + 32].copy_from_slice(m.sign().as_ref());
            off + clen + 32
        } else {
            m.update(&[1]);
            m.update(&iv);
            m.update(&out[off..off + clen]);
            m.update(&[1]);
            out[1..33].copy_from_slice(m.sign().as_ref());
            off + clen
        }
    }
}

fn cbc_modes(c: &mut Criterion) {
    let key = Key::import(KeyType::Aes256, &RAW).unwrap();
    let base = CbcBaseline::new();
    for mode in [CellMode::Deterministic, CellMode::MssqlDeterministic, CellMode::MssqlRandomized] {
        let cell = CellCipher::new(&key, mode, 1).unwrap();
        let fc = ffi_cipher(mode);
        let ctx = ctx_for(mode);
        let mut g = c.benchmark_group(format!("cell_{mode:?}_encrypt"));
        for n in [64usize, 4096] {
            g.throughput(Throughput::Bytes(n as u64));
            let pt = vec![0x42u8; n];
            let mut out = vec![0u8; n + 100];
            g.bench_with_input(BenchmarkId::new("aws-lc hmac+cbc+hmac", n), &n, |b, _| {
                let native = mode == CellMode::Deterministic;
                let random_iv = mode == CellMode::MssqlRandomized;
                b.iter(|| black_box(base.seal(native, random_iv, ctx, &pt, &mut out)))
            });
            g.bench_with_input(BenchmarkId::new("cellar", n), &n, |b, _| {
                b.iter(|| black_box(cell.encrypt_to(ctx, &pt, &mut out).unwrap()))
            });
            g.bench_with_input(BenchmarkId::new("cellar_ffi", n), &n, |b, _| {
                let mut len = 0usize;
                b.iter(|| {
                    black_box(cellar_cell_encrypt(fc, ctx.as_ptr(), ctx.len(), pt.as_ptr(), n, out.as_mut_ptr(), out.len(), &mut len))
                })
            });
        }
        g.finish();
    }
}

fn decrypt(c: &mut Criterion) {
    let key = Key::import(KeyType::Aes256, &RAW).unwrap();
    let mut g = c.benchmark_group("cell_decrypt_64");
    for mode in [CellMode::Randomized, CellMode::Deterministic, CellMode::MssqlDeterministic] {
        let cell = CellCipher::new(&key, mode, 1).unwrap();
        let fc = ffi_cipher(mode);
        let ctx = ctx_for(mode);
        let ct = cell.encrypt(ctx, &[0x42u8; 64]).unwrap();
        let mut out = vec![0u8; 128];
        g.bench_function(BenchmarkId::new("cellar", format!("{mode:?}")), |b| {
            b.iter(|| black_box(cell.decrypt_to(ctx, &ct, &mut out).unwrap()))
        });
        g.bench_function(BenchmarkId::new("cellar_ffi", format!("{mode:?}")), |b| {
            let mut len = 0usize;
            b.iter(|| black_box(cellar_cell_decrypt(fc, ctx.as_ptr(), ctx.len(), ct.as_ptr(), ct.len(), out.as_mut_ptr(), out.len(), &mut len)))
        });
    }
    g.finish();
}

fn batch(c: &mut Criterion) {
    let key = Key::import(KeyType::Aes256, &RAW).unwrap();
    const N: usize = 100;
    let values = vec![0x42u8; N * 64];
    let offsets: Vec<usize> = (0..=N).map(|i| i * 64).collect();
    for mode in [CellMode::Randomized, CellMode::Deterministic] {
        let cell = CellCipher::new(&key, mode, 1).unwrap();
        let fc = ffi_cipher(mode);
        let mut out = vec![0u8; N * 200];
        let mut out_offsets = vec![0usize; N + 1];
        let mut g = c.benchmark_group(format!("cell_batch_{mode:?}_100x64"));
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function("single_calls", |b| {
            b.iter(|| {
                let mut pos = 0;
                for i in 0..N {
                    pos += cell.encrypt_to(CTX, &values[i * 64..i * 64 + 64], &mut out[pos..]).unwrap();
                }
                black_box(pos)
            })
        });
        g.bench_function("batch", |b| {
            b.iter(|| black_box(cell.encrypt_batch_to(CTX, &values, &offsets, &mut out, &mut out_offsets).unwrap()))
        });
        g.bench_function("single_calls_ffi", |b| {
            b.iter(|| {
                let mut pos = 0;
                for i in 0..N {
                    let mut len = 0usize;
                    cellar_cell_encrypt(fc, CTX.as_ptr(), CTX.len(), values[i * 64..].as_ptr(), 64, out[pos..].as_mut_ptr(), out.len() - pos, &mut len);
                    pos += len;
                }
                black_box(pos)
            })
        });
        g.bench_function("batch_ffi", |b| {
            let mut len = 0usize;
            b.iter(|| {
                black_box(cellar_cell_encrypt_batch(
                    fc, CTX.as_ptr(), CTX.len(), values.as_ptr(), offsets.as_ptr(), N, out.as_mut_ptr(), out.len(),
                    out_offsets.as_mut_ptr(), &mut len,
                ))
            })
        });
        g.finish();
    }
}

/// Per-row contexts (issue 20): single calls each given its row's whole context, the
/// shared-context batch, and the `_rows` batches in both context forms, for encryption and
/// decryption of 100 values of 64 bytes; then blind indexes (derive per call, handle, batches).
fn rows(c: &mut Criterion) {
    use cellar::ffi::cell::*;
    const N: usize = 100;
    const PREFIX: &[u8] = b"tenant 7/users/email/row "; // + 6-digit row key = 31 bytes, as CTX
    let values = vec![0x42u8; N * 64];
    let offsets: Vec<usize> = (0..=N).map(|i| i * 64).collect();
    let suffixes: Vec<u8> = (0..N).flat_map(|i| format!("{:06}", 100000 + i).into_bytes()).collect();
    let suf_offsets: Vec<u32> = (0..=N as u32).map(|i| i * 6).collect();
    let whole: Vec<u8> = (0..N).flat_map(|i| [PREFIX, &suffixes[i * 6..i * 6 + 6]].concat()).collect();
    let wl = PREFIX.len() + 6;
    let whole_offsets: Vec<u64> = (0..=N as u64).map(|i| i * wl as u64).collect();
    let pre = cellar_row_contexts {
        prefix: PREFIX.as_ptr(), prefix_len: PREFIX.len(), suffixes: suffixes.as_ptr(),
        suffix_offsets: suf_offsets.as_ptr().cast(), offset_width: CELLAR_OFFSETS_32,
    };
    let packed = cellar_row_contexts {
        prefix: std::ptr::null(), prefix_len: 0, suffixes: whole.as_ptr(),
        suffix_offsets: whole_offsets.as_ptr().cast(), offset_width: CELLAR_OFFSETS_64,
    };
    for mode in [CellMode::Randomized, CellMode::Deterministic] {
        let fc = ffi_cipher(mode);
        let mut ct = vec![0u8; N * 200];
        let mut ct_offsets = vec![0usize; N + 1];
        let mut len = 0usize;
        assert_eq!(cellar_cell_encrypt_batch_rows(fc, &pre, values.as_ptr(), offsets.as_ptr(), N, ct.as_mut_ptr(), ct.len(), ct_offsets.as_mut_ptr(), &mut len), 0);
        let mut out = vec![0u8; N * 200];
        let mut out_offsets = vec![0usize; N + 1];
        let mut g = c.benchmark_group(format!("cell_rows_{mode:?}_100x64"));
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function("encrypt_single_calls_ffi", |b| {
            b.iter(|| {
                let mut pos = 0;
                for i in 0..N {
                    let mut l = 0usize;
                    cellar_cell_encrypt(fc, whole[i * wl..].as_ptr(), wl, values[i * 64..].as_ptr(), 64, out[pos..].as_mut_ptr(), out.len() - pos, &mut l);
                    pos += l;
                }
                black_box(pos)
            })
        });
        g.bench_function("encrypt_batch_shared_ffi", |b| {
            b.iter(|| black_box(cellar_cell_encrypt_batch(fc, CTX.as_ptr(), CTX.len(), values.as_ptr(), offsets.as_ptr(), N, out.as_mut_ptr(), out.len(), out_offsets.as_mut_ptr(), &mut len)))
        });
        g.bench_function("encrypt_rows_prefix_ffi", |b| {
            b.iter(|| black_box(cellar_cell_encrypt_batch_rows(fc, &pre, values.as_ptr(), offsets.as_ptr(), N, out.as_mut_ptr(), out.len(), out_offsets.as_mut_ptr(), &mut len)))
        });
        g.bench_function("encrypt_rows_packed_ffi", |b| {
            b.iter(|| black_box(cellar_cell_encrypt_batch_rows(fc, &packed, values.as_ptr(), offsets.as_ptr(), N, out.as_mut_ptr(), out.len(), out_offsets.as_mut_ptr(), &mut len)))
        });
        g.bench_function("decrypt_single_calls_ffi", |b| {
            b.iter(|| {
                let mut pos = 0;
                for i in 0..N {
                    let mut l = 0usize;
                    let cell = &ct[ct_offsets[i]..ct_offsets[i + 1]];
                    cellar_cell_decrypt(fc, whole[i * wl..].as_ptr(), wl, cell.as_ptr(), cell.len(), out[pos..].as_mut_ptr(), out.len() - pos, &mut l);
                    pos += l;
                }
                black_box(pos)
            })
        });
        g.bench_function("decrypt_rows_prefix_ffi", |b| {
            b.iter(|| black_box(cellar_cell_decrypt_batch_rows(fc, &pre, ct.as_ptr(), ct_offsets.as_ptr(), N, out.as_mut_ptr(), out.len(), out_offsets.as_mut_ptr(), &mut len)))
        });
        g.bench_function("decrypt_rows_packed_ffi", |b| {
            b.iter(|| black_box(cellar_cell_decrypt_batch_rows(fc, &packed, ct.as_ptr(), ct_offsets.as_ptr(), N, out.as_mut_ptr(), out.len(), out_offsets.as_mut_ptr(), &mut len)))
        });
        g.finish();
    }
    // Blind indexes of 64-byte values.
    let mut k: *mut cellar_key = std::ptr::null_mut();
    assert_eq!(cellar_key_import(1, RAW.as_ptr(), 32, &mut k), 0);
    let mut bk = std::ptr::null_mut();
    assert_eq!(cellar_blind_index_key_new(k, CELLAR_BLIND_INDEX_V1, &mut bk), 0);
    let mut idx = vec![0u8; N * 16];
    let mut g = c.benchmark_group("blind_index_64");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cellar_blind_index_derive_per_call", |b| {
        b.iter(|| black_box(cellar_blind_index(k, CTX.as_ptr(), CTX.len(), values.as_ptr(), 64, idx.as_mut_ptr(), 16)))
    });
    g.bench_function("handle_compute", |b| {
        b.iter(|| black_box(cellar_blind_index_compute(bk, CTX.as_ptr(), CTX.len(), values.as_ptr(), 64, idx.as_mut_ptr(), 16)))
    });
    let hk = hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]);
    g.bench_function("baseline_hmac_sha256", |b| {
        b.iter(|| {
            let mut ctx = hmac::Context::with_key(&hk);
            ctx.update(&(CTX.len() as u32).to_be_bytes());
            ctx.update(CTX);
            ctx.update(&values[..64]);
            black_box(ctx.sign())
        })
    });
    g.finish();
    let mut g = c.benchmark_group("blind_index_100x64");
    g.throughput(Throughput::Elements(N as u64));
    let mut il = 0usize;
    g.bench_function("batch_shared", |b| {
        b.iter(|| black_box(cellar_blind_index_batch(bk, CTX.as_ptr(), CTX.len(), values.as_ptr(), offsets.as_ptr(), N, 16, idx.as_mut_ptr(), idx.len(), &mut il)))
    });
    g.bench_function("batch_rows_prefix", |b| {
        b.iter(|| black_box(cellar_blind_index_batch_rows(bk, &pre, values.as_ptr(), offsets.as_ptr(), N, 16, idx.as_mut_ptr(), idx.len(), &mut il)))
    });
    g.finish();
}

criterion_group!(benches, randomized, cbc_modes, decrypt, batch, rows);
criterion_main!(benches);
