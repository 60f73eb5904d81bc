//! The key-from-key KDF of format v2 (SPEC 10): NIST SP 800-108r1 KDF in counter mode with
//! HMAC-SHA-256 as the PRF, computed by the module's `KBKDF_ctr_hmac` (an approved service in
//! the AWS-LC FIPS 3 and 4 lines, counted by the module's indicator for keys of 14 bytes or more).
//!
//! ```text
//! KDF(K, label, context, L) = KBKDF_ctr_hmac(SHA-256, K, fixed = label | 0x00 | context | [8L]_32)
//!                           = K(1) | K(2) | ...  truncated to L bytes,
//! K(i) = HMAC-SHA256(K, [i]_32 | fixed)
//! ```
//!
//! `[x]_32` is a 32-bit big-endian integer and `8L` the output length in bits: the fixed input
//! layout of SP 800-108r1 section 4 (label, a zero separator byte, context, output length), with
//! the 32-bit counter before it, as the module's function places it.
//!
//! Users (all per key, per cipher or per epoch, never per value): derive v2
//! (`"cellar derive v2"`), GCM page subkeys of trailer format 0x02 (`"cellar page v2"`),
//! DETERMINISTIC cell subkeys of header 0x03 (`"cellar cell det v2"`), blind index v2
//! (`"cellar blind index v2"`).

use crate::error::{Error, Result};
use crate::fips::service;
use crate::sys;

/// Fixed inputs up to this many bytes are assembled on the stack (labels and contexts of the
/// page, cell and blind-index derivations are far shorter; only a long derive label allocates).
const FIXED_INLINE_MAX: usize = 256;

/// Longest output, in bytes, the KDF gives (`8L` must fit its 32-bit field; Cellar asks for at
/// most 64).
pub(crate) const KDF_MAX_OUT: usize = (u32::MAX / 8) as usize;

/// `KDF(key, label, context, out.len())` into `out` (SPEC 10), one counted module service call.
/// `key` must be non-empty (the module counts the call as approved from 14 bytes; every Cellar
/// key has 32 or 64) and `out` 1 to [`KDF_MAX_OUT`] bytes. On failure `out` is zeroed.
pub(crate) fn kdf(key: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) -> Result<()> {
    if out.is_empty() || out.len() > KDF_MAX_OUT || key.is_empty() {
        out.fill(0);
        return Err(Error::Internal("KDF arguments out of range"));
    }
    let bits = ((out.len() as u64) * 8) as u32;
    let n = label.len() + 1 + context.len() + 4;
    let fill = |buf: &mut [u8]| {
        let (l, rest) = buf.split_at_mut(label.len());
        l.copy_from_slice(label);
        rest[0] = 0;
        let (c, len) = rest[1..].split_at_mut(context.len());
        c.copy_from_slice(context);
        len.copy_from_slice(&bits.to_be_bytes());
    };
    if n <= FIXED_INLINE_MAX {
        let mut buf = [0u8; FIXED_INLINE_MAX];
        fill(&mut buf[..n]);
        kbkdf(key, &buf[..n], out)
    } else {
        let mut buf = vec![0u8; n];
        fill(&mut buf);
        kbkdf(key, &buf, out)
    }
}

/// The module's `KBKDF_ctr_hmac(SHA-256, key, fixed)` into `out`, as one service call (so the
/// indicator sees whether the module counted it). Exposed to the unit tests for the CAVP
/// vectors, whose fixed input is opaque.
pub(crate) fn kbkdf(key: &[u8], fixed: &[u8], out: &mut [u8]) -> Result<()> {
    service(|| {
        if sys::kbkdf_ctr_hmac_sha256(out, key, fixed) {
            Ok(())
        } else {
            Err(Error::Internal("SP 800-108 KDF failed"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fips::{last_operation_approved, operation, Approval};

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.trim()).expect("hex")
    }

    /// `(L bits, KI, FixedInputData, KO)` of every record in the committed CAVP file.
    fn cavp() -> Vec<(usize, Vec<u8>, Vec<u8>, Vec<u8>)> {
        let text = include_str!("../tests/data/KBKDF_CTR_HMAC_SHA256_R32.txt");
        let header: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with('[')).collect();
        assert_eq!(header, ["[PRF=HMAC_SHA256]", "[CTRLOCATION=BEFORE_FIXED]", "[RLEN=32_BITS]"]);
        let mut out = Vec::new();
        let (mut l, mut ki, mut fixed) = (0usize, Vec::new(), Vec::new());
        for line in text.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("L = ") {
                l = v.parse().unwrap();
            } else if let Some(v) = line.strip_prefix("KI = ") {
                ki = h(v);
            } else if let Some(v) = line.strip_prefix("FixedInputData = ") {
                fixed = h(v);
            } else if let Some(v) = line.strip_prefix("KO = ") {
                out.push((l, ki.clone(), fixed.clone(), h(v)));
            }
        }
        out
    }

    /// NIST CAVP SP 800-108 counter mode, HMAC-SHA256, counter before the fixed input, 32-bit
    /// counter: all 40 vectors through the module, each counted as approved.
    #[test]
    fn kbkdf_cavp_counter_hmac_sha256() {
        let v = cavp();
        assert_eq!(v.len(), 40);
        for (i, (l, ki, fixed, ko)) in v.iter().enumerate() {
            assert_eq!(ko.len() * 8, *l, "COUNT={i}");
            let mut out = vec![0u8; ko.len()];
            operation(|| kbkdf(ki, fixed, &mut out)).unwrap();
            assert_eq!(&out, ko, "CAVP KDFCTR HMAC_SHA256 RLEN=32 COUNT={i}");
            assert_eq!(last_operation_approved(), Approval::Approved, "COUNT={i}");
        }
    }

    /// `kdf` is `KBKDF` over `label | 0x00 | context | [8L]_32`, checked against an independent
    /// HMAC-SHA256 computation (two blocks, truncated), also past the inline buffer.
    #[test]
    fn kdf_fixed_input_layout() {
        let key = [0x42u8; 32];
        for (label, context, len) in [
            (&b"cellar derive v2"[..], &b"\x01orders"[..], 32usize),
            (b"cellar page v2", &[7u8; 20][..], 32),
            (b"cellar blind index v2", b"", 32),
            (b"l", &[9u8; 300][..], 40),
            (b"", b"", 64),
        ] {
            let mut got = vec![0u8; len];
            operation(|| kdf(&key, label, context, &mut got)).unwrap();
            assert_eq!(last_operation_approved(), Approval::Approved);
            let mut fixed = label.to_vec();
            fixed.push(0);
            fixed.extend_from_slice(context);
            fixed.extend_from_slice(&((len * 8) as u32).to_be_bytes());
            let mut want = Vec::new();
            for i in 1u32..=2 {
                let t = crate::keys::hmac_sha256(&key, &[&i.to_be_bytes(), &fixed]);
                want.extend_from_slice(t.as_ref());
            }
            want.truncate(len);
            assert_eq!(got, want, "label {label:?}");
        }
    }

    #[test]
    fn kdf_refuses_empty_key_and_output() {
        let mut out = [1u8; 32];
        assert!(operation(|| kdf(&[], b"l", b"c", &mut out)).is_err());
        assert_eq!(out, [0u8; 32]);
        assert_eq!(last_operation_approved(), Approval::Unknown);
        assert!(kdf(&[1u8; 32], b"l", b"c", &mut []).is_err());
    }

    /// The module counts a key-derivation key shorter than 112 bits as not approved: the
    /// indicator mechanism can say no for this service too.
    #[test]
    fn short_kdf_key_is_not_counted() {
        let mut out = [0u8; 32];
        operation(|| kdf(&[1u8; 13], b"l", b"c", &mut out)).unwrap();
        assert_eq!(last_operation_approved(), Approval::NotApproved);
        operation(|| kdf(&[1u8; 14], b"l", b"c", &mut out)).unwrap();
        assert_eq!(last_operation_approved(), Approval::Approved);
    }
}
