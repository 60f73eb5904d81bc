//! No heap allocation per page on the C path: a counting global allocator wraps the system one,
//! and the `extern "C"` page functions are called in a loop after a warm-up (which keys this
//! thread's slot and caches the subkey). Each loop must allocate nothing at all.

use cellar::ffi::keys::{cellar_key, cellar_key_free, cellar_key_generate, CELLAR_KEY_AES256, CELLAR_KEY_AES256_XTS};
use cellar::ffi::page::*;
use cellar::ffi::CELLAR_OK;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;
// Counted per thread, so tests running in parallel do not see each other's allocations.
thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}
fn count() -> usize {
    ALLOCS.with(Cell::get)
}
fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn cipher(key_type: u32, mode: u32) -> (*mut cellar_key, *mut cellar_page_cipher) {
    let mut k = std::ptr::null_mut();
    assert_eq!(cellar_key_generate(key_type, &mut k), CELLAR_OK);
    let mut c = std::ptr::null_mut();
    assert_eq!(cellar_page_cipher_new(k, mode, 11, 1, 0, &mut c), CELLAR_OK);
    (k, c)
}

/// Runs `f` 1000 times after a warm-up and returns how many allocations the loop made.
/// (The module allocates through its own OPENSSL_malloc, which is libc malloc, not Rust's
/// allocator: `valgrind` / `ltrace` numbers for it are in the report; the AWS-LC calls used
/// here, EVP_CipherInit_ex with only a tweak, EVP_Cipher, EVP_AEAD_CTX_seal_scatter and
/// open_gather, do not allocate.)
fn allocations(mut f: impl FnMut(u64)) -> usize {
    for i in 0..10 {
        f(i);
    }
    let before = count();
    for i in 0..1000 {
        f(i);
    }
    count() - before
}

#[test]
fn page_c_path_allocates_nothing() {
    for (kt, mode) in [(CELLAR_KEY_AES256_XTS, CELLAR_PAGE_XTS), (CELLAR_KEY_AES256, CELLAR_PAGE_GCM)] {
        let (k, c) = cipher(kt, mode);
        let mut page = vec![7u8; 8192];
        let mut out = vec![0u8; 8192];
        let mut back = vec![0u8; 8192];
        let n = allocations(|i| {
            assert_eq!(cellar_page_encrypt(c, i, page.as_ptr(), out.as_mut_ptr(), 8192), CELLAR_OK);
            assert_eq!(cellar_page_decrypt(c, i, out.as_ptr(), back.as_mut_ptr(), 8192), CELLAR_OK);
            assert_eq!(cellar_page_encrypt(c, i, page.as_ptr(), page.as_mut_ptr(), 8192), CELLAR_OK);
            assert_eq!(cellar_page_decrypt(c, i, page.as_ptr(), page.as_mut_ptr(), 8192), CELLAR_OK);
        });
        assert_eq!(n, 0, "mode {mode}: {n} allocations in 4000 page calls");
        let mut run = vec![1u8; 8192 * 8];
        let n = allocations(|i| {
            assert_eq!(cellar_page_encrypt_pages(c, i * 8, run.as_ptr(), run.as_mut_ptr(), 8192, 8, 1), CELLAR_OK);
            assert_eq!(cellar_page_decrypt_pages(c, i * 8, run.as_ptr(), run.as_mut_ptr(), 8192, 8, 0), CELLAR_OK);
        });
        assert_eq!(n, 0, "mode {mode}: batch calls allocated {n} times");
        let mut kv = 0u32;
        if mode == CELLAR_PAGE_GCM {
            let n = allocations(|_| assert_eq!(cellar_page_key_version(out.as_ptr(), 8192, &mut kv), CELLAR_OK));
            assert_eq!(n, 0);
        }
        cellar_page_cipher_free(c);
        cellar_key_free(k);
    }
}

#[test]
fn counting_allocator_counts() {
    // The check above could pass vacuously if the allocator were not in use.
    let before = count();
    let v = std::hint::black_box(vec![1u8; 100]);
    drop(v);
    assert!(count() > before);
    // And it sees allocations inside the C path: a failing call formats its last-error text.
    let (k, c) = cipher(CELLAR_KEY_AES256, CELLAR_PAGE_GCM);
    let bad = vec![1u8; 512];
    let mut out = vec![0u8; 512];
    let n = allocations(|i| assert_ne!(cellar_page_decrypt(c, i, bad.as_ptr(), out.as_mut_ptr(), 512), CELLAR_OK));
    assert!(n >= 1000, "error path made {n} allocations");
    cellar_page_cipher_free(c);
    cellar_key_free(k);
}
