//! Locked, no-dump memory for key material (issue 19 item 5; `docs/SECURITY.md`, "Key memory").
//!
//! Every [`crate::Key`]'s material (at most 64 bytes) lives in one fixed 64-byte slot of a slab
//! of whole pages mapped with `mmap`, between two inaccessible guard pages, locked into RAM with
//! `mlock` (never written to swap) and excluded from core dumps with `madvise(MADV_DONTDUMP)`,
//! the approach of libsodium's `sodium_malloc` and OpenSSL's secure heap. A slot is zeroed when
//! it is freed and then reused; slabs are never unmapped (they live as long as the process), so
//! a key costs a slot from a free list, not a system call. Slabs grow 1, 2, 4, 8, then 16 pages
//! at a time (64 slots per 4 KiB page).
//!
//! **Fallback**: when `mlock` fails (the process's `RLIMIT_MEMLOCK` is used up, or the system
//! refuses) the slab is used unlocked but still no-dump; [`status`] reports it (and retries the
//! lock), and so do `cellar_key_memory_status` and `cellar.key_memory_status()`. Where `MADV_DONTDUMP` does not
//! exist (not Linux) `nodump` is false.
//!
//! **fork()**: a `pthread_atfork` handler holds the slab lock across `fork()`, so a child never
//! inherits it held by a thread that does not exist there, and the child locks its copies of
//! the slabs again (memory locks are not inherited; `MADV_DONTDUMP` is).
//!
//! Unsafe code lives here because this is the other half of [`crate::sys`]: the module's calls
//! in `sys.rs`, the operating system's here.

use crate::error::{Error, Result};
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

/// Bytes per slot: the longest key material (AES-256-XTS, 64 bytes).
pub(crate) const SLOT_LEN: usize = 64;
/// Largest slab, in pages (the first slabs are smaller so a process with few keys locks little).
const MAX_SLAB_PAGES: usize = 16;

/// How the pages holding key material are protected, over every slab mapped so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    /// Every slab is locked into RAM (`mlock` succeeded for each).
    pub(crate) locked: bool,
    /// Every slab is excluded from core dumps (`MADV_DONTDUMP` succeeded for each).
    pub(crate) nodump: bool,
}

struct Slab {
    /// First data byte (a guard page lies before it and after `base + len`).
    base: *mut u8,
    len: usize,
    locked: bool,
    nodump: bool,
}

struct Heap {
    slabs: Vec<Slab>,
    /// Free slots, all zero. Kept outside the slots so a free slot reads as zero.
    free: Vec<*mut u8>,
}

/// The slab heap behind a spin lock: the critical sections are a push or a pop (and, rarely, a
/// slab's `mmap`), and a plain atomic flag can be held across `fork()` by the atfork handlers.
struct Global {
    busy: AtomicBool,
    heap: UnsafeCell<Heap>,
}

// SAFETY: `heap` is only reached through `Guard`, which holds `busy` (or, in the atfork
// handlers, with `busy` held by the prepare handler).
unsafe impl Sync for Global {}

static GLOBAL: Global = Global {
    busy: AtomicBool::new(false),
    heap: UnsafeCell::new(Heap { slabs: Vec::new(), free: Vec::new() }),
};

fn acquire() {
    let mut spins = 0u32;
    while GLOBAL.busy.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        if spins < 100 {
            spins += 1;
            core::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

fn release() {
    GLOBAL.busy.store(false, Ordering::Release);
}

struct Guard;

impl Guard {
    fn lock() -> Guard {
        register_atfork();
        acquire();
        Guard
    }

    fn heap(&mut self) -> &mut Heap {
        // SAFETY: this guard holds `busy`, so no other reference to the heap exists.
        unsafe { &mut *GLOBAL.heap.get() }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        release();
    }
}

impl Heap {
    /// Maps one more slab and puts its slots on the free list.
    fn grow(&mut self) -> Result<()> {
        let page = os::page_size();
        let pages = (1usize << self.slabs.len().min(4)).min(MAX_SLAB_PAGES);
        let len = pages * page;
        let base = os::map(len, page).ok_or(Error::Internal("cannot map memory for key material"))?;
        let nodump = os::nodump(base, len);
        let locked = os::lock(base, len);
        self.slabs.push(Slab { base, len, locked, nodump });
        let n = len / SLOT_LEN;
        self.free.reserve(n);
        // Lowest address on top of the stack, so slots are handed out in address order.
        for i in (0..n).rev() {
            // SAFETY: `i * SLOT_LEN < len`: inside the slab just mapped.
            self.free.push(unsafe { base.add(i * SLOT_LEN) });
        }
        Ok(())
    }

    fn status(&self) -> Status {
        Status {
            locked: self.slabs.iter().all(|s| s.locked),
            nodump: self.slabs.iter().all(|s| s.nodump),
        }
    }
}

/// How the pages holding key material are protected. Maps the first slab if none exists yet, so
/// the answer describes what the next key will get, and tries again to lock slabs that could not
/// be locked before (the limit may have been raised since).
pub(crate) fn status() -> Result<Status> {
    let mut g = Guard::lock();
    let heap = g.heap();
    if heap.slabs.is_empty() {
        heap.grow()?;
    }
    for s in heap.slabs.iter_mut().filter(|s| !s.locked) {
        s.locked = os::lock(s.base, s.len);
    }
    Ok(heap.status())
}

fn alloc_slot() -> Result<NonNull<u8>> {
    let mut g = Guard::lock();
    let heap = g.heap();
    if heap.free.is_empty() {
        heap.grow()?;
    }
    heap.free.pop().and_then(NonNull::new).ok_or(Error::Internal("no key memory slot"))
}

/// Zeroes the slot at `p` and returns it to the free list.
///
/// # Safety
/// `p` came from [`alloc_slot`] and is not used again.
unsafe fn free_slot(p: NonNull<u8>) {
    // SAFETY: the slot is SLOT_LEN writable bytes, owned by the caller until it is pushed.
    zeroize::Zeroize::zeroize(unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), SLOT_LEN) });
    Guard::lock().heap().free.push(p.as_ptr());
}

// ---------------------------------------------------------------------------------------------
// fork()

static ATFORK: std::sync::Once = std::sync::Once::new();

fn register_atfork() {
    ATFORK.call_once(|| {
        // SAFETY: the handlers only take and release the spin lock and call mlock. glibc drops a
        // shared object's handlers when it is unloaded (dlclose), so none can dangle. ENOMEM is
        // the only failure; then a fork while another thread holds the lock could leave the
        // child's copy of the lock held, as without the handler.
        #[cfg(unix)]
        let _ = unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork_parent), Some(after_fork_child)) };
    });
}

#[cfg(unix)]
extern "C" fn before_fork() {
    acquire();
}

#[cfg(unix)]
extern "C" fn after_fork_parent() {
    release();
}

#[cfg(unix)]
extern "C" fn after_fork_child() {
    // The prepare handler holds the lock, so the heap is consistent and ours. Memory locks are
    // not inherited: lock the child's copies again (no allocation here).
    // SAFETY: `busy` is held (by this thread, before the fork).
    let heap = unsafe { &mut *GLOBAL.heap.get() };
    for s in heap.slabs.iter_mut() {
        s.locked = os::lock(s.base, s.len);
    }
    release();
}

// ---------------------------------------------------------------------------------------------
// The buffer

/// Key material of 1 to [`SLOT_LEN`] bytes in one locked, no-dump slot (see the module docs).
/// Not `Clone`: copies of key material are made on purpose. Zeroed when dropped.
pub(crate) struct SecretBytes {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `SecretBytes` owns its slot exclusively, like a `Box<[u8]>`.
unsafe impl Send for SecretBytes {}
// SAFETY: shared access is read-only (`&[u8]`).
unsafe impl Sync for SecretBytes {}

impl SecretBytes {
    /// `len` zero bytes in a fresh slot; `len` must be 1 to [`SLOT_LEN`].
    pub(crate) fn zeroed(len: usize) -> Result<SecretBytes> {
        if len == 0 || len > SLOT_LEN {
            return Err(Error::Internal("key material does not fit a key memory slot"));
        }
        // Free slots are zero: new pages are, and freed slots are wiped before reuse.
        Ok(SecretBytes { ptr: alloc_slot()?, len })
    }

    /// A copy of `src` (1 to [`SLOT_LEN`] bytes) in a fresh slot.
    pub(crate) fn copy_from(src: &[u8]) -> Result<SecretBytes> {
        let mut s = SecretBytes::zeroed(src.len())?;
        s.copy_from_slice(src);
        Ok(s)
    }

    /// Zeroes the whole slot now (it is zeroed again when dropped).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn wipe(&mut self) {
        // SAFETY: the slot is SLOT_LEN writable bytes owned by `self`.
        zeroize::Zeroize::zeroize(unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), SLOT_LEN) });
    }

    /// Whether every byte of the slot reads as zero (volatile reads: the test hooks check a wipe
    /// with it).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn slot_reads_zero(&self) -> bool {
        // SAFETY: the slot is SLOT_LEN readable bytes owned by `self`.
        (0..SLOT_LEN).all(|i| unsafe { core::ptr::read_volatile(self.ptr.as_ptr().add(i)) } == 0)
    }

    /// Address of the material (test hooks: find its mapping in /proc/self/smaps).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

impl core::ops::Deref for SecretBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is a live slot of SLOT_LEN >= len bytes owned by `self`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl core::ops::DerefMut for SecretBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` is exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // SAFETY: the slot came from `alloc_slot` and `self` is gone after this.
        unsafe { free_slot(self.ptr) }
    }
}

// ---------------------------------------------------------------------------------------------
// The operating system

#[cfg(unix)]
mod os {
    use core::ptr;

    pub(super) fn page_size() -> usize {
        // SAFETY: no arguments.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 { p as usize } else { 4096 }
    }

    /// Maps `len` read-write bytes (a multiple of `page`) between two `PROT_NONE` guard pages;
    /// returns the first data byte.
    pub(super) fn map(len: usize, page: usize) -> Option<*mut u8> {
        let total = len.checked_add(2 * page)?;
        // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        let p = p.cast::<u8>();
        // SAFETY: both guard ranges lie inside the mapping. A failure leaves a guard readable
        // (defence in depth only), which is not worth failing a key for.
        unsafe {
            let _ = libc::mprotect(p.cast(), page, libc::PROT_NONE);
            let _ = libc::mprotect(p.add(page + len).cast(), page, libc::PROT_NONE);
            Some(p.add(page))
        }
    }

    /// `mlock`s the range; false when the system refuses (RLIMIT_MEMLOCK, EPERM, ENOMEM).
    pub(super) fn lock(p: *mut u8, len: usize) -> bool {
        // SAFETY: the range is a mapped slab.
        unsafe { libc::mlock(p.cast(), len) == 0 }
    }

    /// Excludes the range from core dumps; false when the system cannot.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn nodump(p: *mut u8, len: usize) -> bool {
        // SAFETY: the range is a mapped slab.
        unsafe { libc::madvise(p.cast(), len, libc::MADV_DONTDUMP) == 0 }
    }

    /// Excludes the range from core dumps; false when the system cannot.
    #[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
    pub(super) fn nodump(p: *mut u8, len: usize) -> bool {
        // SAFETY: the range is a mapped slab.
        unsafe { libc::madvise(p.cast(), len, libc::MADV_NOCORE) == 0 }
    }

    /// No core-dump exclusion on this system.
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "dragonfly")))]
    pub(super) fn nodump(_: *mut u8, _: usize) -> bool {
        false
    }
}

#[cfg(not(unix))]
mod os {
    pub(super) fn page_size() -> usize {
        4096
    }

    /// Plain zeroed heap pages, never freed (no locking or no-dump here).
    pub(super) fn map(len: usize, page: usize) -> Option<*mut u8> {
        let layout = std::alloc::Layout::from_size_align(len, page).ok()?;
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        (!p.is_null()).then_some(p)
    }

    pub(super) fn lock(_: *mut u8, _: usize) -> bool {
        false
    }

    pub(super) fn nodump(_: *mut u8, _: usize) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_zero_and_reused_after_wipe() {
        let mut a = SecretBytes::zeroed(64).unwrap();
        let b = SecretBytes::copy_from(&[7u8; 32]).unwrap();
        assert!(a.iter().all(|&x| x == 0));
        assert_eq!(&b[..], &[7u8; 32]);
        a.fill(0xA5);
        let pa = a.as_ptr() as usize;
        let pb = b.as_ptr() as usize;
        assert!(pa.abs_diff(pb) >= SLOT_LEN, "slots overlap");
        assert_eq!(pa % SLOT_LEN, 0);
        drop(a);
        // The freed slot is on top of the free list (unless another test thread took it): if we
        // get it back, it reads as zero.
        let c = SecretBytes::zeroed(64).unwrap();
        assert!(c.iter().all(|&x| x == 0));
        assert!(SecretBytes::zeroed(0).is_err());
        assert!(SecretBytes::zeroed(65).is_err());
        assert!(SecretBytes::copy_from(&[1u8; 65]).is_err());
    }

    #[test]
    fn many_slots_across_slabs() {
        let v: Vec<SecretBytes> = (0..2000).map(|i| SecretBytes::copy_from(&[(i % 251) as u8 + 1; 32]).unwrap()).collect();
        for (i, s) in v.iter().enumerate() {
            assert_eq!(s[0], (i % 251) as u8 + 1);
        }
        let st = status().unwrap();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert!(st.nodump);
        let _ = st.locked;
    }

    #[test]
    fn threads_allocate_and_free_concurrently() {
        let hs: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..5000u32 {
                        let s = SecretBytes::copy_from(&[(t * 50 + (i % 50) + 1) as u8; 64]).unwrap();
                        assert!(s.iter().all(|&x| x == (t * 50 + (i % 50) + 1) as u8));
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    }
}
