//! Two cores against one (issue 18), printed as tables; not a criterion bench.
//!
//! * Page runs of 1 .. 4096 pages of 8 KiB, XTS and GCM, encrypt: `threads = 1` against
//!   `threads = 2`, in alternating rounds (1, 2, 1, 2, ...) in this one process. For each size the
//!   median time per run of each setting, and the median and spread (min..max) of the per-round
//!   speed-up (time with 1 thread / time with 2).
//! * Cells of 64 bytes, RANDOMIZED and DETERMINISTIC, runs of 10 000 values: a batch call with
//!   `threads = 1` against `threads = 2`, and one cell cipher shared by two threads calling the
//!   single-value API against one thread doing the same, alternating likewise.
//!
//! * The hand-off latency of a rayon-core worker, parked and awake.
//!
//! `cargo bench --bench threads` (ROUNDS=n sets the rounds, default 9; ONLY=pages|cells|handoff;
//! AA=1 runs the page table with one thread on both sides, to show the harness's own spread).

use cellar::cell::{batch_ciphertext_len, CellCipher, CellMode};
use cellar::page::{PageCipher, PageMode};
use cellar::{Key, KeyType};
use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Alternating rounds of `a` (one thread) and `b` (two), `iters` calls each per round.
/// Returns (median us per call of a, of b, median speed-up, min, max).
fn rounds(n: usize, iters: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64, f64, f64, f64) {
    for _ in 0..iters.div_ceil(4) {
        a();
        b();
    }
    let (mut ta, mut tb, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        for _ in 0..iters {
            a();
        }
        let x = t.elapsed().as_secs_f64() / iters as f64;
        let t = Instant::now();
        for _ in 0..iters {
            b();
        }
        let y = t.elapsed().as_secs_f64() / iters as f64;
        ta.push(x * 1e6);
        tb.push(y * 1e6);
        r.push(x / y);
    }
    let m = median(&mut r);
    (median(&mut ta), median(&mut tb), m, r[0], r[n - 1])
}

fn pages(n: usize) {
    let ps = 8192;
    let xk = Key::generate(KeyType::Aes256Xts).unwrap();
    let gk = Key::generate(KeyType::Aes256).unwrap();
    let xts = PageCipher::new(&xk, PageMode::Xts, 9, 1, 0).unwrap();
    let gcm = PageCipher::new(&gk, PageMode::Gcm, 9, 1, 0).unwrap();
    // AA=1: both settings use one thread, to see the harness's own bias and noise.
    let b_threads = if std::env::var_os("AA").is_some() { 1 } else { 2 };
    println!("page runs, 8 KiB pages, encrypt; {n} alternating rounds; time per run (median), speed-up = t(1)/t({b_threads})");
    println!("| mode | pages | threads=1 us | threads=2 us | speed-up median | min | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, c) in [("XTS", &xts), ("GCM", &gcm)] {
        for count in [1usize, 4, 16, 64, 256, 1024, 4096] {
            let input = vec![3u8; ps * count];
            let mut o1 = vec![0u8; ps * count];
            let mut o2 = vec![0u8; ps * count];
            // About 40 ms of work per setting per round.
            let iters = (5000 / count).max(1);
            let (a, b, m, lo, hi) = rounds(
                n,
                iters,
                || c.encrypt_pages(0, &input, &mut o1, ps, 1).unwrap(),
                || c.encrypt_pages(0, &input, &mut o2, ps, b_threads).unwrap(),
            );
            println!("| {name} | {count} | {a:.1} | {b:.1} | {m:.2} | {lo:.2} | {hi:.2} |");
        }
    }
}

fn cells(n: usize) {
    let key = Key::generate(KeyType::Aes256).unwrap();
    let count = 10_000usize;
    let vlen = 64usize;
    let values: Vec<u8> = (0..count * vlen).map(|i| (i * 7 % 251) as u8).collect();
    let offsets: Vec<usize> = (0..=count).map(|i| i * vlen).collect();
    println!();
    println!("cells of {vlen} bytes, runs of {count} values; {n} alternating rounds; ns per value (median), speed-up = t(1)/t(2)");
    println!("| mode | form | 1 thread ns/value | 2 threads ns/value | speed-up median | min | max |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for mode in [CellMode::Randomized, CellMode::Deterministic] {
        let c = CellCipher::new(&key, mode, 1).unwrap();
        let total = batch_ciphertext_len(mode, &offsets).unwrap();
        let mut out = vec![0u8; total];
        let mut oo = vec![0usize; count + 1];
        let mut out2 = vec![0u8; total];
        let mut oo2 = vec![0usize; count + 1];
        let (a, b, m, lo, hi) = rounds(
            n,
            3,
            || {
                c.encrypt_batch_threads_to(b"ctx", &values, &offsets, &mut out, &mut oo, 1).unwrap();
            },
            || {
                c.encrypt_batch_threads_to(b"ctx", &values, &offsets, &mut out2, &mut oo2, 2).unwrap();
            },
        );
        let per = |us: f64| us * 1000.0 / count as f64;
        println!("| {mode:?} | encrypt batch, threads 1 vs 2 | {:.0} | {:.0} | {m:.2} | {lo:.2} | {hi:.2} |", per(a), per(b));
        let room = cellar::cell::batch_plaintext_max_len(mode, &oo).unwrap();
        let mut p1 = vec![0u8; room];
        let mut p2 = vec![0u8; room];
        let mut po1 = vec![0usize; count + 1];
        let mut po2 = vec![0usize; count + 1];
        let (a, b, m, lo, hi) = rounds(
            n,
            3,
            || {
                c.decrypt_batch_threads_to(b"ctx", &out, &oo, &mut p1, &mut po1, 1).unwrap();
            },
            || {
                c.decrypt_batch_threads_to(b"ctx", &out, &oo, &mut p2, &mut po2, 2).unwrap();
            },
        );
        println!("| {mode:?} | decrypt batch, threads 1 vs 2 | {:.0} | {:.0} | {m:.2} | {lo:.2} | {hi:.2} |", per(a), per(b));
        // One cipher shared by two threads, each encrypting `count / 2` values one call at a
        // time, against one thread encrypting all `count` the same way.
        let single = |c: &CellCipher, lo: usize, hi: usize| {
            let mut buf = [0u8; 256];
            for i in lo..hi {
                c.encrypt_to(b"ctx", &values[i * vlen..(i + 1) * vlen], &mut buf).unwrap();
            }
        };
        let (a, b, m, lo, hi) = rounds(
            n,
            3,
            || single(&c, 0, count),
            || {
                std::thread::scope(|s| {
                    s.spawn(|| single(&c, 0, count / 2));
                    single(&c, count / 2, count);
                })
            },
        );
        println!("| {mode:?} | shared cipher, single calls, 1 vs 2 threads | {:.0} | {:.0} | {m:.2} | {lo:.2} | {hi:.2} |", per(a), per(b));
    }
    // The module alone, no Cellar: one aws-lc-rs RandomizedNonceKey (AES-256-GCM, nonce from
    // the module's DRBG, as a RANDOMIZED cell seals) shared by two threads against one thread,
    // the same values and rounds: the ceiling of what two threads give on this machine.
    use aws_lc_rs::aead::{Aad, RandomizedNonceKey, AES_256_GCM};
    let rk = RandomizedNonceKey::new(&AES_256_GCM, &[7u8; 32]).unwrap();
    let seal = |lo: usize, hi: usize| {
        let mut buf = Vec::with_capacity(vlen + 16);
        for i in lo..hi {
            buf.clear();
            buf.extend_from_slice(&values[i * vlen..(i + 1) * vlen]);
            rk.seal_in_place_append_tag(Aad::from(b"ctx"), &mut buf).unwrap();
        }
    };
    let (a, b, m, lo, hi) = rounds(
        n,
        3,
        || seal(0, count),
        || {
            std::thread::scope(|s| {
                s.spawn(|| seal(0, count / 2));
                seal(count / 2, count);
            })
        },
    );
    let per = |us: f64| us * 1000.0 / count as f64;
    println!("| (module alone) | RandomizedNonceKey seal, 1 vs 2 threads | {:.0} | {:.0} | {m:.2} | {lo:.2} | {hi:.2} |", per(a), per(b));
}

/// Hand-off latency of a rayon-core pool of one worker: from `spawn` to the job's first
/// instruction, when the worker is parked (2 ms idle before each hand-off) and when it is awake
/// (hand-offs back to back). Median and spread of 200 samples each, in us.
fn handoff(n: usize) {
    let pool = rayon_core::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let sample = |idle: Option<std::time::Duration>| {
        let mut v = Vec::new();
        for _ in 0..200 {
            if let Some(d) = idle {
                std::thread::sleep(d);
            }
            let t = Instant::now();
            let started = std::sync::Mutex::new(0.0f64);
            pool.in_place_scope(|s| {
                s.spawn(|_| *started.lock().unwrap() = t.elapsed().as_secs_f64() * 1e6);
            });
            v.push(started.into_inner().unwrap());
        }
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2], v[v.len() / 10], v[v.len() * 9 / 10])
    };
    println!();
    println!("hand-off latency to a rayon-core worker (spawn to start), us: median (10th..90th percentile); rounds {n} not used here");
    let (m, lo, hi) = sample(Some(std::time::Duration::from_millis(2)));
    println!("  parked worker (2 ms idle before each): {m:.1} ({lo:.1}..{hi:.1})");
    let (m, lo, hi) = sample(None);
    println!("  awake worker (back to back):           {m:.1} ({lo:.1}..{hi:.1})");
    println!("  cellar's running estimate after the runs above: {:.1} us", cellar::par::handoff_ns() as f64 / 1000.0);
}

fn main() {
    let n: usize = std::env::var("ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(9);
    let only = std::env::var("ONLY").unwrap_or_default();
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    if only.is_empty() || only == "pages" {
        pages(n);
    }
    if only.is_empty() || only == "cells" {
        cells(n);
    }
    if only.is_empty() || only == "handoff" {
        handoff(n);
    }
}
