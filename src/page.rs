//! TDE page ciphers (SPEC 4): a storage engine encrypts each database page as it is written and
//! decrypts it as it is read. Two modes:
//!
//! * **XTS** (length-preserving, confidentiality only): AES-256-XTS (IEEE 1619, SP 800-38E) with
//!   the whole page as one data unit and the tweak `page_no (u64 LE) | file_id (u64 LE)`. It does
//!   not detect tampering, moved pages or replayed old versions of a page.
//! * **GCM** (authenticated): the last [`GCM_TRAILER_LEN`] bytes of every page hold a trailer
//!   (format, key version, epoch salt, module nonce, tag); the payload is sealed under a subkey
//!   `KDF(page key, "cellar page v2", salt | file_id LE, 32)` (SP 800-108 counter mode, trailer
//!   format 0x02), with the page number in the AAD. Pages of format 0x01 (subkey from
//!   `HKDF-SHA256(page key, salt, "cellar page v1" | file_id LE)`) are still read; they report
//!   indicator 0. Formats: `docs/FORMATS.md`.
//!
//! A [`PageCipher`] is immutable (but for its written mark, which only rises) and may be shared
//! by any number of threads. Internally it keeps a
//! small pool of per-thread *slots* (chosen by a per-thread index, each behind an uncontended
//! try-lock on its own cache line): for XTS each slot holds its own keyed `EVP_CIPHER_CTX`s
//! (setting the tweak mutates a context, so one cannot be shared), for GCM each slot holds a
//! reserved block of the current epoch's encryption budget and a few recently used subkeys. The
//! steady-state page path therefore touches no shared cache line and allocates nothing.

use crate::error::{Error, Result};
use crate::fips::{self, operation, service};
use crate::keys::{self, Key, KeyPurpose, KeyType};
use crate::sys::{GcmKey, InOut, XtsCtx, GCM_TAG_NONCE_LEN};
use core::fmt;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};
use zeroize::Zeroizing;

/// Smallest page size in bytes.
pub const MIN_PAGE_SIZE: usize = 512;
/// Largest page size in bytes.
pub const MAX_PAGE_SIZE: usize = 65536;
/// Page sizes must be a multiple of this many bytes (the AES block).
pub const PAGE_SIZE_MULTIPLE: usize = 16;
/// Bytes reserved at the end of every GCM page for the trailer.
pub const GCM_TRAILER_LEN: usize = 48;
/// Format byte of a GCM page trailer of format v1 (HKDF subkey; still read, no longer written).
pub const GCM_FORMAT_V1: u8 = 0x01;
/// Format byte of a GCM page trailer of format v2 (SP 800-108 subkey, SPEC 10): every new page.
pub const GCM_FORMAT_V2: u8 = 0x02;
/// Flag: an all-zero page (never written) decrypts to zeros instead of failing, except below
/// the cipher's written mark ([`PageCipher::set_written_mark`]).
pub const FLAG_ZERO_IS_EMPTY: u32 = 1;
/// Encryptions per GCM epoch (per salt, hence per subkey) before the cipher draws a new salt.
pub const DEFAULT_EPOCH_LIMIT: u64 = 1 << 31;
/// Most threads a batch call uses, whatever the caller asks.
pub const MAX_BATCH_THREADS: usize = 64;

const SALT_LEN: usize = 12;
const HEADER_LEN: usize = 20; // format | reserved (3) | key_version (4) | salt (12)
const PAGE_INFO: &[u8] = b"cellar page v1";
const PAGE_LABEL_V2: &[u8] = b"cellar page v2";
/// Subkeys kept by the shared decrypt cache (salts of earlier epochs and of other writers).
const SHARED_CACHE_CAP: usize = 64;
/// Subkeys each slot remembers, so repeated reads of one salt stay slot-local.
const SLOT_CACHE: usize = 4;
/// Largest block of the epoch budget a slot reserves at once.
const MAX_BUDGET_BLOCK: u64 = 1024;

/// Page cipher mode. The integer values are the C `CELLAR_PAGE_*` constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum PageMode {
    /// AES-256-XTS, length-preserving, confidentiality only. Needs an AES-256-XTS key.
    Xts = 1,
    /// AES-256-GCM with a 48-byte trailer, authenticated. Needs an AES-256 key.
    Gcm = 2,
}

impl PageMode {
    /// Parses a C `CELLAR_PAGE_*` mode integer.
    pub fn from_u32(v: u32) -> Result<Self> {
        match v {
            1 => Ok(PageMode::Xts),
            2 => Ok(PageMode::Gcm),
            _ => Err(Error::InvalidArgument("unknown page mode")),
        }
    }

    /// Bytes at the end of each page that the mode reserves: 0 for XTS, 48 for GCM.
    pub fn reserved_bytes(self) -> usize {
        match self {
            PageMode::Xts => 0,
            PageMode::Gcm => GCM_TRAILER_LEN,
        }
    }

    fn key_type(self) -> KeyType {
        match self {
            PageMode::Xts => KeyType::Aes256Xts,
            PageMode::Gcm => KeyType::Aes256,
        }
    }
}

/// Checks a page size: 512..=65536 bytes, a multiple of 16.
pub fn check_page_size(page_size: usize) -> Result<()> {
    if (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) && page_size % PAGE_SIZE_MULTIPLE == 0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument("page size must be 512 to 65536 bytes and a multiple of 16"))
    }
}

/// Reads the key version from a GCM page's trailer, without any key (to drive an online
/// re-encryption scan). The value is not authenticated until the page is decrypted.
/// A page whose trailer is not format 0x01 or 0x02 with zero reserved bytes (including a never-written
/// all-zero page) is [`Error::UnsupportedFormat`]; a bad page size is [`Error::InvalidArgument`].
pub fn page_key_version(page: &[u8]) -> Result<u32> {
    check_page_size(page.len())?;
    let t = &page[page.len() - GCM_TRAILER_LEN..];
    if !(t[0] == GCM_FORMAT_V1 || t[0] == GCM_FORMAT_V2) || t[1..4] != [0, 0, 0] {
        return Err(Error::UnsupportedFormat("not a Cellar GCM page (format byte or reserved bytes)"));
    }
    Ok(u32::from_le_bytes([t[4], t[5], t[6], t[7]]))
}

/// A failed batch call: the error and the index (from 0) of the first page that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageBatchError {
    /// Index of the failing page within the batch (0 for argument errors).
    pub index: usize,
    /// What went wrong.
    pub error: Error,
}

impl From<PageBatchError> for Error {
    fn from(e: PageBatchError) -> Error {
        e.error
    }
}

impl fmt::Display for PageBatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page {} of the batch: {}", self.index, self.error)
    }
}

impl std::error::Error for PageBatchError {}

// ---------------------------------------------------------------------------------------------
// Per-thread slots

/// A small process-wide index per thread, assigned on first use.
fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|i| {
        let v = i.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT.fetch_add(1, Ordering::Relaxed);
        i.set(v);
        v
    })
}

fn slot_count() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cpus * 2).clamp(4, 128)
    })
}

/// One slot on its own cache line(s), so two threads never share a line on the hot path.
#[repr(align(128))]
struct Padded<T>(Mutex<T>);

/// A fixed pool of slots. A thread starts at slot `thread_index % n` and takes the first slot
/// whose try-lock succeeds; while threads number at most `n` each normally finds its own slot.
struct Pool<T> {
    slots: Box<[Padded<T>]>,
}

impl<T: Default> Pool<T> {
    fn new() -> Self {
        Pool { slots: (0..slot_count()).map(|_| Padded(Mutex::new(T::default()))).collect() }
    }

    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let n = self.slots.len();
        let start = thread_index() % n;
        loop {
            for k in 0..n {
                let mut i = start + k;
                if i >= n {
                    i -= n;
                }
                let mut guard: MutexGuard<'_, T> = match self.slots[i].0.try_lock() {
                    Ok(g) => g,
                    // A slot holds no invariant that a panic could break half-way.
                    Err(TryLockError::Poisoned(p)) => p.into_inner(),
                    Err(TryLockError::WouldBlock) => continue,
                };
                return f(&mut guard);
            }
            // More threads than slots are inside this cipher at once: let one finish.
            std::thread::yield_now();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Engines

#[derive(Default)]
struct XtsSlot {
    enc: Option<XtsCtx>,
    dec: Option<XtsCtx>,
}

struct XtsEngine {
    key: Key,
    pool: Pool<XtsSlot>,
}

/// A GCM subkey, the salt it was derived from and the trailer format whose derivation made it.
struct Subkey {
    salt: [u8; SALT_LEN],
    format: u8,
    aead: GcmKey,
}

impl Subkey {
    #[inline]
    fn is(&self, salt: &[u8; SALT_LEN], format: u8) -> bool {
        self.salt == *salt && self.format == format
    }
}

struct EpochState {
    epoch: Arc<Subkey>,
    used: u64,
    /// The process (fork generation and id) this epoch was drawn in: a `fork()` child must not
    /// keep encrypting under its parent's salt (security review finding 6).
    fork_gen: u64,
    pid: u32,
}

#[derive(Default)]
struct GcmSlot {
    /// The epoch this slot encrypts under, and how many encryptions of it the slot still holds.
    epoch: Option<Arc<Subkey>>,
    budget: u64,
    /// [`crate::sys::fork_generation`] when the budget was reserved; a different value now
    /// means this is a `fork()` child holding its parent's budget, which it drops.
    fork_gen: u64,
    recent: [Option<Arc<Subkey>>; SLOT_CACHE],
    next: usize,
}

struct GcmEngine {
    key: Key,
    file_id: u64,
    epoch_limit: u64,
    block: u64,
    current: Mutex<EpochState>,
    cache: Mutex<VecDeque<Arc<Subkey>>>,
    pool: Pool<GcmSlot>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The subkey of trailer `format`, scheduled for AES-256-GCM; the derived bytes are wiped as
/// soon as the module holds them.
/// * 0x02: `subkey = KDF(page key, "cellar page v2", salt (12) | file_id (u64 LE), 32)`, the
///   SP 800-108 counter-mode KDF of SPEC 10 (`crate::kdf`);
/// * 0x01: `subkey = HKDF-SHA256(ikm = page key, salt = salt, info = "cellar page v1" | file_id
///   LE, 32)`, only to read pages written before format v2.
fn derive_subkey(key: &Key, file_id: u64, salt: [u8; SALT_LEN], format: u8) -> Result<Arc<Subkey>> {
    let mut k = Zeroizing::new([0u8; 32]);
    if format == GCM_FORMAT_V2 {
        let mut context = [0u8; SALT_LEN + 8];
        context[..SALT_LEN].copy_from_slice(&salt);
        context[SALT_LEN..].copy_from_slice(&file_id.to_le_bytes());
        crate::kdf::kdf(key.material(), PAGE_LABEL_V2, &context, &mut k[..])?;
    } else {
        keys::hkdf_sha256(key.material(), &salt, &[PAGE_INFO, &file_id.to_le_bytes()], &mut k[..])?;
    }
    let aead = GcmKey::new(&k).ok_or(Error::Internal("AES-GCM key setup failed"))?;
    Ok(Arc::new(Subkey { salt, format, aead }))
}

/// A fresh epoch: a random 12-byte salt from the module's DRBG and its subkey.
fn fresh_epoch(key: &Key, file_id: u64) -> Result<Arc<Subkey>> {
    let mut salt = [0u8; SALT_LEN];
    fips::random(&mut salt)?;
    derive_subkey(key, file_id, salt, GCM_FORMAT_V2)
}

impl GcmEngine {
    fn derive(&self, salt: [u8; SALT_LEN], format: u8) -> Result<Arc<Subkey>> {
        derive_subkey(&self.key, self.file_id, salt, format)
    }

    fn new_epoch(&self) -> Result<Arc<Subkey>> {
        let sk = fresh_epoch(&self.key, self.file_id)?;
        self.remember(&sk);
        Ok(sk)
    }

    fn remember(&self, sk: &Arc<Subkey>) {
        let evicted = {
            let mut c = lock(&self.cache);
            if c.iter().any(|e| e.is(&sk.salt, sk.format)) {
                return;
            }
            c.push_front(sk.clone());
            if c.len() > SHARED_CACHE_CAP {
                c.pop_back()
            } else {
                None
            }
        };
        drop(evicted); // outside the lock
    }

    /// Gives `slot` a fresh block of the current epoch's budget, rotating the epoch (new random
    /// salt, new subkey) when the block would pass the epoch limit, or when the epoch was drawn
    /// in another process (this is a `fork()` child: `fork_gen` moved, or, should the atfork
    /// handler be missing, the process id differs).
    fn refill(&self, slot: &mut GcmSlot, fork_gen: u64) -> Result<()> {
        let mut cur = lock(&self.current);
        let pid = std::process::id();
        if cur.fork_gen != fork_gen || cur.pid != pid || cur.used + self.block > self.epoch_limit {
            cur.epoch = self.new_epoch()?;
            cur.used = 0;
            cur.fork_gen = fork_gen;
            cur.pid = pid;
        }
        cur.used += self.block;
        slot.epoch = Some(cur.epoch.clone());
        slot.budget = self.block;
        slot.fork_gen = fork_gen;
        Ok(())
    }

    /// The subkey for `salt` and trailer `format`, from the slot, else the shared cache, else
    /// derived (then cached).
    fn subkey<'s>(&self, slot: &'s mut GcmSlot, salt: &[u8; SALT_LEN], format: u8) -> Result<&'s Subkey> {
        enum Loc {
            Epoch,
            Recent(usize),
        }
        let loc = if slot.epoch.as_ref().is_some_and(|e| e.is(salt, format)) {
            Loc::Epoch
        } else if let Some(i) = slot.recent.iter().position(|r| r.as_ref().is_some_and(|r| r.is(salt, format))) {
            Loc::Recent(i)
        } else {
            let found = lock(&self.cache).iter().find(|e| e.is(salt, format)).cloned();
            let sk = match found {
                Some(sk) => sk,
                None => {
                    let sk = self.derive(*salt, format)?;
                    self.remember(&sk);
                    sk
                }
            };
            let i = slot.next;
            slot.next = (i + 1) % SLOT_CACHE;
            slot.recent[i] = Some(sk);
            Loc::Recent(i)
        };
        let sk = match loc {
            Loc::Epoch => slot.epoch.as_deref(),
            Loc::Recent(i) => slot.recent[i].as_deref(),
        };
        sk.ok_or(Error::Internal("page subkey cache"))
    }
}

enum Engine {
    Xts(XtsEngine),
    Gcm(GcmEngine),
}

struct Inner {
    mode: PageMode,
    file_id: u64,
    key_version: u32,
    zero_is_empty: bool,
    /// Pages numbered below this were written: an all-zero one is an error, not an empty page.
    /// Only rises ([`PageCipher::set_written_mark`]); read only on the all-zero path.
    written_mark: AtomicU64,
    key_id: keys::KeyId,
    engine: Engine,
}

/// A page cipher: page key + mode + file id + key version + flags (+ the written mark, which
/// only rises). Otherwise immutable; cloning shares it
/// (an `Arc`); safe to use from any number of threads at once. `Debug` prints the mode, file
/// id, key version and key id only.
#[derive(Clone)]
pub struct PageCipher {
    inner: Arc<Inner>,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PageCipher>();
};

impl fmt::Debug for PageCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id: String = self.inner.key_id.iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("PageCipher")
            .field("mode", &self.inner.mode)
            .field("file_id", &self.inner.file_id)
            .field("key_version", &self.inner.key_version)
            .field("key_id", &id)
            .finish_non_exhaustive()
    }
}

#[inline]
fn tweak(page_no: u64, file_id: u64) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&page_no.to_le_bytes());
    t[8..].copy_from_slice(&file_id.to_le_bytes());
    t
}

#[inline]
fn is_all_zero(b: &[u8]) -> bool {
    // Word-wise OR; the compiler vectorises it.
    b.chunks(64).all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0)
}

impl PageCipher {
    /// Makes a page cipher. `key` must be an AES-256-XTS key for [`PageMode::Xts`] and an
    /// AES-256 key for [`PageMode::Gcm`] (else [`Error::InvalidKey`]). `flags` is 0 or
    /// [`FLAG_ZERO_IS_EMPTY`]. A GCM cipher draws its first random salt here.
    pub fn new(key: &Key, mode: PageMode, file_id: u64, key_version: u32, flags: u32) -> Result<Self> {
        Self::with_epoch_limit(key, mode, file_id, key_version, flags, DEFAULT_EPOCH_LIMIT)
    }

    /// Like [`PageCipher::new`] with a chosen GCM epoch length (encryptions per salt), for tests
    /// of the rotation. `epoch_limit` must be between 1 and 2^31.
    #[doc(hidden)]
    pub fn with_epoch_limit(
        key: &Key,
        mode: PageMode,
        file_id: u64,
        key_version: u32,
        flags: u32,
        epoch_limit: u64,
    ) -> Result<Self> {
        operation(|| {
            if flags & !FLAG_ZERO_IS_EMPTY != 0 {
                return Err(Error::InvalidArgument("unknown page cipher flag"));
            }
            if epoch_limit == 0 || epoch_limit > DEFAULT_EPOCH_LIMIT {
                return Err(Error::InvalidArgument("epoch limit must be between 1 and 2^31"));
            }
            key.check_unlocked()?;
            key.expect_type(
                mode.key_type(),
                match mode {
                    PageMode::Xts => "XTS pages need an AES-256-XTS key",
                    PageMode::Gcm => "GCM pages need an AES-256 key",
                },
            )?;
            key.require_purpose(KeyPurpose::DataEncryption)?;
            let engine = match mode {
                PageMode::Xts => Engine::Xts(XtsEngine { key: key.clone(), pool: Pool::new() }),
                PageMode::Gcm => {
                    // Registers the fork handler (once per process) before the first page.
                    let fork_gen = crate::sys::fork_generation();
                    let first = fresh_epoch(key, file_id)?;
                    let g = GcmEngine {
                        key: key.clone(),
                        file_id,
                        epoch_limit,
                        block: (epoch_limit / 1024).clamp(1, MAX_BUDGET_BLOCK),
                        current: Mutex::new(EpochState {
                            epoch: first.clone(),
                            used: 0,
                            fork_gen,
                            pid: std::process::id(),
                        }),
                        cache: Mutex::new(VecDeque::with_capacity(SHARED_CACHE_CAP + 1)),
                        pool: Pool::new(),
                    };
                    g.remember(&first);
                    Engine::Gcm(g)
                }
            };
            Ok(PageCipher {
                inner: Arc::new(Inner {
                    mode,
                    file_id,
                    key_version,
                    zero_is_empty: flags & FLAG_ZERO_IS_EMPTY != 0,
                    written_mark: AtomicU64::new(0),
                    key_id: key.id(),
                    engine,
                }),
            })
        })
    }

    /// The cipher's mode.
    pub fn mode(&self) -> PageMode {
        self.inner.mode
    }

    /// The file id bound into every page.
    pub fn file_id(&self) -> u64 {
        self.inner.file_id
    }

    /// The key version written into (GCM) and required of (GCM decrypt) every page.
    pub fn key_version(&self) -> u32 {
        self.inner.key_version
    }

    /// Raises the cipher's *written mark* to `mark` (it never goes down; a lower value leaves
    /// it) and returns the mark now in force. Pages numbered below the mark are pages the engine
    /// knows were written: with [`FLAG_ZERO_IS_EMPTY`], an all-zero page there is
    /// [`Error::AuthenticationFailed`] (a written page was zeroed on disk, or the file was cut
    /// and re-extended), while an all-zero page at or above the mark still reads as empty. The
    /// mark is shared by every clone of the cipher and may be raised from any thread while
    /// others decrypt. A cipher made without the flag refuses it ([`Error::InvalidArgument`]):
    /// there every all-zero GCM page already fails, and XTS cannot tell. Does no cryptography.
    pub fn set_written_mark(&self, mark: u64) -> Result<u64> {
        if !self.inner.zero_is_empty {
            return Err(Error::InvalidArgument(
                "the written mark needs a cipher made with the zero-is-empty flag (without it an all-zero GCM page always fails)",
            ));
        }
        let old = self.inner.written_mark.fetch_max(mark, Ordering::AcqRel);
        Ok(old.max(mark))
    }

    /// The written mark (0 until [`PageCipher::set_written_mark`] raises it).
    pub fn written_mark(&self) -> u64 {
        self.inner.written_mark.load(Ordering::Acquire)
    }

    /// The all-zero page `page_no` of a zero-is-empty cipher: empty at or above the mark,
    /// an error below it.
    #[cold]
    fn zero_page(&self, page_no: u64, mut io: InOut<'_>) -> Result<()> {
        if page_no < self.inner.written_mark.load(Ordering::Acquire) {
            return Err(Error::AuthenticationFailed(
                "an all-zero page below the written mark (a written page was zeroed or cut off)",
            ));
        }
        io.output().fill(0);
        Ok(())
    }

    /// Bytes reserved at the end of each page by this cipher's mode (0 or 48).
    pub fn reserved_bytes(&self) -> usize {
        self.inner.mode.reserved_bytes()
    }

    /// Encrypts one page (`input.len() == out.len()` = the page size). For GCM the last 48
    /// bytes of `input` are ignored (overwritten by the trailer in `out`).
    pub fn encrypt(&self, page_no: u64, input: &[u8], out: &mut [u8]) -> Result<()> {
        operation(|| self.single(page_no, InOut::Separate(input, out), true))
    }

    /// Encrypts one page in place.
    pub fn encrypt_in_place(&self, page_no: u64, page: &mut [u8]) -> Result<()> {
        operation(|| self.single(page_no, InOut::InPlace(page), true))
    }

    /// Decrypts one page. On any failure `out` is all zeros. A GCM page that was moved, changed
    /// in any byte, or written under another key version is [`Error::AuthenticationFailed`]; a
    /// decrypted GCM page has zeros in its last 48 bytes.
    pub fn decrypt(&self, page_no: u64, input: &[u8], out: &mut [u8]) -> Result<()> {
        operation(|| self.single(page_no, InOut::Separate(input, out), false))
    }

    /// Decrypts one page in place (all zeros on failure).
    pub fn decrypt_in_place(&self, page_no: u64, page: &mut [u8]) -> Result<()> {
        operation(|| self.single(page_no, InOut::InPlace(page), false))
    }

    /// Encrypts a contiguous run of pages of `page_size` bytes (`input.len()` a multiple of
    /// it); page `i` has page number `first_page_no + i`. `threads` is a maximum: 0 or 1 runs
    /// on the calling thread; more lets the run be shared with up to `threads - 1` of the
    /// process-wide workers (one per CPU beyond the first, at most [`MAX_BATCH_THREADS`] in
    /// all), but only when that pays: runs under [`SPLIT_MIN_BYTES`], and runs whose measured
    /// cost is under twice the measured hand-off latency (30-50 us to wake a parked worker on
    /// the build machines), stay on the calling thread. A shared run is cut into pieces that
    /// the caller and the workers take in order until none is left, so a worker that wakes late
    /// takes less. The output is the same whatever `threads` is. On failure every page of `out`
    /// is zeroed.
    pub fn encrypt_pages(
        &self,
        first_page_no: u64,
        input: &[u8],
        out: &mut [u8],
        page_size: usize,
        threads: usize,
    ) -> core::result::Result<(), PageBatchError> {
        self.batch(first_page_no, InOut::Separate(input, out), page_size, threads, true)
    }

    /// [`PageCipher::encrypt_pages`] in place.
    pub fn encrypt_pages_in_place(
        &self,
        first_page_no: u64,
        pages: &mut [u8],
        page_size: usize,
        threads: usize,
    ) -> core::result::Result<(), PageBatchError> {
        self.batch(first_page_no, InOut::InPlace(pages), page_size, threads, true)
    }

    /// Decrypts a contiguous run of pages (see [`PageCipher::encrypt_pages`]). If any page
    /// fails, every page of `out` is zeroed and the error carries the first failing index.
    pub fn decrypt_pages(
        &self,
        first_page_no: u64,
        input: &[u8],
        out: &mut [u8],
        page_size: usize,
        threads: usize,
    ) -> core::result::Result<(), PageBatchError> {
        self.batch(first_page_no, InOut::Separate(input, out), page_size, threads, false)
    }

    /// [`PageCipher::decrypt_pages`] in place.
    pub fn decrypt_pages_in_place(
        &self,
        first_page_no: u64,
        pages: &mut [u8],
        page_size: usize,
        threads: usize,
    ) -> core::result::Result<(), PageBatchError> {
        self.batch(first_page_no, InOut::InPlace(pages), page_size, threads, false)
    }

    fn single(&self, page_no: u64, mut io: InOut<'_>, encrypt: bool) -> Result<()> {
        if let InOut::Separate(i, o) = &io {
            if i.len() != o.len() {
                return Err(Error::InvalidArgument("input and output pages differ in length"));
            }
        }
        if let Err(e) = check_page_size(io.len()) {
            if !encrypt {
                io.output().fill(0);
            }
            return Err(e);
        }
        self.page(page_no, io, encrypt)
    }

    /// One page of a validated size; zeroes the output on any failure.
    #[inline]
    fn page(&self, page_no: u64, mut io: InOut<'_>, encrypt: bool) -> Result<()> {
        let key = match &self.inner.engine {
            Engine::Xts(x) => &x.key,
            Engine::Gcm(g) => &g.key,
        };
        // The tenant lock (one atomic load; see `Key::check_unlocked`); on failure the
        // output is zeroed below like any other.
        let r = key.check_unlocked().and_then(|()| match &self.inner.engine {
            Engine::Xts(x) => self.xts(x, page_no, io.reborrow(), encrypt),
            Engine::Gcm(g) if encrypt => self.gcm_seal(g, page_no, io.reborrow()),
            Engine::Gcm(g) => self.gcm_open(g, page_no, io.reborrow()),
        });
        if r.is_err() {
            io.output().fill(0);
        }
        r
    }

    fn xts(&self, x: &XtsEngine, page_no: u64, io: InOut<'_>, encrypt: bool) -> Result<()> {
        if !encrypt && self.inner.zero_is_empty {
            let inp = io.input();
            // Ciphertext practically never starts with 16 zero bytes: the full scan is rare.
            if is_all_zero(&inp[..16]) && is_all_zero(inp) {
                return self.zero_page(page_no, io);
            }
        }
        let t = tweak(page_no, self.inner.file_id);
        x.pool.with(|slot| {
            let ctx = if encrypt { &mut slot.enc } else { &mut slot.dec };
            let ctx = match ctx {
                Some(c) => c,
                None => ctx.insert(
                    XtsCtx::new(x.key.material(), encrypt).ok_or(Error::Internal("AES-XTS key setup failed"))?,
                ),
            };
            service(|| if ctx.cipher(&t, io) { Ok(()) } else { Err(Error::Internal("AES-XTS failed")) })
        })
    }

    fn header(&self, salt: &[u8; SALT_LEN]) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = GCM_FORMAT_V2;
        h[4..8].copy_from_slice(&self.inner.key_version.to_le_bytes());
        h[8..].copy_from_slice(salt);
        h
    }

    fn gcm_seal(&self, g: &GcmEngine, page_no: u64, mut io: InOut<'_>) -> Result<()> {
        let payload = io.len() - GCM_TRAILER_LEN;
        let mut aad = [0u8; HEADER_LEN + 8];
        let mut tn = [0u8; GCM_TAG_NONCE_LEN];
        // One relaxed load: after a fork() the child drops the budget it inherited and draws a
        // new epoch before its first page.
        let fork_gen = crate::sys::fork_generation();
        g.pool.with(|slot| -> Result<()> {
            if slot.budget == 0 || slot.epoch.is_none() || slot.fork_gen != fork_gen {
                g.refill(slot, fork_gen)?;
            }
            let sk = slot.epoch.as_deref().ok_or(Error::Internal("page epoch missing"))?;
            slot.budget -= 1;
            aad[..HEADER_LEN].copy_from_slice(&self.header(&sk.salt));
            aad[HEADER_LEN..].copy_from_slice(&page_no.to_le_bytes());
            let (body, _) = io.reborrow().split_at(payload);
            service(|| if sk.aead.seal(body, &aad, &mut tn) { Ok(()) } else { Err(Error::Internal("AES-GCM seal failed")) })
        })?;
        let t = &mut io.output()[payload..];
        t[..HEADER_LEN].copy_from_slice(&aad[..HEADER_LEN]);
        t[HEADER_LEN..HEADER_LEN + 12].copy_from_slice(&tn[16..]);
        t[HEADER_LEN + 12..].copy_from_slice(&tn[..16]);
        Ok(())
    }

    fn gcm_open(&self, g: &GcmEngine, page_no: u64, mut io: InOut<'_>) -> Result<()> {
        const BAD: Error = Error::AuthenticationFailed("the page does not authenticate (changed, moved, or another key)");
        let payload = io.len() - GCM_TRAILER_LEN;
        let mut tr = [0u8; GCM_TRAILER_LEN];
        tr.copy_from_slice(&io.input()[payload..]);
        let format = tr[0];
        if !(format == GCM_FORMAT_V2 || format == GCM_FORMAT_V1) || tr[1..4] != [0, 0, 0] {
            if self.inner.zero_is_empty && tr == [0u8; GCM_TRAILER_LEN] && is_all_zero(io.input()) {
                return self.zero_page(page_no, io);
            }
            return Err(Error::AuthenticationFailed("not a Cellar GCM page (format byte or reserved bytes)"));
        }
        if u32::from_le_bytes([tr[4], tr[5], tr[6], tr[7]]) != self.inner.key_version {
            return Err(Error::AuthenticationFailed(
                "the page was written under another key version (read it with the key-version call)",
            ));
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&tr[8..HEADER_LEN]);
        let mut aad = [0u8; HEADER_LEN + 8];
        aad[..HEADER_LEN].copy_from_slice(&tr[..HEADER_LEN]);
        aad[HEADER_LEN..].copy_from_slice(&page_no.to_le_bytes());
        let mut tn = [0u8; GCM_TAG_NONCE_LEN];
        tn[..16].copy_from_slice(&tr[HEADER_LEN + 12..]);
        tn[16..].copy_from_slice(&tr[HEADER_LEN..HEADER_LEN + 12]);
        if format == GCM_FORMAT_V1 {
            // A v1 page's subkey came from HKDF, which SP 800-56C meant for shared secrets: the
            // page reads, but the scheme is not an approved one (SPEC 10).
            fips::not_approved();
        }
        g.pool.with(|slot| -> Result<()> {
            let sk = g.subkey(slot, &salt, format)?;
            let (body, _) = io.reborrow().split_at(payload);
            service(|| if sk.aead.open(body, &aad, &tn) { Ok(()) } else { Err(BAD) })
        })?;
        io.output()[payload..].fill(0);
        Ok(())
    }

    fn run(&self, first_page_no: u64, io: InOut<'_>, page_size: usize, encrypt: bool) -> core::result::Result<(), (usize, Error)> {
        let mut rest = io;
        let mut i = 0usize;
        while rest.len() >= page_size {
            let (page, r) = rest.split_at(page_size);
            rest = r;
            // Page numbers were checked not to overflow before the run.
            self.page(first_page_no.wrapping_add(i as u64), page, encrypt).map_err(|e| (i, e))?;
            i += 1;
        }
        Ok(())
    }

    fn batch(
        &self,
        first_page_no: u64,
        mut io: InOut<'_>,
        page_size: usize,
        threads: usize,
        encrypt: bool,
    ) -> core::result::Result<(), PageBatchError> {
        let mut failed = 0usize;
        let r = operation(|| {
            if let InOut::Separate(i, o) = &io {
                if i.len() != o.len() {
                    return Err(Error::InvalidArgument("input and output runs differ in length"));
                }
            }
            check_page_size(page_size)?;
            if io.len() % page_size != 0 {
                return Err(Error::InvalidArgument("the run is not a whole number of pages"));
            }
            let count = io.len() / page_size;
            if count == 0 {
                return Ok(());
            }
            if first_page_no.checked_add(count as u64 - 1).is_none() {
                return Err(Error::InvalidArgument("page numbers of the run overflow 2^64"));
            }
            let threads = threads.clamp(1, MAX_BATCH_THREADS).min(count);
            let res = if threads == 1 {
                self.run(first_page_no, io.reborrow(), page_size, encrypt)
            } else {
                self.run_threads(first_page_no, io.reborrow(), page_size, count, threads, encrypt)
            };
            res.map_err(|(i, e)| {
                failed = i;
                io.output().fill(0);
                e
            })
        });
        r.map_err(|error| PageBatchError { index: failed, error })
    }

    /// A run of `count` pages with `threads` > 1 allowed: shared with the process-wide workers
    /// (`par`) only when it pays, else run here. See [`SPLIT_MIN_BYTES`] and `par::worth_splitting`.
    fn run_threads(
        &self,
        first_page_no: u64,
        io: InOut<'_>,
        page_size: usize,
        count: usize,
        threads: usize,
        encrypt: bool,
    ) -> core::result::Result<(), (usize, Error)> {
        let bytes = count * page_size;
        let cost = &PAGE_COST_PS[cost_index(self.inner.mode, encrypt)];
        let estimate_ns = (bytes as u64).saturating_mul(cost.load(Ordering::Relaxed)) / 1000;
        if !crate::par::forced() && (bytes < SPLIT_MIN_BYTES || !crate::par::worth_splitting(estimate_ns)) {
            return self.timed_run(first_page_no, 0, io, page_size, encrypt, cost);
        }
        let per = crate::par::piece_len(count, threads, PIECE_MIN_BYTES.div_ceil(page_size));
        let mut pieces = Vec::with_capacity(count.div_ceil(per));
        let mut rest = io;
        let mut start = 0usize;
        while start < count {
            let n = per.min(count - start);
            let (c, r) = rest.split_at(n * page_size);
            pieces.push((start, c));
            rest = r;
            start += n;
        }
        crate::par::run_pieces(pieces, threads, |start, c| {
            self.timed_run(first_page_no, start, c, page_size, encrypt, cost)
        })
    }

    /// [`Self::run`] of the pages `start..` of a run, timed into the per-byte cost estimate;
    /// failure indices are of the whole run.
    fn timed_run(
        &self,
        first_page_no: u64,
        start: usize,
        io: InOut<'_>,
        page_size: usize,
        encrypt: bool,
        cost: &AtomicU64,
    ) -> core::result::Result<(), (usize, Error)> {
        let bytes = io.len() as u64;
        let t = std::time::Instant::now();
        self.run(first_page_no.wrapping_add(start as u64), io, page_size, encrypt).map_err(|(i, e)| (start + i, e))?;
        if bytes > 0 {
            let ps = (t.elapsed().as_nanos().min(u64::MAX as u128 / 1000) as u64 * 1000 / bytes).clamp(10, 100_000);
            let old = cost.load(Ordering::Relaxed);
            cost.store(old - old / 8 + ps / 8, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Runs of fewer bytes than this stay on the calling thread whatever `threads` says: waking a
/// worker costs 10-50 us on the build machines (see `par`), and 16-page (128 KiB) runs measured
/// 0.87-0.90x with two threads when this was 128 KiB (docs/PERFORMANCE.md).
/// Above it, a run is shared only when its estimated time (bytes x the measured cost per byte
/// of this mode and direction) is at least twice the measured hand-off latency.
pub const SPLIT_MIN_BYTES: usize = 256 * 1024;
/// Smallest piece of a shared run handed out at once (a piece costs one atomic increment and an
/// uncontended lock).
const PIECE_MIN_BYTES: usize = 64 * 1024;

/// Measured cost per byte in picoseconds of XTS encrypt, XTS decrypt, GCM encrypt, GCM decrypt
/// (exponentially weighted over recent runs of 256 KiB or more), starting from the build
/// machines' figures (about 2.7 us per 8 KiB page for XTS, 4.5 us for GCM).
static PAGE_COST_PS: [AtomicU64; 4] = [AtomicU64::new(330), AtomicU64::new(330), AtomicU64::new(550), AtomicU64::new(550)];

fn cost_index(mode: PageMode, encrypt: bool) -> usize {
    match mode {
        PageMode::Xts => usize::from(!encrypt),
        PageMode::Gcm => 2 + usize::from(!encrypt),
    }
}

// ---------------------------------------------------------------------------------------------
// Page runs with a status per page

impl PageCipher {
    /// Decrypts a run of pages like [`PageCipher::decrypt_pages`], but page by page: a page that
    /// fails does not fail the others. `status` (one entry per page) receives 0 for a page that
    /// decrypted and its error's C status code (`CELLAR_ERR_*`) for one that did not; a failed
    /// page's output holds zeros, every good page its plaintext. Returns `Ok` when every page
    /// decrypted, else the first failing page's index and error (the run as a whole failed, so
    /// the indicator reports it as failed). Invalid arguments (sizes, a short `status`) fail
    /// before any page is touched, leaving `status` untouched.
    pub fn decrypt_pages_each(
        &self,
        first_page_no: u64,
        input: &[u8],
        out: &mut [u8],
        page_size: usize,
        threads: usize,
        status: &mut [i32],
    ) -> core::result::Result<(), PageBatchError> {
        self.batch_each(first_page_no, InOut::Separate(input, out), page_size, threads, status)
    }

    /// [`PageCipher::decrypt_pages_each`] in place.
    pub fn decrypt_pages_each_in_place(
        &self,
        first_page_no: u64,
        pages: &mut [u8],
        page_size: usize,
        threads: usize,
        status: &mut [i32],
    ) -> core::result::Result<(), PageBatchError> {
        self.batch_each(first_page_no, InOut::InPlace(pages), page_size, threads, status)
    }

    /// Decrypts every page of `io`, recording each page's status; returns the first failure.
    fn run_each(&self, first_page_no: u64, io: InOut<'_>, page_size: usize, status: &mut [i32]) -> Option<(usize, Error)> {
        let mut first_err = None;
        let mut rest = io;
        let mut i = 0usize;
        while rest.len() >= page_size {
            let (page, r) = rest.split_at(page_size);
            rest = r;
            match self.page(first_page_no.wrapping_add(i as u64), page, false) {
                Ok(()) => status[i] = 0,
                Err(e) => {
                    status[i] = e.code();
                    if first_err.is_none() {
                        first_err = Some((i, e));
                    }
                }
            }
            i += 1;
        }
        first_err
    }

    fn batch_each(
        &self,
        first_page_no: u64,
        io: InOut<'_>,
        page_size: usize,
        threads: usize,
        status: &mut [i32],
    ) -> core::result::Result<(), PageBatchError> {
        let mut failed = 0usize;
        let r = operation(|| {
            if let InOut::Separate(i, o) = &io {
                if i.len() != o.len() {
                    return Err(Error::InvalidArgument("input and output runs differ in length"));
                }
            }
            check_page_size(page_size)?;
            if io.len() % page_size != 0 {
                return Err(Error::InvalidArgument("the run is not a whole number of pages"));
            }
            let count = io.len() / page_size;
            if status.len() < count {
                return Err(Error::InvalidArgument("the status array has fewer entries than the run has pages"));
            }
            if count == 0 {
                return Ok(());
            }
            if first_page_no.checked_add(count as u64 - 1).is_none() {
                return Err(Error::InvalidArgument("page numbers of the run overflow 2^64"));
            }
            // Overwritten page by page; what a panicking worker leaves unreached reads as failed.
            status[..count].fill(Error::Internal("").code());
            let threads = threads.clamp(1, MAX_BATCH_THREADS).min(count);
            let first = if threads == 1 {
                self.run_each(first_page_no, io, page_size, &mut status[..count])
            } else {
                self.run_each_threads(first_page_no, io, page_size, count, threads, &mut status[..count])
            };
            match first {
                None => Ok(()),
                Some((i, e)) => {
                    failed = i;
                    Err(e)
                }
            }
        });
        r.map_err(|error| PageBatchError { index: failed, error })
    }

    /// [`Self::run_each`] with `threads` > 1 allowed: shared with the process-wide workers only
    /// when it pays, as in [`Self::run_threads`].
    fn run_each_threads(
        &self,
        first_page_no: u64,
        io: InOut<'_>,
        page_size: usize,
        count: usize,
        threads: usize,
        status: &mut [i32],
    ) -> Option<(usize, Error)> {
        let bytes = count * page_size;
        let cost = &PAGE_COST_PS[cost_index(self.inner.mode, false)];
        let estimate_ns = (bytes as u64).saturating_mul(cost.load(Ordering::Relaxed)) / 1000;
        if !crate::par::forced() && (bytes < SPLIT_MIN_BYTES || !crate::par::worth_splitting(estimate_ns)) {
            return self.run_each(first_page_no, io, page_size, status);
        }
        let per = crate::par::piece_len(count, threads, PIECE_MIN_BYTES.div_ceil(page_size));
        let mut pieces = Vec::with_capacity(count.div_ceil(per));
        let (mut rest, mut st) = (io, status);
        let mut start = 0usize;
        while start < count {
            let n = per.min(count - start);
            let (c, r) = rest.split_at(n * page_size);
            let (sc, sr) = core::mem::take(&mut st).split_at_mut(n);
            pieces.push((start, (c, sc)));
            rest = r;
            st = sr;
            start += n;
        }
        crate::par::run_pieces(pieces, threads, |start, (c, sc)| {
            match self.run_each(first_page_no.wrapping_add(start as u64), c, page_size, sc) {
                None => Ok(()),
                Some((i, e)) => Err((start + i, e)),
            }
        })
        .err()
    }
}

#[cfg(test)]
mod tests {
    //! Known answers through the crate-private XTS context: the NIST CAVP XTSGenAES256 vectors
    //! (tweak given as a 128-bit hex string) whose data units are whole 16-byte multiples (256
    //! and 384 bits), from the PyPI package `cryptography-vectors`, converted to
    //! `tests/data/xts_aes256_kat.txt` (`direction key i pt ct` per line). Page sizes start at
    //! 512 bytes, so these short units are checked below the page API, on the same context and
    //! the same `EVP_Cipher` call the pages use.
    use super::*;

    #[test]
    fn nist_xts_aes256_known_answers() {
        let data = include_str!("../tests/data/xts_aes256_kat.txt");
        let mut n = 0;
        for line in data.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 5, "bad line {line}");
            let key = hex::decode(f[1]).unwrap();
            let tw: [u8; 16] = hex::decode(f[2]).unwrap().try_into().unwrap();
            let pt = hex::decode(f[3]).unwrap();
            let ct = hex::decode(f[4]).unwrap();
            let encrypt = f[0] == "ENCRYPT";
            let (src, want) = if encrypt { (&pt, &ct) } else { (&ct, &pt) };
            let mut ctx = XtsCtx::new(&key, encrypt).unwrap();
            let mut out = vec![0u8; src.len()];
            assert!(ctx.cipher(&tw, InOut::Separate(src, &mut out)));
            assert_eq!(&out, want, "vector {line}");
            // In place gives the same.
            let mut buf = src.clone();
            assert!(ctx.cipher(&tw, InOut::InPlace(&mut buf)));
            assert_eq!(&buf, want);
            n += 1;
        }
        assert!(n >= 100, "only {n} vectors");
    }

    #[test]
    fn xts_refuses_equal_halves_in_module() {
        assert!(XtsCtx::new(&[7u8; 64], true).is_none());
    }
}
