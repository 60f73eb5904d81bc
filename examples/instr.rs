//! Fixed-iteration workloads for instruction counting under `valgrind --tool=callgrind`
//! (repeatable, unlike wall time on a noisy machine; SPEC 7). `benches/callgrind.sh` runs each
//! variant with N and 2N iterations and reports the per-operation instruction ratio of Cellar
//! (Rust API and extern "C") against AWS-LC called directly on the same buffers.
//!
//! Usage: instr <variant> <iterations>

use aws_lc_fips_sys as sys;
use aws_lc_rs::aead::{Aad, RandomizedNonceKey, AES_256_GCM};
use cellar::cell::{CellCipher, CellMode};
use cellar::ffi::cell::*;
use cellar::ffi::keys::*;
use cellar::ffi::page::*;
use cellar::page::{PageCipher, PageMode};
use cellar::{Key, KeyType};
use std::hint::black_box;

const PAGE: usize = 8192;
const CELL: usize = 64;

fn c_key(key: &Key) -> *mut cellar_key {
    let raw = key.dangerous_export_raw();
    let mut h = std::ptr::null_mut();
    assert_eq!(cellar_key_import(key.key_type() as u32, raw.as_ptr(), raw.len(), &mut h), 0);
    h
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let variant = args.get(1).map(String::as_str).unwrap_or("");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let xts_key = Key::generate(KeyType::Aes256Xts).unwrap();
    let key = Key::generate(KeyType::Aes256).unwrap();
    let mut page = vec![0x5au8; PAGE];
    let mut out = vec![0u8; PAGE];
    let cell = [0x41u8; CELL];
    let ctx = b"tenant=1/users/email";
    let mut ct = [0u8; 256];
    let mut ct_len = 0usize;
    match variant {
        "xts-rust" => {
            let c = PageCipher::new(&xts_key, PageMode::Xts, 9, 1, 0).unwrap();
            for i in 0..n {
                c.encrypt(i, &page, &mut out).unwrap();
            }
        }
        "xts-c" => {
            let k = c_key(&xts_key);
            let mut c = std::ptr::null_mut();
            assert_eq!(cellar_page_cipher_new(k, CELLAR_PAGE_XTS, 9, 1, 0, &mut c), 0);
            for i in 0..n {
                assert_eq!(cellar_page_encrypt(c, i, page.as_ptr(), out.as_mut_ptr(), PAGE), 0);
            }
        }
        "xts-base" => {
            let raw = xts_key.dangerous_export_raw();
            unsafe {
                let ctx = sys::EVP_CIPHER_CTX_new();
                assert_eq!(
                    sys::EVP_CipherInit_ex(ctx, sys::EVP_aes_256_xts(), std::ptr::null_mut(), raw.as_ptr(), std::ptr::null(), 1),
                    1
                );
                for i in 0..n {
                    let mut t = [0u8; 16];
                    t[..8].copy_from_slice(&i.to_le_bytes());
                    t[8..].copy_from_slice(&9u64.to_le_bytes());
                    sys::EVP_CipherInit_ex(ctx, std::ptr::null(), std::ptr::null_mut(), std::ptr::null(), t.as_ptr(), -1);
                    assert_eq!(sys::EVP_Cipher(ctx, out.as_mut_ptr(), page.as_ptr(), PAGE), 1);
                }
                sys::EVP_CIPHER_CTX_free(ctx);
            }
        }
        "gcm-rust" => {
            let c = PageCipher::new(&key, PageMode::Gcm, 9, 1, 0).unwrap();
            for i in 0..n {
                c.encrypt_in_place(i, &mut page).unwrap();
            }
        }
        "gcm-c" => {
            let k = c_key(&key);
            let mut c = std::ptr::null_mut();
            assert_eq!(cellar_page_cipher_new(k, CELLAR_PAGE_GCM, 9, 1, 0, &mut c), 0);
            for i in 0..n {
                assert_eq!(cellar_page_encrypt(c, i, page.as_ptr(), page.as_mut_ptr(), PAGE), 0);
            }
        }
        "gcm-base" => {
            let raw = key.dangerous_export_raw();
            let rnk = RandomizedNonceKey::new(&AES_256_GCM, &raw).unwrap();
            for _ in 0..n {
                let _ = black_box(rnk.seal_in_place_separate_tag(Aad::from(&[0u8; 28]), &mut page).unwrap());
            }
        }
        "cell-rust" => {
            let c = CellCipher::new(&key, CellMode::Randomized, 1).unwrap();
            for _ in 0..n {
                black_box(c.encrypt_to(ctx, &cell, &mut ct).unwrap());
            }
        }
        "cell-c" => {
            let k = c_key(&key);
            let mut c = std::ptr::null_mut();
            assert_eq!(cellar_cell_cipher_new(k, CELLAR_CELL_RANDOMIZED, 1, &mut c), 0);
            for _ in 0..n {
                assert_eq!(
                    cellar_cell_encrypt(c, ctx.as_ptr(), ctx.len(), cell.as_ptr(), CELL, ct.as_mut_ptr(), ct.len(), &mut ct_len),
                    0
                );
            }
        }
        "cell-base" => {
            let raw = key.dangerous_export_raw();
            let rnk = RandomizedNonceKey::new(&AES_256_GCM, &raw).unwrap();
            let mut buf = cell;
            for _ in 0..n {
                let _ = black_box(rnk.seal_in_place_separate_tag(Aad::from(&ctx[..]), &mut buf).unwrap());
            }
        }
        _ => {
            eprintln!("usage: instr <xts-rust|xts-c|xts-base|gcm-rust|gcm-c|gcm-base|cell-rust|cell-c|cell-base> <n>");
            std::process::exit(2);
        }
    }
    black_box((&out, &page, &ct, ct_len));
}
