//! The process-wide worker pool behind multi-threaded calls (page runs, cell batches), and the
//! one routine that shares a call's work between the calling thread and the workers.
//!
//! A call is cut into *pieces* (contiguous, in order). The calling thread and up to
//! `threads - 1` workers take pieces from one shared counter until none is left, so a worker
//! that is slow to wake only takes fewer pieces: the call is never held up by work it handed
//! off and nobody started. When the pieces run out, a worker that has not started is dropped
//! from the call (it wakes later to nothing: `Handoff`); the caller waits only for workers
//! already on a piece.
//!
//! Measured on the 2-vCPU build machines (KVM guests): waking a parked rayon worker costs the
//! caller about 30-50 us from the hand-off to the first piece on the other core, most of it the
//! guest waking an idle vCPU (a futex wake and an inter-processor interrupt through the
//! hypervisor), against 2-5 us when the worker is still awake. Hence, after every piece of work,
//! a worker stays awake for [`WARM_SPIN`] polling for the next hand-off before rayon parks it.

use crate::error::Error;
use crate::fips::{self, operation, service, Approval};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most threads a multi-threaded call uses, whatever the caller asks.
pub const MAX_THREADS: usize = 64;

/// How long a worker keeps polling for new work after finishing its share of a call, before it
/// returns to rayon (which yields 32 more rounds, then parks it). Back-to-back calls (a scan, a
/// checkpoint) then hand off to an awake worker. A worker polls only after it did work, so an
/// idle process burns nothing; the cost is at most this much CPU per multi-threaded call, and
/// none while the hand-off estimate says the machine is too busy for a spin to help.
pub const WARM_SPIN: Duration = Duration::from_micros(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process-wide workers: one fewer than the CPUs available (at most [`MAX_THREADS`] - 1),
/// started on the first multi-threaded call and kept for the life of the process, so a call
/// pays a queue hand-off instead of a thread spawn and the module's per-thread set-up. A child
/// of `fork()` has none of its parent's threads: it starts its own pool on first use (the
/// parent's is leaked there). `None` when the machine has one CPU or no thread can be started.
pub(crate) fn workers() -> Option<&'static rayon_core::ThreadPool> {
    static POOL: Mutex<Option<(u32, Option<&'static rayon_core::ThreadPool>)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut g = lock(&POOL);
    match *g {
        Some((p, pool)) if p == pid => pool,
        _ => {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let n = cpus.min(MAX_THREADS) - 1;
            let pool = if n == 0 {
                None
            } else {
                rayon_core::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("cellar-worker-{i}"))
                    .build()
                    .ok()
                    .map(|p| &*Box::leak(Box::new(p)))
            };
            *g = Some((pid, pool));
            pool
        }
    }
}

thread_local! {
    /// Set by [`force_split`] (tests only): this thread shares every multi-threaded call.
    static FORCE: Cell<bool> = const { Cell::new(false) };
    /// Set while this worker is in its warm spin (so a call run from the spin does not start
    /// a nested one).
    static SPINNING: Cell<bool> = const { Cell::new(false) };
}

/// Keeps the current worker awake for [`WARM_SPIN`], running any job handed to the pool
/// meanwhile (each such job extends the spin). Runs after the helper marked itself done, so the
/// call that just finished does not wait for it.
fn warm_spin(pool: &'static rayon_core::ThreadPool) {
    if SPINNING.with(|s| s.replace(true)) {
        return;
    }
    let mut until = Instant::now() + WARM_SPIN;
    loop {
        match pool.yield_now() {
            Some(rayon_core::Yield::Executed) => until = Instant::now() + WARM_SPIN,
            Some(rayon_core::Yield::Idle) => {
                if Instant::now() >= until {
                    break;
                }
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            }
            None => break,
        }
    }
    SPINNING.with(|s| s.set(false));
}

/// Hand-off latency estimate in ns: how long after a hand-off a worker started on it (an
/// exponentially weighted average over recent multi-threaded calls; see `record_handoff`).
static HANDOFF_NS: AtomicU64 = AtomicU64::new(DEFAULT_HANDOFF_NS);
/// Starting estimate: a parked worker on these machines (see the module comment).
const DEFAULT_HANDOFF_NS: u64 = 40_000;
/// Calls kept on one thread because of the estimate since the last one that split anyway.
static SKIPPED: AtomicUsize = AtomicUsize::new(0);
/// Every this many calls kept on one thread by the estimate, one splits anyway, so that an
/// estimate raised by a busy spell comes back down.
const PROBE_EVERY: usize = 16;

/// Folds one hand-off sample into the estimate: slowly up, quickly down. A sample above the
/// estimate counts 1/8 and for at most twice the estimate plus 50 us, so one preempted worker (a
/// time slice on a busy machine is milliseconds) moves it a little while a sustained rise still
/// doubles it every few calls; a sample below counts 1/2, so once the machine is idle again a few
/// probes bring sharing back.
fn record_handoff(ns: u64) {
    let old = HANDOFF_NS.load(Ordering::Relaxed);
    let ns = ns.clamp(1_000, 2 * old + 50_000);
    let new = if ns < old { old / 2 + ns / 2 } else { old - old / 8 + ns / 8 };
    HANDOFF_NS.store(new.min(5_000_000), Ordering::Relaxed);
}

/// How long the calling thread, done with its pieces, waits awake (yielding) for helpers still
/// on theirs, before it sleeps in short steps.
const WAIT_AWAKE: Duration = Duration::from_millis(2);

/// Below this hand-off estimate the machine has idle cores and a warm spin pays; above it the
/// workers wait for a time slice anyway, and spinning would only take CPU from other processes.
const SPIN_WHILE_HANDOFF_UNDER_NS: u64 = 200_000;

/// For tests: makes every call from this thread with `threads` > 1 shared (whatever its size
/// and the estimates), so the shared paths can be checked on small inputs. Not for production.
#[doc(hidden)]
pub fn force_split(on: bool) {
    FORCE.with(|f| f.set(on));
}

/// Whether [`force_split`] is on for this thread.
pub(crate) fn forced() -> bool {
    FORCE.with(Cell::get)
}

/// The current hand-off latency estimate in nanoseconds.
pub fn handoff_ns() -> u64 {
    HANDOFF_NS.load(Ordering::Relaxed)
}

/// Whether a call estimated to take `work_ns` on one thread should be shared: when its work
/// is at least twice the hand-off latency (then a worker that starts late still takes a
/// useful share), with an occasional probe so the estimate follows the machine. While hand-offs
/// are slow (200 us or more: no idle core, workers wait for time slices, and one preempted
/// worker holds the call up), only calls of at least 16 hand-offs are shared.
pub(crate) fn worth_splitting(work_ns: u64) -> bool {
    let h = handoff_ns();
    let k = if h < SPIN_WHILE_HANDOFF_UNDER_NS { 2 } else { 16 };
    if work_ns >= k * h {
        return true;
    }
    SKIPPED.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY == PROBE_EVERY - 1
}

/// A failure inside a shared call: the index (of the call's items) where it happened, and why.
pub(crate) type Failure = (usize, Error);

/// What one worker reports back: its smallest failure, its operation's approval, and whether
/// it ran any piece.
type Outcome = (Option<Failure>, Approval, bool);

/// A helper's state in a [`Handoff`].
const PENDING: u8 = 0;
const STARTED: u8 = 1;
/// The call finished without this helper (it had not started): it must touch nothing.
const CLOSED: u8 = 2;
const DONE: u8 = 3;

/// The `drain` of a call, type- and lifetime-erased (see [`Handoff`]).
type Drain<'a> = dyn Fn() -> (Option<Failure>, bool) + Sync + 'a;

/// What a shared call hands its helpers. Each helper job owns an `Arc` of it, so a helper that
/// wakes after the call returned finds its state `CLOSED` and leaves without touching the
/// call's buffers: the call never waits for a worker that has not started (on the build
/// machines a parked worker wakes 15-50 us, at worst hundreds of us, after the hand-off).
struct Handoff {
    /// One per helper: `PENDING` -> `STARTED` (by the helper) -> `DONE`, or `PENDING` ->
    /// `CLOSED` (by the call, when it is done and the helper never started).
    state: Vec<AtomicU8>,
    /// The call's `drain`, its lifetime erased. Dereferenced only by a helper that moved its
    /// state from `PENDING` to `STARTED`, and only until it stores `DONE`; the call does not
    /// return (or unwind) past `drain` before every helper is `CLOSED` or `DONE`
    /// ([`CloseGuard`]).
    drain: *const Drain<'static>,
    outcomes: Mutex<Vec<Outcome>>,
    handed: Instant,
}

// SAFETY: `drain` points to a `Sync` closure, used under the protocol above; the rest is
// `Send + Sync` already.
unsafe impl Send for Handoff {}
// SAFETY: as above.
unsafe impl Sync for Handoff {}

/// Ends a shared call's hand-off when dropped (also while unwinding): closes every helper that
/// has not started, and waits for every one that has. Must be dropped before the `drain` that
/// [`Handoff::drain`] points to.
struct CloseGuard<'a>(&'a Handoff);

impl Drop for CloseGuard<'_> {
    fn drop(&mut self) {
        for st in &self.0.state {
            if st.compare_exchange(PENDING, CLOSED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                continue;
            }
            // Started: every piece is taken (the caller's drain found none left), so the
            // helper is on its last one (if the caller's own piece panicked, on what is left:
            // it must finish before the buffers go). Yield while it finishes; past WAIT_AWAKE (a preempted
            // worker on a busy machine) sleep in short steps instead.
            let t = Instant::now();
            while st.load(Ordering::Acquire) != DONE {
                if t.elapsed() < WAIT_AWAKE {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(20));
                }
            }
        }
    }
}

/// One helper: starts unless the call has closed it, drains pieces as one operation of this
/// worker thread, reports, and then stays warm for the next call.
fn helper(h: Arc<Handoff>, i: usize, pool: &'static rayon_core::ThreadPool) {
    record_handoff(h.handed.elapsed().as_nanos().min(u64::MAX as u128) as u64);
    if h.state[i].compare_exchange(PENDING, STARTED, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return; // the call is over
    }
    // SAFETY: STARTED, so the call is held in `CloseGuard::drop` until DONE below; `drain` is
    // alive until then.
    let drain = unsafe { &*h.drain };
    // A panic is caught here; the piece it was on is lost, so the call fails (index 0: which
    // piece is not known here).
    let o = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut ran = false;
        let r = operation(|| {
            let (f, any) = drain();
            ran = any;
            Ok(f)
        })
        .unwrap_or_else(|e| Some((0, e)));
        (r, fips::last_operation_approved(), ran)
    }))
    .unwrap_or_else(|_| (Some((0, Error::Internal("a worker thread panicked"))), Approval::Unknown, true));
    let ran = o.2;
    lock(&h.outcomes).push(o);
    h.state[i].store(DONE, Ordering::Release);
    // `drain` must not be used past this point.
    if ran && handoff_ns() < SPIN_WHILE_HANDOFF_UNDER_NS {
        warm_spin(pool);
    }
}

/// Runs `work(start, piece)` for every `(start, piece)` of `pieces` (`start`: the index of the
/// piece's first item), on the calling thread and at most `threads - 1` pool workers, and
/// returns the failure with the smallest index, if any. Every piece runs, even after a failure
/// (the caller zeroes the output anyway, and the smallest index must be exact).
///
/// The calling thread takes pieces too, from the same counter as the workers, so a worker that
/// wakes late only takes fewer; when the caller has run them all, a worker that has not started
/// yet is dropped from the call (it wakes later to nothing), and the call waits only for
/// workers already on a piece.
///
/// Approval: the caller must be inside its own `fips::operation`. Each worker runs its pieces
/// as one operation of its own thread; if any worker's was not approved, one uncounted service
/// is recorded on the calling thread, so the caller's indicator covers every piece.
pub(crate) fn run_pieces<P: Send>(
    pieces: Vec<(usize, P)>,
    threads: usize,
    work: impl Fn(usize, P) -> core::result::Result<(), Failure> + Sync,
) -> core::result::Result<(), Failure> {
    let helpers = threads.clamp(1, MAX_THREADS).min(pieces.len()).saturating_sub(1);
    let slots: Vec<Mutex<Option<(usize, P)>>> = pieces.into_iter().map(|p| Mutex::new(Some(p))).collect();
    let next = AtomicUsize::new(0);
    // Takes pieces until none is left; returns the smallest failure and whether it ran any.
    let drain = || -> (Option<Failure>, bool) {
        let mut first: Option<Failure> = None;
        let mut any = false;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = slots.get(i) else { break };
            let Some((start, p)) = lock(slot).take() else { continue };
            any = true;
            if let Err(e) = work(start, p) {
                if first.as_ref().map_or(true, |f| e.0 < f.0) {
                    first = Some(e);
                }
            }
        }
        (first, any)
    };
    let pool = if helpers > 0 { workers() } else { None };
    let Some(pool) = pool else {
        return drain().0.map_or(Ok(()), Err);
    };
    let helpers = helpers.min(pool.current_num_threads());
    let erased: &Drain<'_> = &drain;
    // SAFETY: only the lifetime is changed; `CloseGuard` (dropped below, before `drain`, also
    // when unwinding) keeps every use of the pointer within `drain`'s life.
    let erased: *const Drain<'static> = unsafe { std::mem::transmute::<*const Drain<'_>, *const Drain<'static>>(erased) };
    let h = Arc::new(Handoff {
        state: (0..helpers).map(|_| AtomicU8::new(PENDING)).collect(),
        drain: erased,
        outcomes: Mutex::new(Vec::with_capacity(helpers)),
        handed: Instant::now(),
    });
    let guard = CloseGuard(&h);
    for i in 0..helpers {
        let h = Arc::clone(&h);
        pool.spawn(move || helper(h, i, pool));
    }
    let own = drain().0;
    drop(guard);
    let mut first = own;
    let mut all_approved = true;
    for (f, approval, ran) in std::mem::take(&mut *lock(&h.outcomes)) {
        if let Some(e) = f {
            if first.as_ref().map_or(true, |x| e.0 < x.0) {
                first = Some(e);
            }
        } else if ran {
            all_approved &= approval == Approval::Approved;
        }
    }
    if let Some(e) = first {
        return Err(e);
    }
    if !all_approved {
        // Fold a worker's unapproved service into this thread's operation: one service call
        // that does not advance the module's indicator.
        let _ = service(|| Ok::<(), ()>(()));
    }
    Ok(())
}

/// Cuts `count` items into pieces for up to `threads` threads: about eight pieces per thread so
/// that a worker that starts late still finds work, none smaller than `min_items` items.
/// Returns the piece length in items (at least 1).
pub(crate) fn piece_len(count: usize, threads: usize, min_items: usize) -> usize {
    count.div_ceil(threads.clamp(1, MAX_THREADS) * 8).max(min_items).max(1)
}
