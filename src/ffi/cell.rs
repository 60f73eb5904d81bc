//! C exports for cell ciphers and blind indexes.

use super::keys::cellar_key;
use super::{
    boundary_value, cellar_status, ffi_boundary, free_handle, handle, in_slice, new_handle, non_null, out_buffer,
    out_ptr, write_out, Castable, Fail, FfiResult,
};
use crate::cell::{self, BatchError, CellCipher, CellMode};
use crate::error::Error;

/// An opaque cell cipher: a key, a cell mode and a key version, with its subkeys derived once.
///
/// Immutable and safe to share between threads: any number of threads may encrypt and decrypt
/// with one handle at once. It holds its own reference to the key, so the key handle may be freed
/// first. Create with `cellar_cell_cipher_new`, free with `cellar_cell_cipher_free`. No call
/// consumes it.
pub struct cellar_cell_cipher {
    _private: [u8; 0],
}

impl Castable for cellar_cell_cipher {
    type Inner = CellCipher;
    const MAGIC: u64 = 0x6365_6c6c_6370_6831; // "cellcph1"
    const NAME: &'static str = "cellar_cell_cipher";
}

/// Cell mode: AES-256-GCM with a module nonce.
/// `0x01 | key_version (u32 BE) | nonce (12) | ciphertext | tag (16)`, AAD = `ct[0..5] | context`.
pub const CELLAR_CELL_RANDOMIZED: u32 = 1;
/// Cell mode: deterministic (synthetic IV, AES-256-CBC + HMAC-SHA256), for equality lookups.
/// `0x02 | key_version (u32 BE) | iv (16) | c | tag (32)`.
pub const CELLAR_CELL_DETERMINISTIC: u32 = 2;
/// Cell mode: SQL Server Always Encrypted AEAD_AES_256_CBC_HMAC_SHA256, randomized type.
/// `0x01 | mac (32) | iv (16) | c`; no key version, no context.
pub const CELLAR_CELL_MSSQL_RANDOMIZED: u32 = 3;
/// Cell mode: SQL Server Always Encrypted AEAD_AES_256_CBC_HMAC_SHA256, deterministic type.
pub const CELLAR_CELL_MSSQL_DETERMINISTIC: u32 = 4;
/// Contexts up to this many bytes cost no heap allocation; longer ones cost one per RANDOMIZED
/// cell (for the contiguous AAD).
pub const CELLAR_CELL_CONTEXT_INLINE_MAX: usize = 1024;
/// Shortest blind index, in bytes.
pub const CELLAR_BLIND_INDEX_MIN_LEN: usize = 4;
/// Longest blind index, in bytes (a full HMAC-SHA256).
pub const CELLAR_BLIND_INDEX_MAX_LEN: usize = 32;

// cbindgen needs literals; keep them equal to the core's constants.
const _: () = assert!(
    CELLAR_CELL_CONTEXT_INLINE_MAX == cell::CONTEXT_INLINE_MAX
        && CELLAR_BLIND_INDEX_MIN_LEN == cell::BLIND_INDEX_MIN
        && CELLAR_BLIND_INDEX_MAX_LEN == cell::BLIND_INDEX_MAX
);

impl From<BatchError> for Fail {
    fn from(e: BatchError) -> Self {
        match e.index {
            Some(i) => Fail::with_detail(e.error.clone(), format!("value {i}: {}", e.error)),
            None => e.error.into(),
        }
    }
}

/// Refuses an output range that overlaps an input range (`INVALID_ARGUMENT`): cells are never
/// encrypted in place, since the ciphertext is longer than the plaintext.
fn no_overlap(a: *const u8, a_len: usize, b: *const u8, b_len: usize, what: &'static str) -> FfiResult {
    if a_len == 0 || b_len == 0 || a.is_null() || b.is_null() {
        return Ok(());
    }
    let (a0, b0) = (a as usize, b as usize);
    if a0 < b0.saturating_add(b_len) && b0 < a0.saturating_add(a_len) {
        return Err(Error::InvalidArgument(what).into());
    }
    Ok(())
}

/// Offsets arrays of `count + 1` entries.
fn offsets_slice<'a>(p: *const usize, count: usize, name: &'static str) -> FfiResult<&'a [usize]> {
    let p = non_null(p, name)?;
    let n = count.checked_add(1).filter(|&n| n <= isize::MAX as usize / 8).ok_or(Error::InvalidArgument("count is too large"))?;
    // SAFETY: the caller promises `p` points to `count + 1` readable `size_t`s.
    Ok(unsafe { core::slice::from_raw_parts(p, n) })
}

/// Makes a cell cipher from an AES-256 `key` (an XTS key, or a key whose purpose is not data
/// encryption or none, is `CELLAR_ERR_INVALID_KEY`), a mode
/// (`CELLAR_CELL_*`; another integer is `CELLAR_ERR_INVALID_ARGUMENT`) and a `key_version` that
/// native cells carry and decryption requires. The Always Encrypted modes have no key version and
/// ignore it. The CBC modes derive their subkeys here, once. On success `*out_cipher` receives a
/// new handle (free with `cellar_cell_cipher_free`).
#[no_mangle]
pub extern "C" fn cellar_cell_cipher_new(
    key: *const cellar_key,
    mode: u32,
    key_version: u32,
    out_cipher: *mut *mut cellar_cell_cipher,
) -> cellar_status {
    ffi_boundary!("cellar_cell_cipher_new", {
        let out = out_ptr(out_cipher, "out_cipher")?;
        let key = handle::<cellar_key>(key, "key")?;
        let mode = CellMode::from_u32(mode)?;
        let c = CellCipher::new(key, mode, key_version)?;
        write_out(out, new_handle::<cellar_cell_cipher>(c));
        Ok(())
    })
}

/// Frees a cell cipher. NULL does nothing. The handle must not be used afterwards.
#[no_mangle]
pub extern "C" fn cellar_cell_cipher_free(cipher: *mut cellar_cell_cipher) {
    boundary_value((), || free_handle::<cellar_cell_cipher>(cipher));
}

/// Exact ciphertext length in bytes of a `plaintext_len`-byte value in `mode`: plaintext + 33
/// (RANDOMIZED), 53 + the PKCS7-padded length (DETERMINISTIC), 49 + the padded length (MSSQL
/// modes; the padded length is `(plaintext_len / 16 + 1) * 16`). The CBC lengths are also the
/// maximum. 0 for an unknown mode or on overflow. Does no cryptography.
#[no_mangle]
pub extern "C" fn cellar_cell_ciphertext_len(mode: u32, plaintext_len: usize) -> usize {
    boundary_value(0, || {
        CellMode::from_u32(mode).ok().and_then(|m| m.ciphertext_len(plaintext_len)).unwrap_or(0)
    })
}

/// Room in bytes that `cellar_cell_decrypt` needs for a `ciphertext_len`-byte cell: exact for
/// RANDOMIZED (ciphertext - 33), the longest possible plaintext for the CBC modes (ciphertext -
/// 54 for DETERMINISTIC, ciphertext - 50 for MSSQL; the exact length comes back in `*out_len`).
/// 0 for an unknown mode or a length no cell of that mode has.
#[no_mangle]
pub extern "C" fn cellar_cell_plaintext_max_len(mode: u32, ciphertext_len: usize) -> usize {
    boundary_value(0, || CellMode::from_u32(mode).map(|m| m.plaintext_max_len(ciphertext_len)).unwrap_or(0))
}

/// Encrypts `plaintext` bound to `context` (caller bytes naming the cell's place, for example
/// tenant, table, column and row key; they must be given again to decrypt) into
/// `out[0..out_cap]`, setting `*out_len`. `out_cap` below `cellar_cell_ciphertext_len` is
/// `CELLAR_ERR_BUFFER_TOO_SMALL` with the size in `*out_len`. The MSSQL modes take no context: a
/// non-empty one is `CELLAR_ERR_INVALID_ARGUMENT`; so is `out` overlapping `plaintext` or
/// `context`. RANDOMIZED counts one encryption against the key's usage limit
/// (`CELLAR_ERR_USAGE_LIMIT` past it). No heap allocation for contexts up to
/// `CELLAR_CELL_CONTEXT_INLINE_MAX` bytes. Thread-safe.
#[no_mangle]
pub extern "C" fn cellar_cell_encrypt(
    cipher: *const cellar_cell_cipher,
    context: *const u8,
    context_len: usize,
    plaintext: *const u8,
    plaintext_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_cell_encrypt", {
        let c = handle::<cellar_cell_cipher>(cipher, "cipher")?;
        let ctx = in_slice(context, context_len, "context")?;
        let pt = in_slice(plaintext, plaintext_len, "plaintext")?;
        c.check_context(ctx)?;
        let needed = c.ciphertext_len(pt.len()).ok_or(Error::InvalidArgument("plaintext is too long"))?;
        no_overlap(out, out_cap, plaintext, plaintext_len, "out overlaps plaintext")?;
        no_overlap(out, out_cap, context, context_len, "out overlaps context")?;
        let buf = out_buffer(out, out_cap, out_len, needed)?;
        let n = c.encrypt_to(ctx, pt, buf)?;
        write_out(out_len, n);
        Ok(())
    })
}

/// Decrypts a cell bound to `context` into `out[0..out_cap]`, setting `*out_len` to the
/// plaintext length. `out_cap` below `cellar_cell_plaintext_max_len` is
/// `CELLAR_ERR_BUFFER_TOO_SMALL` with that bound in `*out_len`. Any authentication failure
/// (tampered, truncated or extended cell, other key, key version, mode or context) is
/// `CELLAR_ERR_AUTHENTICATION_FAILED` and leaves `out[0..bound]` zeroed. The MSSQL modes take no
/// context (non-empty: `CELLAR_ERR_INVALID_ARGUMENT`) and decrypt both MSSQL types alike, as SQL
/// Server's drivers do. No heap allocation (see `cellar_cell_encrypt`). Thread-safe.
#[no_mangle]
pub extern "C" fn cellar_cell_decrypt(
    cipher: *const cellar_cell_cipher,
    context: *const u8,
    context_len: usize,
    ciphertext: *const u8,
    ciphertext_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_cell_decrypt", {
        let c = handle::<cellar_cell_cipher>(cipher, "cipher")?;
        let ctx = in_slice(context, context_len, "context")?;
        let ct = in_slice(ciphertext, ciphertext_len, "ciphertext")?;
        c.check_context(ctx)?;
        no_overlap(out, out_cap, ciphertext, ciphertext_len, "out overlaps ciphertext")?;
        no_overlap(out, out_cap, context, context_len, "out overlaps context")?;
        let buf = out_buffer(out, out_cap, out_len, c.plaintext_max_len(ct.len()))?;
        let n = c.decrypt_to(ctx, ct, buf)?;
        write_out(out_len, n);
        Ok(())
    })
}

/// Reads the key version of a native cell (RANDOMIZED, format 0x01, at least 33 bytes; or
/// DETERMINISTIC, format 0x02, at least 69 bytes) without any key, to drive a re-encryption scan.
/// Anything else is `CELLAR_ERR_UNSUPPORTED_FORMAT`. An Always Encrypted cell also begins with
/// 0x01 and would be read as RANDOMIZED: call this only on native columns. The version is not
/// authenticated until the cell is decrypted. Does no cryptography.
#[no_mangle]
pub extern "C" fn cellar_cell_key_version(
    ciphertext: *const u8,
    ciphertext_len: usize,
    out_key_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_cell_key_version", {
        let out = out_ptr(out_key_version, "out_key_version")?;
        let ct = in_slice(ciphertext, ciphertext_len, "ciphertext")?;
        write_out(out, cell::key_version(ct)?);
        Ok(())
    })
}

/// Total ciphertext bytes `cellar_cell_encrypt_batch` writes for the values laid out by
/// `offsets` (`count + 1` entries): the sum of `cellar_cell_ciphertext_len` over the values.
/// 0 for an unknown mode, NULL `offsets`, decreasing offsets or overflow (and for `count == 0`).
#[no_mangle]
pub extern "C" fn cellar_cell_batch_ciphertext_len(mode: u32, offsets: *const usize, count: usize) -> usize {
    boundary_value(0, || {
        let (Ok(m), Ok(o)) = (CellMode::from_u32(mode), offsets_slice(offsets, count, "offsets")) else {
            return 0;
        };
        cell::batch_ciphertext_len(m, o).unwrap_or(0)
    })
}

/// Total room `cellar_cell_decrypt_batch` needs for the cells laid out by `offsets` (`count + 1`
/// entries): the sum of `cellar_cell_plaintext_max_len`. 0 for an unknown mode, NULL `offsets`,
/// decreasing offsets or overflow.
#[no_mangle]
pub extern "C" fn cellar_cell_batch_plaintext_max_len(mode: u32, offsets: *const usize, count: usize) -> usize {
    boundary_value(0, || {
        let (Ok(m), Ok(o)) = (CellMode::from_u32(mode), offsets_slice(offsets, count, "offsets")) else {
            return 0;
        };
        cell::batch_plaintext_max_len(m, o).unwrap_or(0)
    })
}

/// `out_buffer` for a batch whose output can be smaller than its bound `total` (decryption in
/// the CBC modes): at least `min` bytes must be there, else `CELLAR_ERR_BUFFER_TOO_SMALL`
/// reporting `total`; then the whole `out_cap` may be used.
fn batch_out<'a>(out: *mut u8, out_cap: usize, out_len: *mut usize, total: usize, min: usize) -> FfiResult<&'a mut [u8]> {
    if out_cap < min || out_cap >= total {
        return out_buffer(out, out_cap, out_len, total);
    }
    out_ptr(out_len, "out_len")?;
    if out_cap == 0 {
        return Ok(&mut []);
    }
    let out = out_ptr(out, "out")?;
    // SAFETY: the caller promises `out` points to `out_cap` writable bytes (clamped as in
    // `out_buffer`).
    Ok(unsafe { core::slice::from_raw_parts_mut(out, out_cap.min(isize::MAX as usize)) })
}

/// Encryption sizes: exact, so the least room is the bound.
fn encrypt_sizes(m: CellMode, o: &[usize]) -> Option<(usize, usize)> {
    cell::batch_ciphertext_len(m, o).map(|t| (t, t))
}

/// Decryption sizes: the bound and the least room (see `cell::batch_plaintext_min_len`).
fn decrypt_sizes(m: CellMode, o: &[usize]) -> Option<(usize, usize)> {
    Some((cell::batch_plaintext_max_len(m, o)?, cell::batch_plaintext_min_len(m, o)?))
}

/// A batch decryption's result; a tight buffer the plaintexts did not fit reports the bound.
fn decrypted(r: core::result::Result<usize, BatchError>, out_len: *mut usize) -> FfiResult<usize> {
    r.map_err(|e| {
        if let Error::BufferTooSmall { needed } = e.error {
            write_out(out_len, needed);
        }
        e.into()
    })
}

/// Arguments shared by both batch calls, checked once.
struct BatchArgs<'a> {
    cipher: &'a CellCipher,
    context: &'a [u8],
    values: &'a [u8],
    offsets: &'a [usize],
    out: &'a mut [u8],
    out_offsets: &'a mut [usize],
}

#[allow(clippy::too_many_arguments)]
fn batch_args<'a>(
    cipher: *const cellar_cell_cipher,
    context: *const u8,
    context_len: usize,
    values: *const u8,
    offsets: *const usize,
    count: usize,
    out: *mut u8,
    out_cap: usize,
    out_offsets: *mut usize,
    out_len: *mut usize,
    needed: impl FnOnce(CellMode, &[usize]) -> Option<(usize, usize)>,
) -> FfiResult<BatchArgs<'a>> {
    let cipher = handle::<cellar_cell_cipher>(cipher, "cipher")?;
    let context = in_slice(context, context_len, "context")?;
    cipher.check_context(context)?;
    let offsets = offsets_slice(offsets, count, "offsets")?;
    let out_offsets_p = out_ptr(out_offsets, "out_offsets")?;
    out_ptr(out_len, "out_len")?;
    let (total, min) = needed(cipher.mode(), offsets).ok_or(Error::InvalidArgument("offsets decrease or the batch is too large"))?;
    let values_len = offsets[count];
    let values = in_slice(values, values_len, "values")?;
    let off_bytes = core::mem::size_of_val(offsets);
    no_overlap(out, out_cap, values.as_ptr(), values_len, "out overlaps values")?;
    no_overlap(out, out_cap, context.as_ptr(), context_len, "out overlaps context")?;
    no_overlap(out, out_cap, out_offsets_p.cast(), off_bytes, "out overlaps out_offsets")?;
    no_overlap(out, out_cap, offsets.as_ptr().cast(), off_bytes, "out overlaps offsets")?;
    no_overlap(out_offsets_p.cast(), off_bytes, offsets.as_ptr().cast(), off_bytes, "out_offsets overlaps offsets")?;
    no_overlap(out_offsets_p.cast(), off_bytes, values.as_ptr(), values_len, "out_offsets overlaps values")?;
    no_overlap(out_offsets_p.cast(), off_bytes, context.as_ptr(), context_len, "out_offsets overlaps context")?;
    let out = batch_out(out, out_cap, out_len, total, min)?;
    // SAFETY: checked non-NULL; the caller promises `count + 1` writable `size_t`s, and they do
    // not overlap any other argument (checked above).
    let out_offsets = unsafe { core::slice::from_raw_parts_mut(out_offsets_p, offsets.len()) };
    Ok(BatchArgs { cipher, context, values, offsets, out, out_offsets })
}

/// Encrypts a column of `count` values in one call (Arrow-like layout). Value `i` is
/// `values[offsets[i] .. offsets[i+1]]`; `offsets` has `count + 1` non-decreasing entries and
/// `offsets[0]` may be non-zero (a sliced Arrow array); `values` must hold `offsets[count]` bytes.
/// Ciphertexts are written back to back into `out`; `out_offsets` (`count + 1` entries) receives
/// their bounds, starting at 0, and `*out_len` the total. `out_cap` below
/// `cellar_cell_batch_ciphertext_len` is `CELLAR_ERR_BUFFER_TOO_SMALL` with that total in
/// `*out_len`. Every value is bound to the same `context` (empty for the MSSQL modes).
/// RANDOMIZED reserves `count` encryptions of the key's usage limit up front. If any value fails,
/// the whole batch fails, the last-error text names the value's index ("value 7: ..."), and
/// `out[0..total]` and `out_offsets` are zeroed. Equal to `count` single calls, byte for byte in
/// the deterministic modes. No heap allocation per value.
#[no_mangle]
pub extern "C" fn cellar_cell_encrypt_batch(
    cipher: *const cellar_cell_cipher,
    context: *const u8,
    context_len: usize,
    values: *const u8,
    offsets: *const usize,
    count: usize,
    out: *mut u8,
    out_cap: usize,
    out_offsets: *mut usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_cell_encrypt_batch", {
        let a = batch_args(
            cipher, context, context_len, values, offsets, count, out, out_cap, out_offsets, out_len,
            encrypt_sizes,
        )?;
        let n = a.cipher.encrypt_batch_to(a.context, a.values, a.offsets, a.out, a.out_offsets)?;
        write_out(out_len, n);
        Ok(())
    })
}

/// Decrypts a column of `count` cells in one call (layout as in `cellar_cell_encrypt_batch`).
/// `cellar_cell_batch_plaintext_max_len` is always enough. In the CBC modes (DETERMINISTIC,
/// MSSQL) a smaller `out_cap` is tried too, down to the least total those cell lengths can
/// hold, so a caller that knows the exact plaintext total (a column store) may pass exactly
/// that; when the plaintexts do not fit, or `out_cap` is below that least total, the call is
/// `CELLAR_ERR_BUFFER_TOO_SMALL` with `cellar_cell_batch_plaintext_max_len` in `*out_len` (and
/// `out` zeroed). Plaintexts are packed back to back; `out_offsets` gives their bounds
/// and `*out_len` the total used. One cell that fails to authenticate fails the whole batch with
/// its index in the last-error text, and leaves `out[0..bound]` and `out_offsets` zeroed.
#[no_mangle]
pub extern "C" fn cellar_cell_decrypt_batch(
    cipher: *const cellar_cell_cipher,
    context: *const u8,
    context_len: usize,
    values: *const u8,
    offsets: *const usize,
    count: usize,
    out: *mut u8,
    out_cap: usize,
    out_offsets: *mut usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_cell_decrypt_batch", {
        let a = batch_args(
            cipher, context, context_len, values, offsets, count, out, out_cap, out_offsets, out_len,
            decrypt_sizes,
        )?;
        let n = decrypted(a.cipher.decrypt_batch_to(a.context, a.values, a.offsets, a.out, a.out_offsets), out_len)?;
        write_out(out_len, n);
        Ok(())
    })
}

/// `cellar_cell_encrypt_batch` on up to `threads` threads. `threads` is a maximum, not an order:
/// 0 or 1 is exactly `cellar_cell_encrypt_batch`; N > 1 lets the batch be shared with up to
/// N - 1 of Cellar's process-wide workers (see `cellar_page_encrypt_pages`), but only when that
/// pays: batches under 128 values always stay on the calling thread (a tuning value, not a
/// promise), and larger ones too while their measured cost is under twice the measured hand-off
/// latency. The calling thread takes part. Output, status, last-error text (the smallest failing
/// index) and the approval indicator are those of the one-thread call, byte for byte in the
/// deterministic modes; RANDOMIZED cells carry fresh module nonces either way. Allocates a
/// small piece list when it shares the batch.
#[no_mangle]
pub extern "C" fn cellar_cell_encrypt_batch_threads(
    cipher: *const cellar_cell_cipher,
    context: *const u8,
    context_len: usize,
    values: *const u8,
    offsets: *const usize,
    count: usize,
    out: *mut u8,
    out_cap: usize,
    out_offsets: *mut usize,
    out_len: *mut usize,
    threads: u32,
) -> cellar_status {
    ffi_boundary!("cellar_cell_encrypt_batch_threads", {
        let a = batch_args(
            cipher, context, context_len, values, offsets, count, out, out_cap, out_offsets, out_len,
            encrypt_sizes,
        )?;
        let threads = usize::try_from(threads).unwrap_or(usize::MAX);
        let n = a.cipher.encrypt_batch_threads_to(a.context, a.values, a.offsets, a.out, a.out_offsets, threads)?;
        write_out(out_len, n);
        Ok(())
    })
}

/// `cellar_cell_decrypt_batch` on up to `threads` threads (see
/// `cellar_cell_encrypt_batch_threads`). Output, status, last-error text and indicator are
/// those of the one-thread call; when shared, the room in `out` past `*out_len` is zeroed.
#[no_mangle]
pub extern "C" fn cellar_cell_decrypt_batch_threads(
    cipher: *const cellar_cell_cipher,
    context: *const u8,
    context_len: usize,
    values: *const u8,
    offsets: *const usize,
    count: usize,
    out: *mut u8,
    out_cap: usize,
    out_offsets: *mut usize,
    out_len: *mut usize,
    threads: u32,
) -> cellar_status {
    ffi_boundary!("cellar_cell_decrypt_batch_threads", {
        let a = batch_args(
            cipher, context, context_len, values, offsets, count, out, out_cap, out_offsets, out_len,
            |m, o| cell::batch_plaintext_max_len(m, o).map(|t| (t, t)),
        )?;
        let threads = usize::try_from(threads).unwrap_or(usize::MAX);
        let n = a.cipher.decrypt_batch_threads_to(a.context, a.values, a.offsets, a.out, a.out_offsets, threads)?;
        write_out(out_len, n);
        Ok(())
    })
}

/// Computes a **version 1** blind index of `value` bound to `context` (the same bytes as
/// `cellar_blind_index_versioned(key, 1, ...)`), kept so that indexes built before format v2
/// still match; new indexes use `cellar_blind_index_versioned` or a blind-index key with
/// version 2. The index is `HMAC-SHA256(bkey, len(context) (u32 BE) | context | value)`
/// truncated to `out_len` bytes (`CELLAR_BLIND_INDEX_MIN_LEN` to `CELLAR_BLIND_INDEX_MAX_LEN`,
/// else `CELLAR_ERR_INVALID_ARGUMENT`), where `bkey = HKDF-SHA256(ikm = key, salt = 32 zero
/// bytes, info = "cellar blind index v1")`. `key` must be AES-256 (`CELLAR_ERR_INVALID_KEY`).
/// Writes exactly `out_len` bytes to `out`. Reports indicator 0 (HKDF is not an approved
/// key-from-key derivation; SPEC 10).
#[no_mangle]
pub extern "C" fn cellar_blind_index(
    key: *const cellar_key,
    context: *const u8,
    context_len: usize,
    value: *const u8,
    value_len: usize,
    out: *mut u8,
    out_len: usize,
) -> cellar_status {
    ffi_boundary!("cellar_blind_index", {
        let key = handle::<cellar_key>(key, "key")?;
        let ctx = in_slice(context, context_len, "context")?;
        let v = in_slice(value, value_len, "value")?;
        let out = out_ptr(out, "out")?;
        if !(cell::BLIND_INDEX_MIN..=cell::BLIND_INDEX_MAX).contains(&out_len) {
            return Err(Error::InvalidArgument("blind index length must be 4 to 32 bytes").into());
        }
        let mut idx = [0u8; cell::BLIND_INDEX_MAX];
        cell::blind_index(key, ctx, v, &mut idx[..out_len])?;
        // SAFETY: the caller promises `out` holds `out_len` (<= 32) writable bytes.
        unsafe { core::ptr::copy_nonoverlapping(idx.as_ptr(), out, out_len) };
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Per-row contexts and blind-index handles

/// `offset_width` of `cellar_row_contexts`: 32-bit unsigned offsets. Arrow `Binary`/`Utf8`
/// columns' `int32` offsets are non-negative and may be passed as they are.
pub const CELLAR_OFFSETS_32: u32 = 4;
/// `offset_width` of `cellar_row_contexts`: 64-bit unsigned offsets (Arrow
/// `LargeBinary`/`LargeUtf8` `int64` offsets, or `size_t` on 64-bit platforms).
pub const CELLAR_OFFSETS_64: u32 = 8;

/// One context per value for the `_rows` batch calls. Row `i`'s context is
/// `prefix[0..prefix_len] | suffixes[suffix_offsets[i] .. suffix_offsets[i+1]]`: exactly the
/// bytes a single call would take as its `context`, so a cell written by a `_rows` call decrypts
/// with `cellar_cell_decrypt` given that concatenation, and the other way round.
///
/// Two forms: a packed column of whole contexts (`prefix_len = 0`, `suffixes` + offsets, for
/// example an Arrow binary column), or a shared prefix such as `"tenant=7/users/email/"` plus a
/// per-row suffix such as the row key. `suffix_offsets` points at `count + 1` non-decreasing
/// unsigned integers of `offset_width` bytes each (`CELLAR_OFFSETS_32` or `CELLAR_OFFSETS_64`;
/// another width is `CELLAR_ERR_INVALID_ARGUMENT`); the first may be non-zero (a sliced Arrow
/// array) and `suffixes` must hold `suffix_offsets[count]` bytes (NULL only when that is 0).
/// Each row's whole context must be under 2^32 bytes. The struct and the memory it points at
/// are only read, and only during the call.
#[repr(C)]
pub struct cellar_row_contexts {
    /// Bytes every row's context starts with (NULL only when `prefix_len` is 0).
    pub prefix: *const u8,
    /// Length of `prefix` in bytes.
    pub prefix_len: usize,
    /// The per-row suffix bytes, back to back.
    pub suffixes: *const u8,
    /// `count + 1` offsets into `suffixes`, each `offset_width` bytes wide.
    pub suffix_offsets: *const core::ffi::c_void,
    /// `CELLAR_OFFSETS_32` (4) or `CELLAR_OFFSETS_64` (8).
    pub offset_width: u32,
}

/// Reads a `cellar_row_contexts` for `count` rows.
fn row_contexts<'a>(p: *const cellar_row_contexts, count: usize) -> FfiResult<cell::RowContexts<'a>> {
    let p = non_null(p, "contexts")?;
    // SAFETY: checked non-NULL; the caller promises it points to a readable struct.
    let rc = unsafe { &*p };
    let prefix = in_slice(rc.prefix, rc.prefix_len, "contexts.prefix")?;
    let offs = non_null(rc.suffix_offsets, "contexts.suffix_offsets")?;
    let n = count.checked_add(1).filter(|&n| n <= isize::MAX as usize / 8).ok_or(Error::InvalidArgument("count is too large"))?;
    let offsets = match rc.offset_width {
        CELLAR_OFFSETS_32 => {
            let o = offs.cast::<u32>();
            if !o.is_aligned() {
                return Err(Error::InvalidArgument("contexts.suffix_offsets is not aligned for its width").into());
            }
            // SAFETY: aligned, non-NULL; the caller promises `count + 1` readable entries.
            cell::RowOffsets::U32(unsafe { core::slice::from_raw_parts(o, n) })
        }
        CELLAR_OFFSETS_64 => {
            let o = offs.cast::<u64>();
            if !o.is_aligned() {
                return Err(Error::InvalidArgument("contexts.suffix_offsets is not aligned for its width").into());
            }
            // SAFETY: as above.
            cell::RowOffsets::U64(unsafe { core::slice::from_raw_parts(o, n) })
        }
        _ => return Err(Error::InvalidArgument("contexts.offset_width must be 4 or 8").into()),
    };
    let last = match offsets {
        cell::RowOffsets::U32(o) => o[count] as u64,
        cell::RowOffsets::U64(o) => o[count],
    };
    let last = usize::try_from(last).map_err(|_| Error::InvalidArgument("a context offset exceeds the address space"))?;
    let suffixes = in_slice(rc.suffixes, last, "contexts.suffixes")?;
    Ok(cell::RowContexts::new(prefix, suffixes, offsets)?)
}

/// Arguments of the `_rows` batch calls, checked once (as `batch_args`, with per-row contexts).
#[allow(clippy::too_many_arguments)]
fn rows_args<'a>(
    cipher: *const cellar_cell_cipher,
    contexts: *const cellar_row_contexts,
    values: *const u8,
    offsets: *const usize,
    count: usize,
    out: *mut u8,
    out_cap: usize,
    out_offsets: *mut usize,
    out_len: *mut usize,
    needed: impl FnOnce(CellMode, &[usize]) -> Option<(usize, usize)>,
) -> FfiResult<(&'a CellCipher, cell::RowContexts<'a>, &'a [u8], &'a [usize], &'a mut [u8], &'a mut [usize])> {
    let cipher = handle::<cellar_cell_cipher>(cipher, "cipher")?;
    let rows = row_contexts(contexts, count)?;
    let offsets = offsets_slice(offsets, count, "offsets")?;
    let out_offsets_p = out_ptr(out_offsets, "out_offsets")?;
    out_ptr(out_len, "out_len")?;
    let (total, min) = needed(cipher.mode(), offsets).ok_or(Error::InvalidArgument("offsets decrease or the batch is too large"))?;
    let values_len = offsets[count];
    let values = in_slice(values, values_len, "values")?;
    let off_bytes = core::mem::size_of_val(offsets);
    let (pre, suf) = (rows.prefix(), rows.suffix_bytes());
    no_overlap(out, out_cap, values.as_ptr(), values_len, "out overlaps values")?;
    no_overlap(out, out_cap, pre.as_ptr(), pre.len(), "out overlaps contexts.prefix")?;
    no_overlap(out, out_cap, suf.as_ptr(), suf.len(), "out overlaps contexts.suffixes")?;
    no_overlap(out, out_cap, rows.offsets_ptr(), rows.offsets_bytes(), "out overlaps contexts.suffix_offsets")?;
    no_overlap(out, out_cap, out_offsets_p.cast(), off_bytes, "out overlaps out_offsets")?;
    no_overlap(out, out_cap, offsets.as_ptr().cast(), off_bytes, "out overlaps offsets")?;
    no_overlap(out_offsets_p.cast(), off_bytes, offsets.as_ptr().cast(), off_bytes, "out_offsets overlaps offsets")?;
    no_overlap(out_offsets_p.cast(), off_bytes, values.as_ptr(), values_len, "out_offsets overlaps values")?;
    no_overlap(out_offsets_p.cast(), off_bytes, pre.as_ptr(), pre.len(), "out_offsets overlaps contexts.prefix")?;
    no_overlap(out_offsets_p.cast(), off_bytes, suf.as_ptr(), suf.len(), "out_offsets overlaps contexts.suffixes")?;
    no_overlap(out_offsets_p.cast(), off_bytes, rows.offsets_ptr(), rows.offsets_bytes(), "out_offsets overlaps contexts.suffix_offsets")?;
    let out = batch_out(out, out_cap, out_len, total, min)?;
    // SAFETY: checked non-NULL; the caller promises `count + 1` writable `size_t`s, and they do
    // not overlap any other argument (checked above).
    let out_offsets = unsafe { core::slice::from_raw_parts_mut(out_offsets_p, offsets.len()) };
    Ok((cipher, rows, values, offsets, out, out_offsets))
}

/// `cellar_cell_encrypt_batch` with one context per value: value `i` is bound to row `i` of
/// `contexts` (see `cellar_row_contexts`), exactly as `cellar_cell_encrypt` with that context
/// would bind it. Values, `offsets` (`size_t`, `count + 1` entries), `out`, `out_offsets`,
/// `*out_len`, sizes (`cellar_cell_batch_ciphertext_len`), usage reservation and failure rules
/// are those of `cellar_cell_encrypt_batch`. The MSSQL modes take no context: any non-empty
/// row is `CELLAR_ERR_INVALID_ARGUMENT`. Contexts of up to `CELLAR_CELL_CONTEXT_INLINE_MAX`
/// bytes (prefix + suffix) cost no heap allocation. Thread-safe.
#[no_mangle]
pub extern "C" fn cellar_cell_encrypt_batch_rows(
    cipher: *const cellar_cell_cipher,
    contexts: *const cellar_row_contexts,
    values: *const u8,
    offsets: *const usize,
    count: usize,
    out: *mut u8,
    out_cap: usize,
    out_offsets: *mut usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_cell_encrypt_batch_rows", {
        let (c, rows, v, o, out, oo) = rows_args(
            cipher, contexts, values, offsets, count, out, out_cap, out_offsets, out_len,
            encrypt_sizes,
        )?;
        let n = c.encrypt_batch_rows_to(&rows, v, o, out, oo)?;
        write_out(out_len, n);
        Ok(())
    })
}

/// `cellar_cell_decrypt_batch` with one context per cell (see
/// `cellar_cell_encrypt_batch_rows`). Sizes as `cellar_cell_decrypt_batch`; one cell that
/// fails to authenticate (including one given another row's context) fails the whole batch
/// with its index in the last-error text and leaves `out[0..bound]` and `out_offsets` zeroed.
#[no_mangle]
pub extern "C" fn cellar_cell_decrypt_batch_rows(
    cipher: *const cellar_cell_cipher,
    contexts: *const cellar_row_contexts,
    values: *const u8,
    offsets: *const usize,
    count: usize,
    out: *mut u8,
    out_cap: usize,
    out_offsets: *mut usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_cell_decrypt_batch_rows", {
        let (c, rows, v, o, out, oo) = rows_args(
            cipher, contexts, values, offsets, count, out, out_cap, out_offsets, out_len,
            decrypt_sizes,
        )?;
        let n = decrypted(c.decrypt_batch_rows_to(&rows, v, o, out, oo), out_len)?;
        write_out(out_len, n);
        Ok(())
    })
}

/// An opaque blind-index key: the HMAC key derived once from an AES-256 key for one blind-index
/// version, so that computing an index costs one HMAC and no derivation.
///
/// Immutable and safe to share between threads. Independent of the key handle it was made from
/// (which may be freed first). Create with `cellar_blind_index_key_new`, free with
/// `cellar_blind_index_key_free`. No call consumes it.
pub struct cellar_blind_index_key {
    _private: [u8; 0],
}

impl Castable for cellar_blind_index_key {
    type Inner = cell::BlindIndexKey;
    const MAGIC: u64 = 0x626c_6e64_6b65_7931; // "blndkey1"
    const NAME: &'static str = "cellar_blind_index_key";
}

/// Blind index version 1: `bkey = HKDF-SHA256(ikm = key, salt = 32 zero bytes, info = "cellar
/// blind index v1")`; what `cellar_blind_index` computes. For indexes built before format v2;
/// reports indicator 0.
pub const CELLAR_BLIND_INDEX_V1: u32 = 1;
/// Blind index version 2 (format v2, SPEC 10): `bkey = KDF(key, "cellar blind index v2", "",
/// 32)`, the SP 800-108 counter-mode KDF with HMAC-SHA-256. For new indexes; reports 1.
pub const CELLAR_BLIND_INDEX_V2: u32 = 2;

/// Derives a blind-index key from an AES-256 `key` whose purpose is data encryption or none
/// (`CELLAR_ERR_INVALID_KEY` otherwise) for
/// blind-index `version` (`CELLAR_BLIND_INDEX_V2` for new indexes, `CELLAR_BLIND_INDEX_V1` for
/// indexes built before format v2; another value is `CELLAR_ERR_INVALID_ARGUMENT`). A blind
/// index carries no version: the caller keeps using the version an existing index was built
/// with. On success `*out_bkey` receives a new handle.
#[no_mangle]
pub extern "C" fn cellar_blind_index_key_new(
    key: *const cellar_key,
    version: u32,
    out_bkey: *mut *mut cellar_blind_index_key,
) -> cellar_status {
    ffi_boundary!("cellar_blind_index_key_new", {
        let out = out_ptr(out_bkey, "out_bkey")?;
        let key = handle::<cellar_key>(key, "key")?;
        if version != CELLAR_BLIND_INDEX_V1 && version != CELLAR_BLIND_INDEX_V2 {
            return Err(Error::InvalidArgument("unknown blind index version").into());
        }
        let b = cell::BlindIndexKey::with_version(key, version)?;
        write_out(out, new_handle::<cellar_blind_index_key>(b));
        Ok(())
    })
}

/// Frees a blind-index key. NULL does nothing. The handle must not be used afterwards.
#[no_mangle]
pub extern "C" fn cellar_blind_index_key_free(bkey: *mut cellar_blind_index_key) {
    boundary_value((), || free_handle::<cellar_blind_index_key>(bkey));
}

/// Computes one blind index with a blind-index key: as `cellar_blind_index` (`out_len` is the
/// index length, 4 to 32 bytes; exactly `out_len` bytes are written) without deriving the key.
/// No heap allocation. Thread-safe.
#[no_mangle]
pub extern "C" fn cellar_blind_index_compute(
    bkey: *const cellar_blind_index_key,
    context: *const u8,
    context_len: usize,
    value: *const u8,
    value_len: usize,
    out: *mut u8,
    out_len: usize,
) -> cellar_status {
    ffi_boundary!("cellar_blind_index_compute", {
        let b = handle::<cellar_blind_index_key>(bkey, "bkey")?;
        let ctx = in_slice(context, context_len, "context")?;
        let v = in_slice(value, value_len, "value")?;
        let out = out_ptr(out, "out")?;
        if !(cell::BLIND_INDEX_MIN..=cell::BLIND_INDEX_MAX).contains(&out_len) {
            return Err(Error::InvalidArgument("blind index length must be 4 to 32 bytes").into());
        }
        let mut idx = [0u8; cell::BLIND_INDEX_MAX];
        b.compute(ctx, v, &mut idx[..out_len])?;
        // SAFETY: the caller promises `out` holds `out_len` (<= 32) writable bytes.
        unsafe { core::ptr::copy_nonoverlapping(idx.as_ptr(), out, out_len) };
        Ok(())
    })
}

/// Output of the blind-index batch calls: `count * index_len` bytes in `out[0..out_cap]`.
fn index_out<'a>(count: usize, index_len: usize, out: *mut u8, out_cap: usize, out_len: *mut usize) -> FfiResult<&'a mut [u8]> {
    if !(cell::BLIND_INDEX_MIN..=cell::BLIND_INDEX_MAX).contains(&index_len) {
        return Err(Error::InvalidArgument("blind index length must be 4 to 32 bytes").into());
    }
    let total = count.checked_mul(index_len).ok_or(Error::InvalidArgument("count is too large"))?;
    out_buffer(out, out_cap, out_len, total)
}

/// Blind indexes of `count` values, all bound to `context`, in one call. Value `i` is
/// `values[offsets[i] .. offsets[i+1]]` (`offsets`: `count + 1` non-decreasing `size_t`s,
/// the first may be non-zero); its `index_len`-byte index (4 to 32) is written to
/// `out[i * index_len ..]`, and `*out_len` receives `count * index_len`. `out_cap` below that is
/// `CELLAR_ERR_BUFFER_TOO_SMALL` with the size in `*out_len`. Equal to `count` calls of
/// `cellar_blind_index_compute`. No heap allocation. Thread-safe.
#[no_mangle]
pub extern "C" fn cellar_blind_index_batch(
    bkey: *const cellar_blind_index_key,
    context: *const u8,
    context_len: usize,
    values: *const u8,
    offsets: *const usize,
    count: usize,
    index_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_blind_index_batch", {
        let b = handle::<cellar_blind_index_key>(bkey, "bkey")?;
        let ctx = in_slice(context, context_len, "context")?;
        let offsets = offsets_slice(offsets, count, "offsets")?;
        let v = in_slice(values, offsets[count], "values")?;
        let buf = index_out(count, index_len, out, out_cap, out_len)?;
        no_overlap(buf.as_ptr(), buf.len(), v.as_ptr(), v.len(), "out overlaps values")?;
        no_overlap(buf.as_ptr(), buf.len(), ctx.as_ptr(), ctx.len(), "out overlaps context")?;
        no_overlap(buf.as_ptr(), buf.len(), offsets.as_ptr().cast(), core::mem::size_of_val(offsets), "out overlaps offsets")?;
        let n = b.compute_batch(ctx, v, offsets, index_len, buf)?;
        write_out(out_len, n);
        Ok(())
    })
}

/// `cellar_blind_index_batch` with one context per value (see `cellar_row_contexts`): value
/// `i`'s index is bound to row `i`'s context, equal to `cellar_blind_index_compute` with that
/// context. No heap allocation. Thread-safe.
#[no_mangle]
pub extern "C" fn cellar_blind_index_batch_rows(
    bkey: *const cellar_blind_index_key,
    contexts: *const cellar_row_contexts,
    values: *const u8,
    offsets: *const usize,
    count: usize,
    index_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_blind_index_batch_rows", {
        let b = handle::<cellar_blind_index_key>(bkey, "bkey")?;
        let rows = row_contexts(contexts, count)?;
        let offsets = offsets_slice(offsets, count, "offsets")?;
        let v = in_slice(values, offsets[count], "values")?;
        let buf = index_out(count, index_len, out, out_cap, out_len)?;
        no_overlap(buf.as_ptr(), buf.len(), v.as_ptr(), v.len(), "out overlaps values")?;
        no_overlap(buf.as_ptr(), buf.len(), offsets.as_ptr().cast(), core::mem::size_of_val(offsets), "out overlaps offsets")?;
        let (pre, suf) = (rows.prefix(), rows.suffix_bytes());
        no_overlap(buf.as_ptr(), buf.len(), pre.as_ptr(), pre.len(), "out overlaps contexts.prefix")?;
        no_overlap(buf.as_ptr(), buf.len(), suf.as_ptr(), suf.len(), "out overlaps contexts.suffixes")?;
        no_overlap(buf.as_ptr(), buf.len(), rows.offsets_ptr(), rows.offsets_bytes(), "out overlaps contexts.suffix_offsets")?;
        let n = b.compute_batch_rows(&rows, v, offsets, index_len, buf)?;
        write_out(out_len, n);
        Ok(())
    })
}

/// Computes a blind index of `value` bound to `context` for equality lookups without
/// deterministic ciphertexts, of the caller's `version` (a blind index carries no version byte,
/// so the caller keeps it with the index): `CELLAR_BLIND_INDEX_V2` for new indexes,
/// `CELLAR_BLIND_INDEX_V1` to match an index built before format v2; any other value is
/// `CELLAR_ERR_INVALID_ARGUMENT`. The index is `HMAC-SHA256(bkey, len(context) (u32 BE) |
/// context | value)` truncated to `out_len` bytes (`CELLAR_BLIND_INDEX_MIN_LEN` to
/// `CELLAR_BLIND_INDEX_MAX_LEN`), with `bkey = KDF(key, "cellar blind index v2", "", 32)`
/// (SP 800-108 counter mode, HMAC-SHA-256) for version 2 and as `cellar_blind_index` for 1.
/// `key` must be AES-256 (`CELLAR_ERR_INVALID_KEY`). Writes exactly `out_len` bytes to `out`.
/// Version 2 reports indicator 1, version 1 reports 0. Derives the blind-index key per call
/// (version 2 allocates inside the module); for many values use a `cellar_blind_index_key`.
#[no_mangle]
pub extern "C" fn cellar_blind_index_versioned(
    key: *const cellar_key,
    version: u32,
    context: *const u8,
    context_len: usize,
    value: *const u8,
    value_len: usize,
    out: *mut u8,
    out_len: usize,
) -> cellar_status {
    ffi_boundary!("cellar_blind_index_versioned", {
        let key = handle::<cellar_key>(key, "key")?;
        let ctx = in_slice(context, context_len, "context")?;
        let v = in_slice(value, value_len, "value")?;
        let out = out_ptr(out, "out")?;
        if !(cell::BLIND_INDEX_MIN..=cell::BLIND_INDEX_MAX).contains(&out_len) {
            return Err(Error::InvalidArgument("blind index length must be 4 to 32 bytes").into());
        }
        let mut idx = [0u8; cell::BLIND_INDEX_MAX];
        cell::blind_index_versioned(key, version, ctx, v, &mut idx[..out_len])?;
        // SAFETY: the caller promises `out` holds `out_len` (<= 32) writable bytes.
        unsafe { core::ptr::copy_nonoverlapping(idx.as_ptr(), out, out_len) };
        Ok(())
    })
}
