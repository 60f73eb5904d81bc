//! Runs shared between threads (issue 18): page runs and cell batches with `threads` > 1 give the
//! one-thread result (byte for byte where the mode is deterministic), the smallest failing index,
//! zeroed output on failure and the same approval indicator. `cellar::par::force_split` makes
//! the calling thread share every such call, so small inputs take the shared path; the unforced
//! tests check that the size rule keeps small runs on the calling thread and that a large run
//! still agrees.

use cellar::cell::{batch_ciphertext_len, batch_plaintext_max_len, CellCipher, CellMode};
use cellar::page::{PageCipher, PageMode};
use cellar::{last_operation_approved, par, Approval, Error, Key, KeyType};

fn approved() {
    assert_eq!(last_operation_approved(), Approval::Approved);
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

fn forced<T>(f: impl FnOnce() -> T) -> T {
    par::force_split(true);
    let r = f();
    par::force_split(false);
    r
}

/// Names of this process's threads (Linux), to see whether a call woke a worker.
fn worker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                .filter(|n| n.starts_with("cellar-worker"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn shared_page_runs_equal_one_thread() {
    for mode in [PageMode::Xts, PageMode::Gcm] {
        let key = Key::generate(if mode == PageMode::Xts { KeyType::Aes256Xts } else { KeyType::Aes256 }).unwrap();
        let c = PageCipher::new(&key, mode, 5, 3, 0).unwrap();
        for (ps, n) in [(512usize, 1usize), (512, 2), (4096, 7), (8192, 33), (512, 300)] {
            let pt = pattern(ps * n, n as u8);
            let mut one = vec![0u8; ps * n];
            c.encrypt_pages(40, &pt, &mut one, ps, 1).unwrap();
            for threads in [2usize, 3, 64] {
                let mut ct = vec![0u8; ps * n];
                forced(|| c.encrypt_pages(40, &pt, &mut ct, ps, threads)).unwrap();
                approved();
                if mode == PageMode::Xts {
                    assert_eq!(ct, one, "XTS {n} x {ps} threads {threads}");
                }
                // Every page opens on its own, under its own page number.
                for i in 0..n {
                    let mut p = vec![0u8; ps];
                    c.decrypt(40 + i as u64, &ct[i * ps..(i + 1) * ps], &mut p).unwrap();
                    let r = mode.reserved_bytes();
                    assert_eq!(p[..ps - r], pt[i * ps..(i + 1) * ps - r]);
                }
                let mut back = vec![0u8; ps * n];
                forced(|| c.decrypt_pages(40, &ct, &mut back, ps, threads)).unwrap();
                approved();
                let mut back1 = vec![0u8; ps * n];
                c.decrypt_pages(40, &ct, &mut back1, ps, 1).unwrap();
                assert_eq!(back, back1);
                let mut inplace = ct.clone();
                forced(|| c.decrypt_pages_in_place(40, &mut inplace, ps, threads)).unwrap();
                assert_eq!(inplace, back1);
            }
        }
    }
}

#[test]
fn shared_page_run_failure_names_the_first_bad_page_and_zeroes_all() {
    let c = PageCipher::new(&Key::generate(KeyType::Aes256).unwrap(), PageMode::Gcm, 1, 1, 0).unwrap();
    let (ps, n) = (512usize, 200usize);
    let mut ct = vec![0u8; ps * n];
    c.encrypt_pages(0, &pattern(ps * n, 1), &mut ct, ps, 1).unwrap();
    // Bad pages in different pieces: the smallest index wins whichever thread finds it first.
    for bad in [[3usize, 150], [120, 199], [0, 1]] {
        let mut t = ct.clone();
        for b in bad {
            t[b * ps + 7] ^= 1;
        }
        for threads in [2usize, 4] {
            let mut out = vec![9u8; ps * n];
            let e = forced(|| c.decrypt_pages(0, &t, &mut out, ps, threads)).unwrap_err();
            assert_eq!(e.index, bad[0], "bad {bad:?} threads {threads}");
            assert!(matches!(e.error, Error::AuthenticationFailed(_)));
            assert!(out.iter().all(|&b| b == 0));
            assert_eq!(last_operation_approved(), Approval::Unknown);
        }
    }
}

#[test]
fn small_runs_stay_on_the_calling_thread() {
    // Runs under the size floor never wake a worker: the pool is not even started by them
    // (this test binary's other tests may start it, so only check when it is absent).
    let c = PageCipher::new(&Key::generate(KeyType::Aes256Xts).unwrap(), PageMode::Xts, 1, 1, 0).unwrap();
    let ps = 8192;
    let n = cellar::page::SPLIT_MIN_BYTES / ps - 1;
    let pt = pattern(ps * n, 3);
    let mut a = vec![0u8; ps * n];
    let mut b = vec![0u8; ps * n];
    let before = worker_threads();
    for _ in 0..50 {
        c.encrypt_pages(0, &pt, &mut a, ps, 2).unwrap();
    }
    if before == 0 {
        assert_eq!(worker_threads(), 0, "a run under SPLIT_MIN_BYTES started the worker pool");
    }
    c.encrypt_pages(0, &pt, &mut b, ps, 1).unwrap();
    assert_eq!(a, b);
}

#[test]
fn large_unforced_run_agrees() {
    let c = PageCipher::new(&Key::generate(KeyType::Aes256Xts).unwrap(), PageMode::Xts, 2, 1, 0).unwrap();
    let (ps, n) = (8192usize, 1024usize);
    let pt = pattern(ps * n, 9);
    let mut a = vec![0u8; ps * n];
    let mut b = vec![0u8; ps * n];
    c.encrypt_pages(7, &pt, &mut a, ps, 2).unwrap();
    approved();
    c.encrypt_pages(7, &pt, &mut b, ps, 1).unwrap();
    assert_eq!(a, b);
}

/// Values of lengths 0..=100 (so CBC padding varies), laid out with a non-zero first offset.
fn column(count: usize) -> (Vec<u8>, Vec<usize>) {
    let mut values = vec![0xEEu8; 5];
    let mut offsets = vec![5usize];
    for i in 0..count {
        values.extend(pattern(i % 101, i as u8));
        offsets.push(values.len());
    }
    (values, offsets)
}

fn key() -> Key {
    Key::import(KeyType::Aes256, &[3u8; 32]).unwrap()
}

#[test]
fn shared_cell_batches_equal_one_thread() {
    for mode in [CellMode::Randomized, CellMode::Deterministic, CellMode::MssqlRandomized, CellMode::MssqlDeterministic] {
        let c = CellCipher::new(&key(), mode, 4).unwrap();
        let ctx: &[u8] = if mode.is_mssql() { b"" } else { b"tenant/table/column" };
        for count in [1usize, 2, 65, 700] {
            let (values, offsets) = column(count);
            let total = batch_ciphertext_len(mode, &offsets).unwrap();
            let mut one = vec![0u8; total];
            let mut one_off = vec![0usize; count + 1];
            assert_eq!(c.encrypt_batch_to(ctx, &values, &offsets, &mut one, &mut one_off).unwrap(), total);
            for threads in [2usize, 3, 64] {
                let mut ct = vec![0u8; total + 9];
                let mut ct_off = vec![7usize; count + 1];
                let n = forced(|| c.encrypt_batch_threads_to(ctx, &values, &offsets, &mut ct, &mut ct_off, threads)).unwrap();
                assert_eq!(last_operation_approved(), if mode.is_approved_scheme() { Approval::Approved } else { Approval::NotApproved }, "{mode:?}");
                assert_eq!(n, total);
                assert_eq!(ct_off, one_off, "{mode:?} {count} threads {threads}");
                let deterministic = matches!(mode, CellMode::Deterministic | CellMode::MssqlDeterministic);
                if deterministic {
                    assert_eq!(ct[..total], one[..], "{mode:?} {count} threads {threads}");
                }
                // Decrypt with one thread and with several: the same packed plaintexts.
                let room = batch_plaintext_max_len(mode, &ct_off).unwrap();
                let mut p1 = vec![0u8; room];
                let mut o1 = vec![0usize; count + 1];
                let m1 = c.decrypt_batch_to(ctx, &ct[..total], &ct_off, &mut p1, &mut o1).unwrap();
                let mut p2 = vec![0x55u8; room];
                let mut o2 = vec![0usize; count + 1];
                let m2 = forced(|| c.decrypt_batch_threads_to(ctx, &ct[..total], &ct_off, &mut p2, &mut o2, threads)).unwrap();
                assert_eq!(last_operation_approved(), if mode.is_approved_scheme() { Approval::Approved } else { Approval::NotApproved }, "{mode:?}");
                assert_eq!(m1, m2);
                assert_eq!(o1, o2);
                assert_eq!(p1[..m1], p2[..m2]);
                assert!(p2[m2..].iter().all(|&b| b == 0), "room past the plaintexts is zeroed");
                let expect: Vec<u8> = values[offsets[0]..].to_vec();
                assert_eq!(p2[..m2], expect[..]);
                for i in 0..count {
                    assert_eq!(o2[i + 1] - o2[i], offsets[i + 1] - offsets[i]);
                }
            }
        }
    }
}

#[test]
fn shared_cell_batch_failure_names_the_smallest_index() {
    for mode in [CellMode::Randomized, CellMode::Deterministic] {
        let c = CellCipher::new(&key(), mode, 1).unwrap();
        let (values, offsets) = column(600);
        let total = batch_ciphertext_len(mode, &offsets).unwrap();
        let mut ct = vec![0u8; total];
        let mut off = vec![0usize; 601];
        c.encrypt_batch_to(b"c", &values, &offsets, &mut ct, &mut off).unwrap();
        for bad in [[17usize, 500], [450, 599]] {
            let mut t = ct.clone();
            for b in bad {
                t[off[b] + 20] ^= 4;
            }
            let room = batch_plaintext_max_len(mode, &off).unwrap();
            let mut out = vec![1u8; room];
            let mut oo = vec![1usize; 601];
            let e = forced(|| c.decrypt_batch_threads_to(b"c", &t, &off, &mut out, &mut oo, 2)).unwrap_err();
            assert_eq!(e.index, Some(bad[0]), "{mode:?} bad {bad:?}");
            assert!(matches!(e.error, Error::AuthenticationFailed(_)));
            assert!(out.iter().all(|&b| b == 0));
            assert!(oo.iter().all(|&b| b == 0));
            assert_eq!(last_operation_approved(), Approval::Unknown);
        }
        // Argument errors are those of the one-thread call.
        let mut small = vec![0u8; total - 1];
        let mut oo = vec![0usize; 601];
        let e = forced(|| c.encrypt_batch_threads_to(b"c", &values, &offsets, &mut small, &mut oo, 2)).unwrap_err();
        assert_eq!(e.error, Error::BufferTooSmall { needed: total });
        let mut short = vec![0usize; 600];
        let mut out = vec![0u8; total];
        assert!(matches!(
            forced(|| c.encrypt_batch_threads_to(b"c", &values, &offsets, &mut out, &mut short, 2)).unwrap_err().error,
            Error::InvalidArgument(_)
        ));
    }
}

#[test]
fn shared_randomized_batch_counts_against_the_usage_limit() {
    let k = key();
    k.set_usage_limit(1000).unwrap();
    let c = CellCipher::new(&k, CellMode::Randomized, 1).unwrap();
    let (values, offsets) = column(600);
    let total = batch_ciphertext_len(CellMode::Randomized, &offsets).unwrap();
    let mut out = vec![0u8; total];
    let mut oo = vec![0usize; 601];
    forced(|| c.encrypt_batch_threads_to(b"", &values, &offsets, &mut out, &mut oo, 2)).unwrap();
    assert_eq!(k.usage_count(), 600);
    let e = forced(|| c.encrypt_batch_threads_to(b"", &values, &offsets, &mut out, &mut oo, 2)).unwrap_err();
    assert!(matches!(e.error, Error::UsageLimit(_)));
    assert_eq!(k.usage_count(), 600);
}

#[test]
fn empty_and_tiny_inputs() {
    let c = CellCipher::new(&key(), CellMode::Deterministic, 1).unwrap();
    let mut oo = [0usize; 1];
    assert_eq!(forced(|| c.encrypt_batch_threads_to(b"", &[], &[0], &mut [], &mut oo, 2)).unwrap(), 0);
    assert_eq!(forced(|| c.decrypt_batch_threads_to(b"", &[], &[0], &mut [], &mut oo, 2)).unwrap(), 0);
    assert!(forced(|| c.encrypt_batch_threads_to(b"", &[], &[], &mut [], &mut [], 2)).is_err());
    let p = PageCipher::new(&Key::generate(KeyType::Aes256).unwrap(), PageMode::Gcm, 1, 1, 0).unwrap();
    forced(|| p.encrypt_pages(0, &[], &mut [], 512, 2)).unwrap();
}

#[test]
fn shared_per_page_status_run_keeps_good_pages() {
    let c = PageCipher::new(&Key::generate(KeyType::Aes256).unwrap(), PageMode::Gcm, 1, 1, 0).unwrap();
    let (ps, n) = (512usize, 300usize);
    let pt = pattern(ps * n, 4);
    let mut ct = vec![0u8; ps * n];
    c.encrypt_pages(0, &pt, &mut ct, ps, 1).unwrap();
    let bad = [2usize, 170, 299];
    for b in bad {
        ct[b * ps + 1] ^= 2;
    }
    for threads in [2usize, 8] {
        let mut out = vec![7u8; ps * n];
        let mut status = vec![99i32; n];
        let e = forced(|| c.decrypt_pages_each(0, &ct, &mut out, ps, threads, &mut status)).unwrap_err();
        assert_eq!(e.index, 2);
        for i in 0..n {
            let page = &out[i * ps..(i + 1) * ps];
            if bad.contains(&i) {
                assert_ne!(status[i], 0, "page {i}");
                assert!(page.iter().all(|&b| b == 0));
            } else {
                assert_eq!(status[i], 0, "page {i}");
                assert_eq!(page[..ps - 48], pt[i * ps..(i + 1) * ps - 48]);
            }
        }
    }
}

/// A worker that wakes after the call returned must touch nothing of it: many small forced-split
/// runs from four threads, each on buffers freed right after the call (so a late worker that did
/// use them would write into freed or reused memory), all equal to the one-thread result. Run
/// under valgrind (`valgrind target/release/deps/threads-* late_workers`), an access after the
/// call shows as an invalid read or write.
#[test]
fn late_workers_never_touch_a_finished_call() {
    let key = Key::generate(KeyType::Aes256Xts).unwrap();
    let c = PageCipher::new(&key, PageMode::Xts, 3, 1, 0).unwrap();
    let ps = 512;
    let input = pattern(ps * 2, 9);
    let mut want = vec![0u8; ps * 2];
    c.encrypt_pages(0, &input, &mut want, ps, 1).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                forced(|| {
                    for i in 0..2000 {
                        let mut out = vec![0u8; ps * 2];
                        c.encrypt_pages(0, &input, &mut out, ps, 2).unwrap();
                        assert_eq!(out, want, "call {i}");
                        drop(out);
                        // Reuse the freed block at once with other contents.
                        let other = vec![0x5au8; ps * 2];
                        assert!(other.iter().all(|&b| b == 0x5a), "a late worker wrote into freed memory");
                    }
                })
            });
        }
    });
}
