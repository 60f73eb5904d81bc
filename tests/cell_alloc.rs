//! SPEC 7: no heap allocation per cell operation on the C path.
//!
//! Counts every heap allocation made on the test thread while it calls the `extern "C"`
//! functions, in both allocators that could be involved:
//! * Rust's (Cellar, aws-lc-rs): a counting `#[global_allocator]`;
//! * AWS-LC's own `OPENSSL_malloc` (C code inside the module): counting hooks installed with
//!   `CRYPTO_set_mem_functions`, which keep AWS-LC's default 8-byte size prefix so that blocks
//!   allocated before the hooks were installed are still freed correctly.
//!
//! After a warm-up call (first use of a thread's DRBG and last-error slot allocates once), a
//! thousand calls of each kind must allocate nothing in Rust, and nothing in C beyond what the
//! module's own DRBG allocates per draw: AWS-LC FIPS 3.1.0's `RAND_bytes` makes one
//! `OPENSSL_malloc` per call (3.0.0 made none), which Cellar cannot avoid while it takes its
//! nonces and IVs from the approved DRBG. That per-draw cost is measured here first, by calling
//! the DRBG directly, and each random-IV mode may allocate exactly that much per value. One test function: the counters are per
//! thread, but the hooks are process-wide and can be installed only once.

use cellar::ffi::cell::*;
use cellar::ffi::keys::{cellar_key, cellar_key_free, cellar_key_generate, CELLAR_KEY_AES256};
use cellar::ffi::CELLAR_OK;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static RUST_ALLOCS: Cell<u64> = const { Cell::new(0) };
    static C_ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = counter.try_with(|n| n.set(n.get() + 1));
        }
    });
}

struct Counting;
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(&RUST_ALLOCS);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(&RUST_ALLOCS);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

extern "C" {
    fn malloc(n: usize) -> *mut c_void;
    fn realloc(p: *mut c_void, n: usize) -> *mut c_void;
    fn free(p: *mut c_void);
}

const PREFIX: usize = 8;

unsafe extern "C" fn c_malloc(n: usize, _: *const c_char, _: c_int) -> *mut c_void {
    note(&C_ALLOCS);
    unsafe {
        let p = malloc(n + PREFIX).cast::<usize>();
        if p.is_null() {
            return p.cast();
        }
        p.write(n);
        p.cast::<u8>().add(PREFIX).cast()
    }
}

unsafe extern "C" fn c_realloc(p: *mut c_void, n: usize, f: *const c_char, l: c_int) -> *mut c_void {
    if p.is_null() {
        return unsafe { c_malloc(n, f, l) };
    }
    note(&C_ALLOCS);
    unsafe {
        let q = realloc(p.cast::<u8>().sub(PREFIX).cast(), n + PREFIX).cast::<usize>();
        if q.is_null() {
            return q.cast();
        }
        q.write(n);
        q.cast::<u8>().add(PREFIX).cast()
    }
}

unsafe extern "C" fn c_free(p: *mut c_void, _: *const c_char, _: c_int) {
    if !p.is_null() {
        unsafe { free(p.cast::<u8>().sub(PREFIX).cast()) }
    }
}

/// Runs `f` `n` times after one warm-up call; returns (Rust, C) allocations during the `n` calls.
fn count(n: usize, mut f: impl FnMut()) -> (u64, u64) {
    f();
    RUST_ALLOCS.with(|c| c.set(0));
    C_ALLOCS.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    for _ in 0..n {
        f();
    }
    COUNTING.with(|c| c.set(false));
    (RUST_ALLOCS.with(Cell::get), C_ALLOCS.with(Cell::get))
}

#[test]
fn c_path_allocates_nothing_per_cell() {
    // SAFETY: called once, before any other AWS-LC use in this process by this test.
    let hooked = unsafe {
        aws_lc_fips_sys::CRYPTO_set_mem_functions(Some(c_malloc), Some(c_realloc), Some(c_free))
    };
    assert_eq!(hooked, 1, "CRYPTO_set_mem_functions refused");

    // Prove the hooks see AWS-LC's allocations: making a key and a cipher allocates in C.
    let mut key: *mut cellar_key = std::ptr::null_mut();
    let (_, c_setup) = count(1, || {
        let mut k = std::ptr::null_mut();
        assert_eq!(cellar_key_generate(CELLAR_KEY_AES256, &mut k), CELLAR_OK);
        let mut c = std::ptr::null_mut();
        assert_eq!(cellar_cell_cipher_new(k, CELLAR_CELL_RANDOMIZED, 1, &mut c), CELLAR_OK);
        cellar_cell_cipher_free(c);
        cellar_key_free(k);
    });
    assert!(c_setup > 0, "the C allocation hooks saw nothing: the check would be vacuous");
    assert_eq!(cellar_key_generate(CELLAR_KEY_AES256, &mut key), CELLAR_OK);

    // The module's own allocations per DRBG draw (0 in AWS-LC FIPS 3.0.0, 1 in 3.1.0).
    let mut nonce = [0u8; 12];
    let drbg = count(1000, || aws_lc_rs::rand::fill(&mut nonce).unwrap());
    assert_eq!(drbg.0, 0, "the DRBG allocates in Rust");
    assert_eq!(drbg.1 % 1000, 0, "the module's DRBG allocates a varying amount: {drbg:?}");
    let per_draw = drbg.1 / 1000;
    // Whether `got` (Rust, C) allocations over `values` values are the module's DRBG only: none
    // in Rust; in C, one DRBG draw's worth per value in the random-IV modes (RANDOMIZED nonces,
    // Always Encrypted randomized IVs) and nothing in the others. When the DRBG allocates at all,
    // its periodic reseed may add one more per thousand draws (seen: 1601 for 1600 values).
    let drbg_only = |mode: u32, values: u64, got: (u64, u64)| -> bool {
        let draws = if mode == CELLAR_CELL_RANDOMIZED || mode == CELLAR_CELL_MSSQL_RANDOMIZED { values } else { 0 };
        let base = per_draw * draws;
        let reseed_slack = if per_draw > 0 && draws > 0 { draws / 1000 + 1 } else { 0 };
        got.0 == 0 && got.1 >= base && got.1 <= base + reseed_slack
    };

    let ctx = b"tenant 7/table users/column email/row 123456";
    let pt = [0x42u8; 64];
    let mut report = Vec::new();
    for mode in [
        CELLAR_CELL_RANDOMIZED,
        CELLAR_CELL_DETERMINISTIC,
        CELLAR_CELL_MSSQL_RANDOMIZED,
        CELLAR_CELL_MSSQL_DETERMINISTIC,
    ] {
        let context: &[u8] = if mode >= CELLAR_CELL_MSSQL_RANDOMIZED { b"" } else { ctx };
        let mut c = std::ptr::null_mut();
        assert_eq!(cellar_cell_cipher_new(key, mode, 1, &mut c), CELLAR_OK);
        let mut ct = [0u8; 200];
        let mut ct_len = 0usize;
        let enc = count(1000, || {
            let st = cellar_cell_encrypt(
                c, context.as_ptr(), context.len(), pt.as_ptr(), pt.len(), ct.as_mut_ptr(), ct.len(), &mut ct_len,
            );
            assert_eq!(st, CELLAR_OK);
        });
        let mut back = [0u8; 200];
        let mut back_len = 0usize;
        let dec = count(1000, || {
            let st = cellar_cell_decrypt(
                c, context.as_ptr(), context.len(), ct.as_ptr(), ct_len, back.as_mut_ptr(), back.len(), &mut back_len,
            );
            assert_eq!(st, CELLAR_OK);
        });
        assert_eq!(&back[..back_len], &pt[..]);

        // A batch of 16 values.
        let values = [0x17u8; 16 * 40];
        let offsets: Vec<usize> = (0..=16).map(|i| i * 40).collect();
        let mut out = vec![0u8; 16 * 200];
        let mut out_offsets = [0usize; 17];
        let mut out_len = 0usize;
        let benc = count(100, || {
            let st = cellar_cell_encrypt_batch(
                c, context.as_ptr(), context.len(), values.as_ptr(), offsets.as_ptr(), 16, out.as_mut_ptr(),
                out.len(), out_offsets.as_mut_ptr(), &mut out_len,
            );
            assert_eq!(st, CELLAR_OK);
        });
        let mut plain = vec![0u8; 16 * 200];
        let mut plain_offsets = [0usize; 17];
        let mut plain_len = 0usize;
        let bdec = count(100, || {
            let st = cellar_cell_decrypt_batch(
                c, context.as_ptr(), context.len(), out.as_ptr(), out_offsets.as_ptr(), 16, plain.as_mut_ptr(),
                plain.len(), plain_offsets.as_mut_ptr(), &mut plain_len,
            );
            assert_eq!(st, CELLAR_OK);
        });
        assert_eq!(&plain[..plain_len], &values[..]);

        // Per-row contexts (issue 20): a shared prefix plus a per-row suffix, 32-bit offsets.
        let empty: [u32; 17] = [0; 17];
        let suffix_offsets: Vec<u32> = (0..=16).map(|i| i * 8).collect();
        let suffixes = [b'k'; 16 * 8];
        let rows = if mode >= CELLAR_CELL_MSSQL_RANDOMIZED {
            cellar_row_contexts { prefix: std::ptr::null(), prefix_len: 0, suffixes: std::ptr::null(), suffix_offsets: empty.as_ptr().cast(), offset_width: CELLAR_OFFSETS_32 }
        } else {
            cellar_row_contexts { prefix: ctx.as_ptr(), prefix_len: ctx.len(), suffixes: suffixes.as_ptr(), suffix_offsets: suffix_offsets.as_ptr().cast(), offset_width: CELLAR_OFFSETS_32 }
        };
        let renc = count(100, || {
            let st = cellar_cell_encrypt_batch_rows(
                c, &rows, values.as_ptr(), offsets.as_ptr(), 16, out.as_mut_ptr(), out.len(), out_offsets.as_mut_ptr(),
                &mut out_len,
            );
            assert_eq!(st, CELLAR_OK);
        });
        let rdec = count(100, || {
            let st = cellar_cell_decrypt_batch_rows(
                c, &rows, out.as_ptr(), out_offsets.as_ptr(), 16, plain.as_mut_ptr(), plain.len(),
                plain_offsets.as_mut_ptr(), &mut plain_len,
            );
            assert_eq!(st, CELLAR_OK);
        });
        assert_eq!(&plain[..plain_len], &values[..]);
        assert!(drbg_only(mode, 1600, renc), "mode {mode}: per-row batch encrypt allocates: {renc:?} (DRBG {drbg:?} per 1000)");
        assert_eq!(rdec, (0, 0), "mode {mode}: per-row batch decrypt allocates");
        report.push((mode, enc, dec, benc, bdec));
        cellar_cell_cipher_free(c);
    }
    let mut idx = [0u8; 16];
    let blind = count(1000, || {
        let st = cellar_blind_index(key, ctx.as_ptr(), ctx.len(), pt.as_ptr(), pt.len(), idx.as_mut_ptr(), 16);
        assert_eq!(st, CELLAR_OK);
    });
    let mut bkey = std::ptr::null_mut();
    assert_eq!(cellar_blind_index_key_new(key, CELLAR_BLIND_INDEX_V1, &mut bkey), CELLAR_OK);
    let bhandle = count(1000, || {
        let st = cellar_blind_index_compute(bkey, ctx.as_ptr(), ctx.len(), pt.as_ptr(), pt.len(), idx.as_mut_ptr(), 16);
        assert_eq!(st, CELLAR_OK);
    });
    let values = [0x17u8; 16 * 64];
    let offsets: Vec<usize> = (0..=16).map(|i| i * 64).collect();
    let suffix_offsets: Vec<u64> = (0..=16).map(|i| i * 6).collect();
    let suffixes = [b'r'; 16 * 6];
    let rows = cellar_row_contexts { prefix: ctx.as_ptr(), prefix_len: ctx.len(), suffixes: suffixes.as_ptr(), suffix_offsets: suffix_offsets.as_ptr().cast(), offset_width: CELLAR_OFFSETS_64 };
    let mut idxs = [0u8; 16 * 16];
    let mut il = 0usize;
    let bbatch = count(100, || {
        let st = cellar_blind_index_batch(bkey, ctx.as_ptr(), ctx.len(), values.as_ptr(), offsets.as_ptr(), 16, 16, idxs.as_mut_ptr(), idxs.len(), &mut il);
        assert_eq!(st, CELLAR_OK);
        let st = cellar_blind_index_batch_rows(bkey, &rows, values.as_ptr(), offsets.as_ptr(), 16, 16, idxs.as_mut_ptr(), idxs.len(), &mut il);
        assert_eq!(st, CELLAR_OK);
    });
    cellar_blind_index_key_free(bkey);
    assert_eq!(bhandle, (0, 0), "blind index key compute allocates");
    assert_eq!(bbatch, (0, 0), "blind index batches allocate");
    cellar_key_free(key);
    eprintln!("allocations (rust, C) per 1000 single / 100 batch calls: {report:?}; blind index {blind:?}");
    for (mode, enc, dec, benc, bdec) in report {
        assert!(drbg_only(mode, 1000, enc), "mode {mode}: encrypt allocates: {enc:?} (DRBG {drbg:?} per 1000)");
        assert_eq!(dec, (0, 0), "mode {mode}: decrypt allocates");
        assert!(drbg_only(mode, 1600, benc), "mode {mode}: batch encrypt allocates: {benc:?} (DRBG {drbg:?} per 1000)");
        assert_eq!(bdec, (0, 0), "mode {mode}: batch decrypt allocates");
    }
    assert_eq!(blind, (0, 0), "blind index allocates");
}
