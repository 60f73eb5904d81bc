//! C exports for TDE page ciphers.

use super::{cellar_status, ffi_boundary, free_handle, handle, new_handle, non_null, out_ptr, write_out, Castable, Fail};
use crate::error::Error;
use crate::ffi::keys::cellar_key;
use crate::page::{self, PageCipher, PageMode};
use crate::sys::InOut;

/// An opaque TDE page cipher: a page key, a mode, a file id, a key version and flags.
///
/// Immutable (but for its written mark, which only rises: `cellar_page_cipher_set_written_mark`)
/// and safe to share between threads: any number of threads may encrypt and decrypt
/// with one handle at once (it keeps per-thread state internally, so two threads run at twice
/// one thread's speed). The cipher holds its own reference to the key, so the key handle may be
/// freed first. Create with `cellar_page_cipher_new`, free with `cellar_page_cipher_free`
/// (only once no other thread is using it). No call consumes it.
pub struct cellar_page_cipher {
    _private: [u8; 0],
}

impl Castable for cellar_page_cipher {
    type Inner = PageCipher;
    const MAGIC: u64 = 0x6365_6c6c_7067_6331; // "cellpgc1"
    const NAME: &'static str = "cellar_page_cipher";
}

/// Page mode: AES-256-XTS, length-preserving, confidentiality only (no tamper detection).
/// Needs a `CELLAR_KEY_AES256_XTS` key. Tweak = page_no (u64 LE) | file_id (u64 LE).
pub const CELLAR_PAGE_XTS: u32 = 1;
/// Page mode: AES-256-GCM, authenticated; the last `CELLAR_PAGE_GCM_TRAILER_LEN` bytes of each
/// page are the trailer. Needs a `CELLAR_KEY_AES256` key.
pub const CELLAR_PAGE_GCM: u32 = 2;
/// Page cipher flag: an all-zero page (never written) decrypts to zeros instead of failing.
/// A hazard on its own: a written page that is zeroed on disk then reads back as an empty page
/// with `CELLAR_OK`. Pair it with `cellar_page_cipher_set_written_mark`, below which an all-zero
/// page is `CELLAR_ERR_AUTHENTICATION_FAILED` (docs/SECURITY.md, "Integration hazards").
pub const CELLAR_PAGE_ZERO_IS_EMPTY: u32 = 1;
/// Smallest page size in bytes.
pub const CELLAR_PAGE_MIN_SIZE: usize = 512;
/// Largest page size in bytes. Page sizes are also a multiple of 16.
pub const CELLAR_PAGE_MAX_SIZE: usize = 65536;
/// Bytes reserved at the end of each GCM page for the trailer.
pub const CELLAR_PAGE_GCM_TRAILER_LEN: usize = 48;

const _: () = {
    assert!(CELLAR_PAGE_MIN_SIZE == page::MIN_PAGE_SIZE);
    assert!(CELLAR_PAGE_MAX_SIZE == page::MAX_PAGE_SIZE);
    assert!(CELLAR_PAGE_GCM_TRAILER_LEN == page::GCM_TRAILER_LEN);
    assert!(CELLAR_PAGE_ZERO_IS_EMPTY == page::FLAG_ZERO_IS_EMPTY);
};

/// Makes a page cipher for one file. `mode` is `CELLAR_PAGE_XTS` (key must be
/// `CELLAR_KEY_AES256_XTS`) or `CELLAR_PAGE_GCM` (key must be `CELLAR_KEY_AES256`); another key
/// type, or a key whose purpose is not data encryption (or none), is
/// `CELLAR_ERR_INVALID_KEY`, an unknown mode or flag bit `CELLAR_ERR_INVALID_ARGUMENT`.
/// `file_id` is bound into every page; `key_version` is written into every GCM trailer and
/// required on decrypt. `flags` is 0 or `CELLAR_PAGE_ZERO_IS_EMPTY`. A GCM cipher draws a random
/// salt here and again after every 2^31 encryptions, and in the child of a `fork()` before the
/// child's first page (the child never continues its parent's salt; the parent keeps it). On
/// success `*out_cipher` receives a new handle (free with `cellar_page_cipher_free`).
#[no_mangle]
pub extern "C" fn cellar_page_cipher_new(
    key: *const cellar_key,
    mode: u32,
    file_id: u64,
    key_version: u32,
    flags: u32,
    out_cipher: *mut *mut cellar_page_cipher,
) -> cellar_status {
    ffi_boundary!("cellar_page_cipher_new", {
        op((|| {
            let out = out_ptr(out_cipher, "out_cipher")?;
            let key = handle::<cellar_key>(key, "key")?;
            let mode = PageMode::from_u32(mode)?;
            let cipher = PageCipher::new(key, mode, file_id, key_version, flags)?;
            write_out(out, new_handle::<cellar_page_cipher>(cipher));
            Ok(())
        })())
    })
}

/// A page operation that failed before reaching the core (NULL, size, overlap) still reports
/// "failed" (-1) from `cellar_last_operation_approved`, as a failure inside the core does.
fn op(r: Result<(), Fail>) -> Result<(), Fail> {
    if r.is_err() {
        crate::fips::mark_failed();
    }
    r
}

/// Checks the two buffers of `len` bytes and builds the in-place or out-of-place view.
/// `in == out` is in place; any other overlap is `CELLAR_ERR_INVALID_ARGUMENT`.
fn in_out<'a>(input: *const u8, out: *mut u8, len: usize) -> Result<InOut<'a>, Fail> {
    if len == 0 {
        return Ok(InOut::InPlace(&mut []));
    }
    non_null(input, "in")?;
    out_ptr(out, "out")?;
    if len > isize::MAX as usize {
        return Err(Error::InvalidArgument("length exceeds the address space").into());
    }
    if input == out.cast_const() {
        // SAFETY: the caller promises `out` holds `len` writable bytes for the call.
        return Ok(InOut::InPlace(unsafe { core::slice::from_raw_parts_mut(out, len) }));
    }
    let (i, o) = (input as usize, out as usize);
    if i < o.wrapping_add(len) && o < i.wrapping_add(len) {
        return Err(Error::InvalidArgument("in and out overlap without being equal").into());
    }
    // SAFETY: the caller promises `len` readable bytes at `input` and `len` writable bytes at
    // `out`; they were just checked to be disjoint.
    unsafe {
        Ok(InOut::Separate(
            core::slice::from_raw_parts(input, len),
            core::slice::from_raw_parts_mut(out, len),
        ))
    }
}

fn one_page(cipher: &PageCipher, page_no: u64, io: InOut<'_>, encrypt: bool) -> crate::Result<()> {
    match (io, encrypt) {
        (InOut::InPlace(b), true) => cipher.encrypt_in_place(page_no, b),
        (InOut::InPlace(b), false) => cipher.decrypt_in_place(page_no, b),
        (InOut::Separate(i, o), true) => cipher.encrypt(page_no, i, o),
        (InOut::Separate(i, o), false) => cipher.decrypt(page_no, i, o),
    }
}

/// Encrypts one page of `page_size` bytes (512 to 65536, a multiple of 16) from `in` to `out`,
/// which are equal (in place) or disjoint (any other overlap is `CELLAR_ERR_INVALID_ARGUMENT`).
/// XTS: all `page_size` bytes are encrypted. GCM: the first `page_size - 48` bytes are the
/// payload and the last 48 bytes of `in` are ignored; `out` receives the sealed payload and the
/// trailer. Allocates nothing in the steady state; safe to call from many threads at once.
#[no_mangle]
pub extern "C" fn cellar_page_encrypt(
    cipher: *const cellar_page_cipher,
    page_no: u64,
    in_: *const u8,
    out: *mut u8,
    page_size: usize,
) -> cellar_status {
    ffi_boundary!("cellar_page_encrypt", {
        op((|| {
            let cipher = handle::<cellar_page_cipher>(cipher, "cipher")?;
            non_null(in_, "in")?;
            out_ptr(out, "out")?;
            page::check_page_size(page_size)?;
            Ok(one_page(cipher, page_no, in_out(in_, out, page_size)?, true)?)
        })())
    })
}

/// Decrypts one page (see `cellar_page_encrypt` for sizes and buffers). On any failure `out`
/// is all zeros. GCM: a page changed in any byte, moved to another page number or file, or
/// sealed under another key is `CELLAR_ERR_AUTHENTICATION_FAILED`, as is a page whose trailer
/// names another key version (the last-error text says so; read it with
/// `cellar_page_key_version`). A decrypted GCM page has zeros in its last 48 bytes. An all-zero
/// page decrypts to zeros when the cipher has `CELLAR_PAGE_ZERO_IS_EMPTY`, else fails (GCM);
/// for XTS without the flag it decrypts like any other ciphertext.
#[no_mangle]
pub extern "C" fn cellar_page_decrypt(
    cipher: *const cellar_page_cipher,
    page_no: u64,
    in_: *const u8,
    out: *mut u8,
    page_size: usize,
) -> cellar_status {
    ffi_boundary!("cellar_page_decrypt", {
        op((|| {
            let cipher = handle::<cellar_page_cipher>(cipher, "cipher")?;
            non_null(in_, "in")?;
            out_ptr(out, "out")?;
            page::check_page_size(page_size)?;
            Ok(one_page(cipher, page_no, in_out(in_, out, page_size)?, false)?)
        })())
    })
}

#[allow(clippy::too_many_arguments)]
fn batch(
    cipher: *const cellar_page_cipher,
    first_page_no: u64,
    input: *const u8,
    out: *mut u8,
    page_size: usize,
    page_count: usize,
    threads: u32,
    encrypt: bool,
) -> Result<(), Fail> {
    let cipher = handle::<cellar_page_cipher>(cipher, "cipher")?;
    page::check_page_size(page_size)?;
    let total = page_size
        .checked_mul(page_count)
        .ok_or(Error::InvalidArgument("page_size * page_count overflows"))?;
    let threads = usize::try_from(threads).unwrap_or(page::MAX_BATCH_THREADS);
    let r = match (in_out(input, out, total)?, encrypt) {
        (InOut::InPlace(b), true) => cipher.encrypt_pages_in_place(first_page_no, b, page_size, threads),
        (InOut::InPlace(b), false) => cipher.decrypt_pages_in_place(first_page_no, b, page_size, threads),
        (InOut::Separate(i, o), true) => cipher.encrypt_pages(first_page_no, i, o, page_size, threads),
        (InOut::Separate(i, o), false) => cipher.decrypt_pages(first_page_no, i, o, page_size, threads),
    };
    r.map_err(|e| {
        let no = first_page_no.wrapping_add(e.index as u64);
        Fail::with_detail(e.error.clone(), format!("page index {} (page_no {no}): {}", e.index, e.error))
    })
}

/// Encrypts `page_count` contiguous pages of `page_size` bytes (`page_count * page_size` bytes
/// at `in` and at `out`, equal or disjoint); page `i` gets page number `first_page_no + i`
/// (which must not pass 2^64 - 1). `threads` is a maximum, not an order: 0 or 1 runs on the
/// calling thread and allocates nothing; N > 1 lets the run be shared with up to N - 1 of
/// Cellar's workers (a process-wide pool of one thread fewer than the CPUs, named
/// `cellar-worker-N`, started on the first shared call and kept for the life of the process; a
/// `fork()` child starts its own), but only when that pays: runs under 256 KiB always stay on
/// the calling thread (a tuning value, not a promise), and larger ones too
/// while their measured cost is under twice the measured hand-off latency (30-50 us to wake a
/// parked worker on a 2-vCPU VM). A shared run is cut into pieces that the calling thread and
/// the workers take in order, so a worker that wakes late takes less, and one that has not
/// started when the pieces run out is dropped from the call (never waited for); the call returns
/// when every piece is done. The output does not depend on `threads`. `page_count` 0 does nothing
/// (`in`/`out` may be NULL). On
/// failure every page of `out` is zeroed and the last-error text names the failing page index.
#[no_mangle]
pub extern "C" fn cellar_page_encrypt_pages(
    cipher: *const cellar_page_cipher,
    first_page_no: u64,
    in_: *const u8,
    out: *mut u8,
    page_size: usize,
    page_count: usize,
    threads: u32,
) -> cellar_status {
    ffi_boundary!("cellar_page_encrypt_pages", {
        op(batch(cipher, first_page_no, in_, out, page_size, page_count, threads, true))
    })
}

/// Decrypts `page_count` contiguous pages (see `cellar_page_encrypt_pages`). If any page fails,
/// every page of `out` is zeroed, the status is that page's error and the last-error text names
/// the first failing page index ("page index I (page_no N): ...").
#[no_mangle]
pub extern "C" fn cellar_page_decrypt_pages(
    cipher: *const cellar_page_cipher,
    first_page_no: u64,
    in_: *const u8,
    out: *mut u8,
    page_size: usize,
    page_count: usize,
    threads: u32,
) -> cellar_status {
    ffi_boundary!("cellar_page_decrypt_pages", {
        op(batch(cipher, first_page_no, in_, out, page_size, page_count, threads, false))
    })
}

/// Reads the key version from a GCM page's trailer without any key, to drive an online
/// re-encryption scan. Not authenticated until the page is decrypted. `page_size` as for
/// `cellar_page_encrypt`. A page without a Cellar GCM trailer (format byte 0x01, zero reserved
/// bytes), such as a never-written all-zero page, is `CELLAR_ERR_UNSUPPORTED_FORMAT`. Does no
/// cryptography (leaves the approval indicator unchanged).
#[no_mangle]
pub extern "C" fn cellar_page_key_version(page: *const u8, page_size: usize, out_key_version: *mut u32) -> cellar_status {
    ffi_boundary!("cellar_page_key_version", {
        let out = out_ptr(out_key_version, "out_key_version")?;
        non_null(page, "page")?;
        page::check_page_size(page_size)?;
        // SAFETY: the caller promises `page_size` readable bytes at `page`.
        let p = unsafe { core::slice::from_raw_parts(page, page_size) };
        write_out(out, page::page_key_version(p)?);
        Ok(())
    })
}

/// Bytes a mode reserves at the end of each page: 0 for `CELLAR_PAGE_XTS`, 48 for
/// `CELLAR_PAGE_GCM`, and `SIZE_MAX` for an unknown mode (so it cannot be mistaken for XTS).
#[no_mangle]
pub extern "C" fn cellar_page_reserved_bytes(mode: u32) -> usize {
    super::boundary_value(usize::MAX, || PageMode::from_u32(mode).map_or(usize::MAX, PageMode::reserved_bytes))
}

/// Raises the cipher's *written mark* to `mark`, a page number: the engine declares that every
/// page numbered below `mark` has been written (typically its file's page count, kept in its
/// own authenticated metadata and set once after creating the cipher, then raised as the file
/// grows). Below the mark an all-zero page is `CELLAR_ERR_AUTHENTICATION_FAILED` (last-error
/// text "an all-zero page below the written mark ..."), at or above it an all-zero page still
/// decrypts to zeros; pages that are not all zeros are unaffected. The mark starts at 0 and
/// never goes down: a lower `mark` leaves it unchanged (not an error; read the mark in force
/// with `cellar_page_cipher_written_mark`). Needs a cipher made with `CELLAR_PAGE_ZERO_IS_EMPTY`
/// (else `CELLAR_ERR_INVALID_ARGUMENT`: without the flag every all-zero GCM page already
/// fails, and XTS cannot tell an all-zero ciphertext from another). Safe to call from any
/// thread while others use the cipher (one atomic update, seen by every later decrypt). Does no
/// cryptography (leaves the approval indicator unchanged). Since ABI 1.2.
#[no_mangle]
pub extern "C" fn cellar_page_cipher_set_written_mark(
    cipher: *const cellar_page_cipher,
    mark: u64,
) -> cellar_status {
    ffi_boundary!("cellar_page_cipher_set_written_mark", {
        let c = handle::<cellar_page_cipher>(cipher, "cipher")?;
        c.set_written_mark(mark)?;
        Ok(())
    })
}

/// Reads the cipher's written mark (see `cellar_page_cipher_set_written_mark`) into
/// `*out_mark`: 0 until raised, and always 0 for a cipher without `CELLAR_PAGE_ZERO_IS_EMPTY`.
/// Does no cryptography. Since ABI 1.2.
#[no_mangle]
pub extern "C" fn cellar_page_cipher_written_mark(cipher: *const cellar_page_cipher, out_mark: *mut u64) -> cellar_status {
    ffi_boundary!("cellar_page_cipher_written_mark", {
        let out = out_ptr(out_mark, "out_mark")?;
        let c = handle::<cellar_page_cipher>(cipher, "cipher")?;
        write_out(out, c.written_mark());
        Ok(())
    })
}

/// Frees a page cipher. NULL does nothing. No other thread may be using it.
#[no_mangle]
pub extern "C" fn cellar_page_cipher_free(cipher: *mut cellar_page_cipher) {
    super::boundary_value((), || free_handle::<cellar_page_cipher>(cipher));
}

/// Decrypts `page_count` contiguous pages like `cellar_page_decrypt_pages`, but a page that
/// fails does not take the others with it: `page_status` (an array of `page_count`
/// `cellar_status` entries, owned by the caller) receives `CELLAR_OK` for every page that
/// decrypted and that page's error (`CELLAR_ERR_AUTHENTICATION_FAILED` for a changed, moved or
/// other-version GCM page) for every page that did not. Good pages hold their plaintext, failed
/// pages hold zeros, so a readahead keeps its good pages. Returns `CELLAR_OK` when every page
/// decrypted; otherwise the first failed page's status, with `*out_failed` set to the number of
/// failed pages and the last-error text naming the first one (`page_status` has them all). This
/// is the documented exception to "out-parameters only on success": `page_status` and
/// `*out_failed` are written whenever the run was decrypted, also when some page failed; a call
/// refused for its arguments (NULLs, sizes, overlap) touches neither, nor any page. In place
/// when `in == out`. `threads` as in `cellar_page_encrypt_pages`. No heap allocation on one
/// thread. The indicator reports the call as failed (-1) when any page failed.
#[no_mangle]
pub extern "C" fn cellar_page_decrypt_pages_status(
    cipher: *const cellar_page_cipher,
    first_page_no: u64,
    in_: *const u8,
    out: *mut u8,
    page_size: usize,
    page_count: usize,
    threads: u32,
    page_status: *mut cellar_status,
    out_failed: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_page_decrypt_pages_status", {
        let c = handle::<cellar_page_cipher>(cipher, "cipher")?;
        let failed_p = out_ptr(out_failed, "out_failed")?;
        page::check_page_size(page_size)?;
        let total = page_size
            .checked_mul(page_count)
            .ok_or(Error::InvalidArgument("page_size * page_count overflows"))?;
        // Every argument the core checks is checked here first, so a failure the core reports
        // below belongs to a page (and `page_status` was written).
        if page_count > 0 && first_page_no.checked_add(page_count as u64 - 1).is_none() {
            return Err(Error::InvalidArgument("page numbers of the run overflow 2^64").into());
        }
        let status: &mut [cellar_status] = if page_count == 0 {
            &mut []
        } else {
            let p = out_ptr(page_status, "page_status")?;
            if !p.is_aligned() {
                return Err(Error::InvalidArgument("page_status is not aligned").into());
            }
            let bytes = page_count.checked_mul(4).ok_or(Error::InvalidArgument("page_count is too large"))?;
            let (s0, o0) = (p as usize, out as usize);
            if s0 < o0.wrapping_add(total) && o0 < s0.wrapping_add(bytes) || {
                let i0 = in_ as usize;
                s0 < i0.wrapping_add(total) && i0 < s0.wrapping_add(bytes)
            } {
                return Err(Error::InvalidArgument("page_status overlaps the pages").into());
            }
            // SAFETY: checked non-NULL and aligned; the caller promises `page_count` writable
            // entries, which do not overlap the pages (checked above).
            unsafe { core::slice::from_raw_parts_mut(p, page_count) }
        };
        let threads = usize::try_from(threads).unwrap_or(page::MAX_BATCH_THREADS);
        let r = match in_out(in_, out, total)? {
            InOut::InPlace(b) => c.decrypt_pages_each_in_place(first_page_no, b, page_size, threads, status),
            InOut::Separate(i, o) => c.decrypt_pages_each(first_page_no, i, o, page_size, threads, status),
        };
        match r {
            Ok(()) => {
                write_out(failed_p, 0);
                Ok(())
            }
            Err(e) if status.get(e.index).is_some_and(|&s| s != 0) => {
                let n = status.iter().filter(|&&s| s != 0).count();
                write_out(failed_p, n);
                let no = first_page_no.wrapping_add(e.index as u64);
                Err(Fail::with_detail(
                    e.error.clone(),
                    format!("{n} of {page_count} pages failed; first: page index {} (page_no {no}): {}", e.index, e.error),
                ))
            }
            Err(e) => Err(e.error.into()),
        }
    })
}
