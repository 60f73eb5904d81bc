//! The one module that calls `aws-lc-fips-sys` directly (STYLE.md: no `unsafe` elsewhere outside
//! `src/ffi`). It holds what `aws-lc-rs` does not expose: the module's per-thread service
//! indicator, its version string, FIPS mode and self-test status, and (for pages) the AES-XTS
//! cipher, which `aws-lc-rs` has no API for, and AES-KWP with a key schedule it cleanses.
//! Its submodule `mem` makes the operating-system calls behind locked, no-dump key memory.

use aws_lc_fips_sys as ffi;
use core::ffi::CStr;

pub(crate) mod mem;

/// The module's per-thread service indicator counter, read before a service call.
#[inline]
pub(crate) fn indicator_before() -> u64 {
    // SAFETY: no arguments; reads the calling thread's indicator state.
    unsafe { ffi::FIPS_service_indicator_before_call() }
}

/// The module's per-thread service indicator counter, read after a service call. It differs
/// from the value read before exactly when an approved service completed in between.
#[inline]
pub(crate) fn indicator_after() -> u64 {
    // SAFETY: no arguments; reads the calling thread's indicator state.
    unsafe { ffi::FIPS_service_indicator_after_call() }
}

/// The module's own version string, for example "AWS-LC FIPS 4.2.0".
pub(crate) fn module_version() -> &'static str {
    // SAFETY: awslc_version_string returns a pointer to a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(ffi::awslc_version_string()) };
    s.to_str().unwrap_or("AWS-LC (unprintable version)")
}

/// Whether the module runs in FIPS mode (a FIPS build of AWS-LC always does).
pub(crate) fn fips_mode() -> bool {
    // SAFETY: no arguments.
    unsafe { ffi::FIPS_mode() == 1 }
}

/// Runs the module's full set of known-answer self tests again; true when all pass.
/// (The power-on self tests ran when the module was loaded: a failure there aborts the process.)
pub(crate) fn run_self_tests() -> bool {
    // SAFETY: no arguments.
    unsafe { ffi::BORINGSSL_self_test() == 1 }
}

// ---------------------------------------------------------------------------------------------
// Pages: AES-256-XTS contexts and raw AES-256-GCM (module nonce) gather/scatter, owned by page.rs.

/// Input and output of one in-place or out-of-place cipher call. The two slices of `Separate`
/// never alias (Rust guarantees it), so the only aliasing the module ever sees is `in == out`,
/// which both XTS and GCM allow.
pub(crate) enum InOut<'a> {
    /// Transform the buffer in place.
    InPlace(&'a mut [u8]),
    /// Read `.0`, write `.1` (same length).
    Separate(&'a [u8], &'a mut [u8]),
}

impl<'a> InOut<'a> {
    /// Length of the data (both sides have it).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            InOut::InPlace(b) => b.len(),
            InOut::Separate(i, _) => i.len(),
        }
    }

    /// The input bytes (for in place, the buffer as it is now).
    #[inline]
    pub(crate) fn input(&self) -> &[u8] {
        match self {
            InOut::InPlace(b) => b,
            InOut::Separate(i, _) => i,
        }
    }

    /// The output buffer.
    #[inline]
    pub(crate) fn output(&mut self) -> &mut [u8] {
        match self {
            InOut::InPlace(b) => b,
            InOut::Separate(_, o) => o,
        }
    }

    /// Reborrows for a shorter lifetime.
    #[inline]
    pub(crate) fn reborrow(&mut self) -> InOut<'_> {
        match self {
            InOut::InPlace(b) => InOut::InPlace(b),
            InOut::Separate(i, o) => InOut::Separate(i, o),
        }
    }

    /// Splits into `[0, mid)` and `[mid, len)`.
    pub(crate) fn split_at(self, mid: usize) -> (InOut<'a>, InOut<'a>) {
        match self {
            InOut::InPlace(b) => {
                let (x, y) = b.split_at_mut(mid);
                (InOut::InPlace(x), InOut::InPlace(y))
            }
            InOut::Separate(i, o) => {
                let (ix, iy) = i.split_at(mid);
                let (ox, oy) = o.split_at_mut(mid);
                (InOut::Separate(ix, ox), InOut::Separate(iy, oy))
            }
        }
    }

    /// Raw pointers for the module: `(in, out, len)`; `in == out` for in place.
    #[inline]
    fn raw(&mut self) -> (*const u8, *mut u8, usize) {
        match self {
            InOut::InPlace(b) => (b.as_ptr(), b.as_mut_ptr(), b.len()),
            InOut::Separate(i, o) => {
                debug_assert_eq!(i.len(), o.len());
                (i.as_ptr(), o.as_mut_ptr(), i.len().min(o.len()))
            }
        }
    }
}

/// One AES-256-XTS `EVP_CIPHER_CTX`, keyed once for one direction. Setting the tweak mutates
/// it, hence `&mut self` on use: a context serves one thread at a time (page.rs pools them).
/// The key schedule lives in memory the module wipes (`OPENSSL_free` cleanses) on drop.
pub(crate) struct XtsCtx {
    ctx: *mut ffi::EVP_CIPHER_CTX,
}

// SAFETY: the context is owned exclusively; the module keeps no thread affinity for it.
unsafe impl Send for XtsCtx {}

impl XtsCtx {
    /// Schedules `key` (64 bytes, K1 | K2, distinct halves) for encryption or decryption.
    /// `None` when the module refuses the key (equal halves) or cannot allocate.
    pub(crate) fn new(key: &[u8], encrypt: bool) -> Option<XtsCtx> {
        if key.len() != 64 {
            return None;
        }
        // SAFETY: plain allocation; checked for NULL below.
        let ctx = unsafe { ffi::EVP_CIPHER_CTX_new() };
        if ctx.is_null() {
            return None;
        }
        let this = XtsCtx { ctx };
        // SAFETY: `ctx` is a fresh context, `key` holds the 64 bytes EVP_aes_256_xts reads.
        let ok = unsafe {
            ffi::EVP_CipherInit_ex(
                ctx,
                ffi::EVP_aes_256_xts(),
                core::ptr::null_mut(),
                key.as_ptr(),
                core::ptr::null(),
                i32::from(encrypt),
            )
        };
        (ok == 1).then_some(this)
    }

    /// Encrypts or decrypts (the direction chosen at `new`) one data unit under `tweak` with the
    /// one-shot `EVP_Cipher`, the call the module's indicator counts. For AES-XTS (not a
    /// "custom cipher") `EVP_Cipher` returns 1 on success and 0 on failure (length < 16 or
    /// over 2^20 blocks). Returns whether it succeeded.
    #[inline]
    pub(crate) fn cipher(&mut self, tweak: &[u8; 16], mut io: InOut<'_>) -> bool {
        let (inp, out, len) = io.raw();
        // SAFETY: `ctx` is keyed; with a NULL cipher and key EVP_CipherInit_ex only copies the
        // 16-byte tweak into the context (enc = -1 keeps the direction).
        let ok = unsafe {
            ffi::EVP_CipherInit_ex(self.ctx, core::ptr::null(), core::ptr::null_mut(), core::ptr::null(), tweak.as_ptr(), -1)
        };
        if ok != 1 {
            return false;
        }
        // SAFETY: `inp` and `out` each cover `len` bytes and are either equal or disjoint.
        unsafe { ffi::EVP_Cipher(self.ctx, out, inp, len) == 1 }
    }
}

impl Drop for XtsCtx {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from EVP_CIPHER_CTX_new and is freed once; cleanup cleanses it.
        unsafe { ffi::EVP_CIPHER_CTX_free(self.ctx) }
    }
}

/// Length of the module's randomized-nonce GCM "tag": the 16-byte tag followed by the 12-byte
/// nonce the module generated.
pub(crate) const GCM_TAG_NONCE_LEN: usize = 28;

/// An AES-256-GCM `EVP_AEAD_CTX` of the module's randomized-nonce AEAD
/// (`EVP_aead_aes_256_gcm_randnonce`, what `aws-lc-rs`'s `RandomizedNonceKey` uses), called
/// through its gather/scatter entry points so that a page can be sealed out of place without
/// a copy. Immutable after creation and safe to share between threads (the module's seal and
/// open take a `const` context). Wiped by the module on drop.
pub(crate) struct GcmKey {
    ctx: *mut ffi::EVP_AEAD_CTX,
}

// SAFETY: seal_scatter/open_gather take `const EVP_AEAD_CTX *` and keep no per-call state in it.
unsafe impl Send for GcmKey {}
// SAFETY: as above.
unsafe impl Sync for GcmKey {}

impl GcmKey {
    /// Schedules a 32-byte key. `None` when the module refuses or cannot allocate.
    pub(crate) fn new(key: &[u8; 32]) -> Option<GcmKey> {
        // SAFETY: `key` holds 32 bytes; tag length 28 = 16-byte tag + 12-byte module nonce
        // (0 would select the same default).
        let ctx = unsafe {
            ffi::EVP_AEAD_CTX_new(ffi::EVP_aead_aes_256_gcm_randnonce(), key.as_ptr(), key.len(), GCM_TAG_NONCE_LEN)
        };
        (!ctx.is_null()).then_some(GcmKey { ctx })
    }

    /// Seals `io` (payload only) with a nonce the module draws from its DRBG, writing
    /// `tag (16) | nonce (12)` to `tag_nonce`. Returns whether it succeeded.
    #[inline]
    pub(crate) fn seal(&self, mut io: InOut<'_>, aad: &[u8], tag_nonce: &mut [u8; GCM_TAG_NONCE_LEN]) -> bool {
        let (inp, out, len) = io.raw();
        let mut tag_len = 0usize;
        // SAFETY: `inp`/`out` cover `len` bytes, equal or disjoint; `tag_nonce` holds 28 bytes;
        // no caller nonce (length 0), as the randomized-nonce AEAD requires.
        let ok = unsafe {
            ffi::EVP_AEAD_CTX_seal_scatter(
                self.ctx,
                out,
                tag_nonce.as_mut_ptr(),
                &mut tag_len,
                GCM_TAG_NONCE_LEN,
                core::ptr::null(),
                0,
                inp,
                len,
                core::ptr::null(),
                0,
                aad.as_ptr(),
                aad.len(),
            )
        };
        ok == 1 && tag_len == GCM_TAG_NONCE_LEN
    }

    /// Opens `io` (payload only) given `tag (16) | nonce (12)`. Returns whether the tag
    /// verified; on failure the output holds unspecified bytes (the caller wipes it).
    #[inline]
    pub(crate) fn open(&self, mut io: InOut<'_>, aad: &[u8], tag_nonce: &[u8; GCM_TAG_NONCE_LEN]) -> bool {
        let (inp, out, len) = io.raw();
        // SAFETY: as in `seal`; the nonce travels at the end of the 28-byte tag.
        let ok = unsafe {
            ffi::EVP_AEAD_CTX_open_gather(
                self.ctx,
                out,
                core::ptr::null(),
                0,
                inp,
                len,
                tag_nonce.as_ptr(),
                GCM_TAG_NONCE_LEN,
                aad.as_ptr(),
                aad.len(),
            )
        };
        ok == 1
    }
}

impl Drop for GcmKey {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from EVP_AEAD_CTX_new and is freed once; OPENSSL_free cleanses it.
        unsafe { ffi::EVP_AEAD_CTX_free(self.ctx) }
    }
}

// --- cells ---

/// One-shot HKDF-SHA256 (RFC 5869) through the module's `HKDF`, which counts as approved with a
/// non-empty salt and info. Used on hot paths (blind indexes derive their key per call) because
/// `aws-lc-rs`'s HKDF allocates on the heap (it boxes the secret and concatenates the info).
/// Returns false if the module refused (it does not for SHA-256 and `out.len() <= 8160`).
pub(crate) fn hkdf_sha256_oneshot(out: &mut [u8], secret: &[u8], salt: &[u8], info: &[u8]) -> bool {
    // SAFETY: every pointer comes from a live slice with its own length; `out` is writable;
    // EVP_sha256 returns a static digest description.
    unsafe {
        ffi::HKDF(
            out.as_mut_ptr(),
            out.len(),
            ffi::EVP_sha256(),
            secret.as_ptr(),
            secret.len(),
            salt.as_ptr(),
            salt.len(),
            info.as_ptr(),
            info.len(),
        ) == 1
    }
}

/// SP 800-108r1 KDF in counter mode with HMAC-SHA-256 through the module's `KBKDF_ctr_hmac`:
/// `out = K(1) | K(2) | ...` truncated to `out.len()`, `K(i) = HMAC-SHA256(secret, [i]_32 |
/// fixed)`. The module counts it as approved for SHA-256 with a secret of at least 14 bytes.
/// Returns false if the module refused (empty `out` or `secret`); the module wipes `out` then.
pub(crate) fn kbkdf_ctr_hmac_sha256(out: &mut [u8], secret: &[u8], fixed: &[u8]) -> bool {
    // SAFETY: every pointer comes from a live slice with its own length; `out` is writable;
    // EVP_sha256 returns a static digest description. The module reads `fixed` only for
    // `fixed.len()` bytes (a dangling but non-NULL pointer for an empty slice is never read).
    unsafe {
        ffi::KBKDF_ctr_hmac(
            out.as_mut_ptr(),
            out.len(),
            ffi::EVP_sha256(),
            secret.as_ptr(),
            secret.len(),
            fixed.as_ptr(),
            fixed.len(),
        ) == 1
    }
}

// ---------------------------------------------------------------------------------------------
// Key wrapping: AES-256-KWP (SP 800-38F) with a cleansed key schedule.

/// An `AES_KEY` schedule on the stack, cleansed with `OPENSSL_cleanse` when dropped (also on an
/// early return). `aws-lc-rs`'s key-wrap path leaves its schedule on the stack uncleansed
/// (issue 19), which is why wrapping calls the module from here.
struct AesSchedule(core::mem::MaybeUninit<ffi::AES_KEY>);

impl AesSchedule {
    fn new() -> AesSchedule {
        AesSchedule(core::mem::MaybeUninit::zeroed())
    }
}

impl Drop for AesSchedule {
    fn drop(&mut self) {
        // SAFETY: the pointer covers the whole `AES_KEY`, owned by `self`.
        unsafe { ffi::OPENSSL_cleanse(self.0.as_mut_ptr().cast(), core::mem::size_of::<ffi::AES_KEY>()) }
    }
}

/// AES-256 key wrap with padding (KWP, SP 800-38F / RFC 5649) of `input` under `kek` (32 bytes)
/// into `out`, with the module's `AES_wrap_key_padded` (an approved service the indicator counts
/// on success). Returns the output length (`ceil(len/8)*8 + 8`), or `None` when the module
/// refuses (`kek` not 32 bytes, `input` empty, `out` too small).
pub(crate) fn aes256_kwp_wrap(kek: &[u8], input: &[u8], out: &mut [u8]) -> Option<usize> {
    if kek.len() != 32 {
        return None;
    }
    let mut ks = AesSchedule::new();
    // SAFETY: `kek` holds the 32 bytes a 256-bit key reads; `ks` is a writable AES_KEY.
    if unsafe { ffi::AES_set_encrypt_key(kek.as_ptr(), 256, ks.0.as_mut_ptr()) } != 0 {
        return None;
    }
    let mut n = 0usize;
    // SAFETY: `ks` is scheduled; `out` has `out.len()` writable bytes, `input` `input.len()`
    // readable ones; the module writes at most `max_out` bytes and checks it first.
    let ok = unsafe {
        ffi::AES_wrap_key_padded(ks.0.as_ptr(), out.as_mut_ptr(), &mut n, out.len(), input.as_ptr(), input.len())
    };
    (ok == 1 && n <= out.len()).then_some(n)
}

/// AES-256 key unwrap with padding (KWP) of `input` under `kek` (32 bytes) into `out` (at least
/// `input.len() - 8` bytes), with the module's `AES_unwrap_key_padded` (approved, counted on
/// success). Returns the plaintext length, or `None` when the integrity check fails or the
/// lengths are wrong; `out` then holds unspecified bytes (the caller wipes it).
pub(crate) fn aes256_kwp_unwrap(kek: &[u8], input: &[u8], out: &mut [u8]) -> Option<usize> {
    if kek.len() != 32 || input.len() < 16 || input.len() % 8 != 0 || out.len() < input.len() - 8 {
        return None;
    }
    let mut ks = AesSchedule::new();
    // SAFETY: as in `aes256_kwp_wrap`.
    if unsafe { ffi::AES_set_decrypt_key(kek.as_ptr(), 256, ks.0.as_mut_ptr()) } != 0 {
        return None;
    }
    let mut n = 0usize;
    // SAFETY: `ks` is scheduled; `out` holds at least `input.len() - 8` writable bytes, the
    // most the module writes.
    let ok = unsafe {
        ffi::AES_unwrap_key_padded(ks.0.as_ptr(), out.as_mut_ptr(), &mut n, out.len(), input.as_ptr(), input.len())
    };
    (ok == 1 && n <= out.len()).then_some(n)
}

// ---------------------------------------------------------------------------------------------
// fork() detection for the GCM page epochs (security review finding 6).

/// Bumped in the child of every `fork()` by a `pthread_atfork` child handler (registered once,
/// on first use). A GCM page cipher compares it, one relaxed atomic load per page, with the
/// value its budgets were reserved under.
static FORK_GENERATION: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn on_fork_child() {
    // Async-signal-safe: one atomic add, no allocation, no lock.
    FORK_GENERATION.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

#[cfg(unix)]
extern "C" {
    fn pthread_atfork(
        prepare: Option<extern "C" fn()>,
        parent: Option<extern "C" fn()>,
        child: Option<extern "C" fn()>,
    ) -> core::ffi::c_int;
}

/// The number of `fork()`s between the first call of this function in the process's ancestry
/// and now, in this process (0 in a process that never forked after that first call). Cheap:
/// one relaxed load after the first call. Children made by a raw `clone(2)` or `vfork` that
/// then keep running Cellar are not seen (no atfork handler runs for them).
#[inline]
pub(crate) fn fork_generation() -> u64 {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    #[cfg(unix)]
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only increments a static atomic. glibc unregisters
        // handlers of a shared object when it is unloaded (dlclose), so none can dangle.
        let rc = unsafe { pthread_atfork(None, None, Some(on_fork_child)) };
        // ENOMEM is the only failure: then fall back to noticing nothing (as before finding 6),
        // but the page cipher also compares process ids when it refills (see page.rs).
        let _ = rc;
    });
    #[cfg(not(unix))]
    REGISTER.call_once(|| {});
    FORK_GENERATION.load(core::sync::atomic::Ordering::Relaxed)
}
