//! The built-in PKCS#11 key provider against a real SoftHSM2 token (issue 14).
//!
//! The run makes its own token directory and `SOFTHSM2_CONF` under cargo's per-target temporary
//! folder and initialises one token per test with `softhsm2-util` before the module is loaded;
//! nothing depends on an earlier run. Skipped (with a message) only when the SoftHSM2 module is
//! not installed; `make test-pkcs11` installs it and sets `CELLAR_REQUIRE_SOFTHSM=1`, which turns
//! the skip into a failure.

use cellar::keyring::Keyring;
use aws_lc_rs::key_wrap::{self, KeyWrapPadded};
use cellar::provider::pkcs11::{
    KeySelector, KwpFlavor, Pkcs11Config, Pkcs11Key, Pkcs11Ref, TokenSelector, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD,
};
use cellar::{keys, last_operation_approved, Approval, Key, KeyPurpose, KeyType};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType as CkKeyType, ObjectClass};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::types::AuthPin;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &[u8] = b"4711-cellar";
const SO_PIN: &str = "so-pin-0815";
const TOKENS: &[&str] = &[
    "round", "rotate", "byok", "lock", "pin", "refuse", "threads", "export", "gone", "identical", "retire",
    "attrs", "destroyed", "mixed", "strict", "purpose", "filter",
];

struct Hsm {
    dir: PathBuf,
    conf: PathBuf,
}

fn hsm() -> Option<&'static Hsm> {
    static H: OnceLock<Option<Hsm>> = OnceLock::new();
    H.get_or_init(|| {
        if !std::path::Path::new(MODULE).exists() {
            assert!(std::env::var_os("CELLAR_REQUIRE_SOFTHSM").is_none(), "SoftHSM2 is required but {MODULE} is missing");
            eprintln!("SoftHSM2 not installed ({MODULE}); PKCS#11 tests skipped");
            return None;
        }
        // A child process (the re-import test) reuses its parent's token directory.
        if let Some(conf) = std::env::var_os("CELLAR_TEST_SOFTHSM2_CONF") {
            let conf = PathBuf::from(conf);
            std::env::set_var("SOFTHSM2_CONF", &conf);
            side_ctx();
            return Some(Hsm { dir: conf.parent().unwrap().to_path_buf(), conf });
        }
        // Token directories of earlier runs whose process is gone are removed (a run cannot
        // delete its own at exit: the tests share it until the process ends).
        if let Ok(entries) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("pkcs11-") {
                    if !std::path::Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pkcs11-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", dir.join("tokens").display()),
        )
        .unwrap();
        std::env::set_var("SOFTHSM2_CONF", &conf);
        // A child process that needs only some tokens, in a directory of its own (so no other
        // process writes token files it reads: SoftHSM2's file store is not safe against that).
        let only = std::env::var("CELLAR_TEST_ONLY_TOKENS").ok();
        let tokens: Vec<&str> = match &only {
            Some(list) => list.split(',').collect(),
            None => TOKENS.to_vec(),
        };
        for t in tokens {
            let st = Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", t, "--so-pin", SO_PIN, "--pin"])
                .arg(std::str::from_utf8(PIN).unwrap())
                .env("SOFTHSM2_CONF", &conf)
                .output()
                .expect("softhsm2-util runs");
            assert!(st.status.success(), "softhsm2-util --init-token failed: {}", String::from_utf8_lossy(&st.stderr));
        }
        side_ctx();
        Some(Hsm { dir, conf })
    })
    .as_ref()
}

macro_rules! need_hsm {
    () => {
        match hsm() {
            Some(h) => h,
            None => return,
        }
    };
}

fn cfg(token: &str) -> Pkcs11Config<'_> {
    // SoftHSM 2.6's CKM_AES_KEY_WRAP_PAD zero-pads its input: allowed explicitly here (the
    // default refusal is tested below).
    Pkcs11Config { module: MODULE, token: TokenSelector::Label(token), pin: PIN, max_sessions: 0, allow_zero_padded_kwp: true }
}

fn code<T: std::fmt::Debug>(r: cellar::Result<T>) -> (i32, String) {
    let e = r.expect_err("expected an error");
    (e.code(), e.to_string())
}

/// The test's own view of the module through `cryptoki` (to make keys Cellar is then asked to
/// adopt, and to look at what Cellar made). Loaded after Cellar's connection in each test, so
/// the module is initialised once; `CryptokiAlreadyInitialized` is fine.
fn side_session(token: &str) -> Session {
    let (ctx, slots) = side_ctx();
    let slot = slots.iter().find(|(l, _)| l == token).expect("token present").1;
    let s = ctx.open_rw_session(slot).unwrap();
    // Already logged in through Cellar's connection in this process is fine.
    let _ = s.login(UserType::User, Some(&AuthPin::from(String::from_utf8(PIN.to_vec()).unwrap())));
    s
}

static SIDE: OnceLock<(Pkcs11, Vec<(String, cryptoki::slot::Slot)>)> = OnceLock::new();

/// The test's module context and slot list, made once inside the fixture, before the tests
/// race: SoftHSM2 rebuilds its slot list on C_GetSlotList, which other threads' calls must not
/// see half-done (Cellar serialises its own slot look-ups).
fn side_ctx() -> (&'static Pkcs11, &'static [(String, cryptoki::slot::Slot)]) {
    let (c, s) = SIDE.get_or_init(|| {
        let c = Pkcs11::new(MODULE).unwrap();
        let _ = c.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
        let slots = c
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .filter_map(|s| Some((c.get_token_info(s).ok()?.label().trim_end().to_owned(), s)))
            .collect();
        (c, slots)
    });
    (c, s)
}

fn side_key(token: &str, label: &str, extractable: bool, unwrap: bool, value: Option<&[u8]>) {
    let s = side_session(token);
    let mut t = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
        Attribute::Sensitive(!extractable),
        Attribute::Extractable(extractable),
        Attribute::Wrap(true),
        Attribute::Unwrap(unwrap),
    ];
    match value {
        Some(v) => {
            t.push(Attribute::Class(ObjectClass::SECRET_KEY));
            t.push(Attribute::KeyType(CkKeyType::AES));
            t.push(Attribute::Value(v.to_vec()));
            s.create_object(&t).unwrap();
        }
        None => {
            t.push(Attribute::ValueLen(32.into()));
            s.generate_key(&Mechanism::AesKeyGen, &t).unwrap();
        }
    }
}

fn count_keys(token: &str, label: &str) -> usize {
    let s = side_session(token);
    s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(label.as_bytes().to_vec())]).unwrap().len()
}

fn dk() -> Key {
    Key::generate(KeyType::Aes256).unwrap()
}

#[test]
fn round_trip_inside_the_token_reports_indicator_zero() {
    need_hsm!();
    let kr = Keyring::new_pkcs11(&cfg("round"), "tenant-a").unwrap();
    assert_eq!(last_operation_approved(), Approval::NotApproved);
    assert!(kr.is_pkcs11_version(1).unwrap());
    let info = kr.version_info(1).unwrap();
    assert!(info.provider && info.active && !info.locked);
    let d = dk();
    let blob = kr.wrap(&d).unwrap();
    assert_eq!(last_operation_approved(), Approval::NotApproved);
    // SPEC 3 format: W, 0x01, the version's key id, then KWP of the 53-byte record (64 bytes).
    assert_eq!(blob.len(), keys::wrapped_len(KeyType::Aes256));
    assert_eq!(&blob[..2], &[0x57, 0x01]);
    assert_eq!(keys::wrapped_kek_id(&blob).unwrap(), info.key_id);
    let (back, v) = kr.unwrap(&blob).unwrap();
    assert_eq!(last_operation_approved(), Approval::NotApproved);
    assert_eq!((back.id(), v), (d.id(), 1));
    assert_eq!(back.dangerous_export_raw()[..], d.dangerous_export_raw()[..]);
    // XTS data keys too.
    let x = Key::generate(KeyType::Aes256Xts).unwrap();
    let bx = kr.wrap(&x).unwrap();
    assert_eq!(kr.unwrap(&bx).unwrap().0.id(), x.id());
    // Tampering anywhere in the wrapped part is one authentication error.
    for i in [20, blob.len() - 1] {
        let mut t = blob.clone();
        t[i] ^= 1;
        assert_eq!(code(kr.unwrap(&t)).0, 4, "byte {i}");
        assert_eq!(last_operation_approved(), Approval::Unknown);
    }
    // SoftHSM2 offers only the older code; the probe chose it after the known-answer test.
    let r = kr.pkcs11_reference(1).unwrap().unwrap();
    assert_eq!(r.token_label, "round");
    assert_eq!(r.key_label, "tenant-a");
    assert_eq!(r.module, MODULE);
    assert_eq!(r.key_id.len(), 16);
    let k = Pkcs11Key::adopt(&cfg("round"), KeySelector::Label("tenant-a")).unwrap();
    assert_eq!(k.token().mechanism(), CKM_AES_KEY_WRAP_PAD);
    assert_ne!(k.token().mechanism(), CKM_AES_KEY_WRAP_KWP);
    assert_eq!(cellar::keyring::KeyProvider::key_id(&*k), info.key_id);
}

#[test]
fn token_key_is_sensitive_and_never_extractable() {
    need_hsm!();
    let k = Pkcs11Key::generate(&cfg("attrs"), "audited").unwrap();
    let a = k.attributes().unwrap();
    assert!(a.sensitive && !a.extractable && a.never_extractable && a.always_sensitive, "{a:?}");
    // From the outside: the value cannot be read, and the key cannot encrypt.
    let s = side_session("attrs");
    let h = s.find_objects(&[Attribute::Label(b"audited".to_vec())]).unwrap();
    assert_eq!(h.len(), 1);
    use cryptoki::object::AttributeType as T;
    let attrs = s
        .get_attributes(
            h[0],
            &[T::Value, T::Token, T::Private, T::Wrap, T::Unwrap, T::Encrypt, T::Decrypt, T::Sign, T::Verify, T::Derive],
        )
        .unwrap();
    assert!(!attrs.iter().any(|a| matches!(a, Attribute::Value(_))), "CKA_VALUE must be unreadable");
    for want in [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
    ] {
        assert!(attrs.contains(&want), "{want:?} not in {attrs:?}");
    }
}

fn kwp(kek: &[u8], plain: &[u8]) -> Vec<u8> {
    let k = key_wrap::AesKek::new(&key_wrap::AES_256, kek).unwrap();
    let mut out = vec![0u8; plain.len() + 16];
    let n = k.wrap_with_padding(plain, &mut out).unwrap().len();
    out.truncate(n);
    out
}

/// The SPEC 3 inner record: v1 `type | version | id | material` for a key without a purpose,
/// v2 `type | purpose | version | id | material` (blob format 0x02) for one with a purpose.
fn record(d: &Key, version: u32) -> Vec<u8> {
    let mut r = vec![d.key_type() as u8];
    if d.purpose() != KeyPurpose::None {
        r.push(d.purpose() as u8);
    }
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&d.id());
    r.extend_from_slice(&d.dangerous_export_raw());
    r
}

/// Every data key Cellar wraps: both key types, without a purpose (record v1, 53 / 85 bytes,
/// blob format 0x01) and with each purpose the type allows (record v2, 54 / 86 bytes, format 0x02).
fn every_kind_of_data_key() -> Vec<Key> {
    let mut v = Vec::new();
    for kt in [KeyType::Aes256, KeyType::Aes256Xts] {
        v.push(Key::generate(kt).unwrap());
        for p in [KeyPurpose::DataEncryption, KeyPurpose::KeyWrapping, KeyPurpose::KeyDerivation] {
            if let Ok(k) = Key::generate_with_purpose(kt, p) {
                v.push(k);
            }
        }
    }
    assert_eq!(v.len(), 7);
    v
}

/// What the token's KWP part is for a record, and what a conformant token's would be. SoftHSM
/// 2.6's CKM_AES_KEY_WRAP_PAD zero-pads its input to a multiple of 8 bytes and then runs RFC
/// 5649, so its blob is `KWP(kek, record || zeros)`. A conformant CKM_AES_KEY_WRAP_KWP token
/// produces `KWP(kek, record)`, byte for byte Cellar's own blob; that flavour (`Exact`) is
/// asserted when the token is one.
#[test]
fn blob_is_byte_identical_to_cellars_own_kwp() {
    need_hsm!();
    // A test-only, extractable token key whose material the test knows.
    let material = [0x5au8; 32].map(|b| b ^ 0x11);
    side_key("identical", "known", true, true, Some(&material));
    let hsm = Pkcs11Key::dangerous_adopt_unchecked(&cfg("identical"), "known").unwrap();
    let flavor = hsm.token().flavor();
    // The token this CI uses is SoftHSM 2.6: say which branch below runs, so a change of token
    // (or a SoftHSM that stops zero-padding) is noticed rather than silently taking the other.
    assert_eq!(flavor, KwpFlavor::ZeroPadded, "SoftHSM 2.6 zero-pads; update this test if the token changed");
    let kr = Keyring::with_provider(hsm).unwrap();
    let sw = Key::import_with_purpose(KeyType::Aes256, &material, KeyPurpose::KeyWrapping).unwrap();
    for d in every_kind_of_data_key() {
        let what = format!("{:?} {:?}", d.key_type(), d.purpose());
        let from_token = kr.wrap(&d).unwrap();
        let from_cellar = keys::wrap(&sw, &d, 1).unwrap();
        // Same magic and format (0x01 without a purpose, 0x02 with one); the kek id names the
        // version (the token key's fingerprint).
        assert_eq!(from_token[..2], from_cellar[..2], "{what}");
        assert_eq!(from_token[1], if d.purpose() == KeyPurpose::None { 0x01 } else { 0x02 }, "{what}");
        assert_eq!(from_token.len(), from_cellar.len(), "{what}");
        let rec = record(&d, 1);
        assert_eq!(kwp(&material, &rec), from_cellar[18..], "{what}: Cellar's blob is KWP of the SPEC 3 record");
        let mut padded = rec.clone();
        padded.resize(rec.len().div_ceil(8) * 8, 0);
        match flavor {
            // A conformant token: the AES-KWP part is identical byte for byte.
            KwpFlavor::Exact => assert_eq!(from_token[18..], from_cellar[18..], "{what}"),
            // SoftHSM 2.6: byte for byte KWP of exactly (record || zero padding), and so not
            // Cellar's own (the records are 53, 54, 85 or 86 bytes, never a multiple of 8).
            KwpFlavor::ZeroPadded => {
                assert_eq!(from_token[18..], kwp(&material, &padded)[..], "{what}");
                assert_ne!(from_token[18..], from_cellar[18..], "{what}");
            }
        }
        // The token's blob opens in Cellar's own software path too once the padding is seen:
        // unwrapping the token's KWP part in software gives (record || zeros).
        let k = key_wrap::AesKek::new(&key_wrap::AES_256, &material).unwrap();
        let mut out = vec![0u8; from_token.len()];
        assert_eq!(k.unwrap_with_padding(&from_token[18..], &mut out).unwrap(), &padded[..], "{what}");
        // Cellar's own blob, its header naming the token version, opens inside the token: the
        // token unwraps exact RFC 5649 whatever its wrap flavour.
        let mut moved = from_token[..18].to_vec();
        moved.extend_from_slice(&from_cellar[18..]);
        let (back, v) = kr.unwrap(&moved).unwrap();
        assert_eq!((back.id(), v, back.purpose()), (d.id(), 1, d.purpose()), "{what}");
        // And the token's own blob opens inside the token (the zero padding is stripped by the
        // record's own header).
        let (back, v) = kr.unwrap(&from_token).unwrap();
        assert_eq!((back.id(), v, back.purpose()), (d.id(), 1, d.purpose()), "{what}");
        assert_eq!(back.dangerous_export_raw()[..], d.dangerous_export_raw()[..], "{what}");
    }
}

/// SoftHSM 2.6's CKM_AES_KEY_WRAP_PAD, measured directly (the test's own session, the same
/// extractable known key): for every input length 1 to 96 its wrap is RFC 5649 of the input
/// zero-padded to a multiple of 8, which for lengths that are a multiple of 8 is exact RFC 5649
/// (equal to AWS-LC's KWP of the input itself), and its unwrap of exact RFC 5649 returns the
/// input at its true length. So the one difference from a conformant token is the padding of
/// inputs that are not a multiple of 8.
#[test]
fn softhsm_kwp_is_rfc5649_of_the_zero_padded_input() {
    need_hsm!();
    let material: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(29).wrapping_add(3));
    // Cellar's connection first (the module is initialised once; the side session joins it).
    let _k = Pkcs11Key::generate(&cfg("identical"), "anchor").unwrap();
    side_key("identical", "kwp-known", true, true, Some(&material));
    let s = side_session("identical");
    let kek = s.find_objects(&[Attribute::Label(b"kwp-known".to_vec())]).unwrap()[0];
    let mut exact_lengths = 0;
    for len in 1usize..=96 {
        let input: Vec<u8> = (0..len).map(|i| (i as u8) ^ 0xa5).collect();
        let obj = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(CkKeyType::GENERIC_SECRET),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Value(input.clone()),
            ])
            .unwrap();
        let w = s.wrap_key(&Mechanism::AesKeyWrapPad, kek, obj).unwrap();
        s.destroy_object(obj).unwrap();
        let mut padded = input.clone();
        padded.resize(len.div_ceil(8) * 8, 0);
        assert_eq!(w, kwp(&material, &padded), "len {len}: KWP of the zero-padded input");
        if len % 8 == 0 {
            // Zero padding is a no-op: exact RFC 5649, byte for byte.
            assert_eq!(w, kwp(&material, &input), "len {len}: exact RFC 5649");
            exact_lengths += 1;
        } else {
            assert_ne!(w, kwp(&material, &input), "len {len}");
        }
        // The token unwraps exact RFC 5649 to the input at its true length.
        let back = s
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                kek,
                &kwp(&material, &input),
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(CkKeyType::GENERIC_SECRET),
                    Attribute::Token(false),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                ],
            )
            .unwrap();
        let v = s.get_attributes(back, &[cryptoki::object::AttributeType::Value]).unwrap();
        s.destroy_object(back).unwrap();
        assert!(matches!(&v[..], [Attribute::Value(b)] if *b == input), "len {len}: unwrap of exact RFC 5649");
    }
    assert_eq!(exact_lengths, 12);
}

/// Data keys with a purpose have a 54- or 86-byte v2 record (blob format 0x02); on a token that
/// zero-pads they come back as 56 or 88 bytes like the 53- and 85-byte v1 records, and the
/// record's own header says which. Every kind wraps and unwraps, rewraps across versions, and
/// keeps its purpose.
#[test]
fn keys_of_every_purpose_and_size_round_trip_through_the_token() {
    need_hsm!();
    let kr = Keyring::new_pkcs11(&cfg("purpose"), "purpose-1").unwrap();
    let keys_ = every_kind_of_data_key();
    let mut blobs = Vec::new();
    for d in &keys_ {
        let what = format!("{:?} {:?}", d.key_type(), d.purpose());
        let b = kr.wrap(d).unwrap();
        assert_eq!(last_operation_approved(), Approval::NotApproved);
        assert_eq!(b.len(), keys::wrapped_len(d.key_type()), "{what}");
        assert_eq!(b[1], if d.purpose() == KeyPurpose::None { 0x01 } else { 0x02 }, "{what}");
        let (back, v) = kr.unwrap(&b).unwrap();
        assert_eq!((back.id(), v, back.purpose(), back.key_type()), (d.id(), 1, d.purpose(), d.key_type()), "{what}");
        assert_eq!(back.dangerous_export_raw()[..], d.dangerous_export_raw()[..], "{what}");
        // Relabelling the format byte (v2 read as v1 or the reverse) fails authentication.
        let mut t = b.clone();
        t[1] ^= 0x03;
        assert_eq!(code(kr.unwrap(&t)).0, 4, "{what}");
        blobs.push(b);
    }
    // To a second token key and to a software version, and back.
    kr.rotate_pkcs11(&cfg("purpose"), "purpose-2").unwrap();
    let on2: Vec<Vec<u8>> = blobs.iter().map(|b| kr.rewrap(b).unwrap()).collect();
    kr.rotate(None).unwrap();
    for (d, b) in keys_.iter().zip(&on2) {
        assert_eq!(kr.unwrap(b).unwrap().1, 2);
        let sw = kr.rewrap(b).unwrap();
        let (back, v) = kr.unwrap(&sw).unwrap();
        assert_eq!((back.id(), back.purpose(), v), (d.id(), d.purpose(), 3));
        // And back into the token.
        let (back, v) = kr.unwrap(b).unwrap();
        assert_eq!((back.id(), back.purpose(), v), (d.id(), d.purpose(), 2));
    }
    let kr2 = Keyring::new_pkcs11(&cfg("purpose"), "purpose-3").unwrap();
    for d in &keys_ {
        let b = kr2.wrap(d).unwrap();
        assert_eq!(kr2.unwrap(&b).unwrap().0.purpose(), d.purpose());
    }
}

#[test]
fn zero_padding_token_is_refused_by_default() {
    need_hsm!();
    // SoftHSM 2.6.1 (Debian) fails the exact known-answer test at 53 bytes.
    let strict = Pkcs11Config { allow_zero_padded_kwp: false, ..cfg("strict") };
    let (c, m) = code(Keyring::new_pkcs11(&strict, "k"));
    assert_eq!(c, 11, "{m}");
    assert!(m.contains("zero-pads"), "{m}");
    let k = Pkcs11Key::generate(&cfg("strict"), "k").unwrap();
    assert_eq!(k.token().flavor(), KwpFlavor::ZeroPadded);
    // A process connection made with the allowance does not leak to a strict caller.
    assert_eq!(code(Keyring::new_pkcs11(&strict, "k2")).0, 11);
}

#[test]
fn blobs_move_between_software_and_token_versions_by_rewrap() {
    need_hsm!();
    let kr = Keyring::new(None).unwrap();
    let d = dk();
    let soft = kr.wrap(&d).unwrap();
    assert_eq!(kr.rotate_pkcs11(&cfg("mixed"), "v2").unwrap(), 2);
    let hsm = kr.rewrap(&soft).unwrap();
    assert_eq!(last_operation_approved(), Approval::NotApproved);
    assert_eq!(kr.unwrap(&hsm).unwrap().1, 2);
    assert_eq!(kr.unwrap(&hsm).unwrap().0.id(), d.id());
    kr.rotate(None).unwrap();
    let back = kr.rewrap(&hsm).unwrap();
    assert_eq!(kr.unwrap(&back).unwrap().1, 3);
    assert!(!kr.is_pkcs11_version(1).unwrap() && kr.is_pkcs11_version(2).unwrap() && !kr.is_pkcs11_version(3).unwrap());
}

#[test]
fn rotation_to_a_new_token_key() {
    need_hsm!();
    let kr = Keyring::new_pkcs11(&cfg("rotate"), "gen-1").unwrap();
    let d1 = dk();
    let b1 = kr.wrap(&d1).unwrap();
    assert_eq!(kr.rotate_pkcs11(&cfg("rotate"), "gen-2").unwrap(), 2);
    assert_eq!(kr.active_version().unwrap(), 2);
    let b2 = kr.wrap(&d1).unwrap();
    assert_ne!(keys::wrapped_kek_id(&b1).unwrap(), keys::wrapped_kek_id(&b2).unwrap());
    assert_eq!(kr.unwrap(&b1).unwrap().1, 1);
    assert_eq!(kr.unwrap(&b2).unwrap().1, 2);
    let rw = kr.rewrap(&b1).unwrap();
    assert_eq!(kr.unwrap(&rw).unwrap().1, 2);
    assert_eq!(kr.unwrap(&rw).unwrap().0.id(), d1.id());
    // Retire without destroying: the token object stays, the version's blobs are gone.
    kr.retire(1).unwrap();
    assert_eq!(code(kr.unwrap(&b1)).0, 7);
    assert_eq!(count_keys("rotate", "gen-1"), 1);
}

#[test]
fn retire_can_destroy_the_token_object() {
    need_hsm!();
    let kr = Keyring::new_pkcs11(&cfg("retire"), "doomed").unwrap();
    let b1 = kr.wrap(&dk()).unwrap();
    kr.rotate_pkcs11(&cfg("retire"), "next").unwrap();
    assert_eq!(count_keys("retire", "doomed"), 1);
    // The active version (2) cannot be retired, destroying or not.
    assert_eq!(code(kr.retire_destroying(2)).0, 2);
    kr.retire_destroying(1).unwrap();
    assert_eq!(count_keys("retire", "doomed"), 0);
    assert!(kr.version_info(1).unwrap().retired);
    assert_eq!(code(kr.unwrap(&b1)).0, 7);
    assert_eq!(count_keys("retire", "next"), 1);
}

#[test]
fn bring_your_own_token_key_by_label_or_id() {
    need_hsm!();
    side_key("byok", "customer-key", false, true, None);
    let kr = Keyring::adopt_pkcs11(&cfg("byok"), KeySelector::Label("customer-key")).unwrap();
    let d = dk();
    let b = kr.wrap(&d).unwrap();
    // The same key found by CKA_ID has the same fingerprint, so it unwraps the same blobs.
    let kr2 = Keyring::adopt_pkcs11(&cfg("byok"), KeySelector::Id(b"customer-key")).unwrap();
    assert_eq!(kr2.version_info(1).unwrap().key_id, kr.version_info(1).unwrap().key_id);
    assert_eq!(kr2.unwrap(&b).unwrap().0.id(), d.id());
    // Rotating onto another customer key.
    side_key("byok", "customer-key-2", false, true, None);
    assert_eq!(kr.rotate_pkcs11_adopt(&cfg("byok"), KeySelector::Label("customer-key-2")).unwrap(), 2);
    assert_eq!(kr.unwrap(&kr.rewrap(&b).unwrap()).unwrap().1, 2);
    // Adopting the same key twice into one keyring is refused (same id).
    assert_eq!(code(kr.rotate_pkcs11_adopt(&cfg("byok"), KeySelector::Label("customer-key"))).0, 5);
    // No such key.
    let (c, m) = code(Keyring::adopt_pkcs11(&cfg("byok"), KeySelector::Label("nobody")));
    assert_eq!(c, 7, "{m}");
    // Ambiguous label.
    side_key("byok", "twin", false, true, None);
    side_key("byok", "twin", false, true, None);
    assert_eq!(code(Keyring::adopt_pkcs11(&cfg("byok"), KeySelector::Label("twin"))).0, 2);
}

#[test]
fn extractable_or_non_unwrapping_keys_are_refused_with_the_reason() {
    need_hsm!();
    side_key("refuse", "leaky", true, true, None);
    let (c, m) = code(Keyring::adopt_pkcs11(&cfg("refuse"), KeySelector::Label("leaky")));
    assert_eq!(c, 5);
    assert!(m.contains("CKA_EXTRACTABLE"), "{m}");
    side_key("refuse", "wrap-only", false, false, None);
    let (c, m) = code(Keyring::adopt_pkcs11(&cfg("refuse"), KeySelector::Label("wrap-only")));
    assert_eq!(c, 5);
    assert!(m.contains("CKA_UNWRAP"), "{m}");
}

/// A session of the test's own, opened on `token` *without* logging in: its state shows whether
/// the process is logged in to the token (login state is per token and per application, so a
/// new session inherits Cellar's login). (SoftHSM 2.6 does not report the token's session
/// count, so that cannot be checked here.)
fn login_state_seen_from_outside(token: &str) -> SessionState {
    let (ctx, slots) = side_ctx();
    let slot = slots.iter().find(|(l, _)| l == token).expect("token present").1;
    let s = ctx.open_rw_session(slot).unwrap();
    let state = s.get_session_info().unwrap().session_state();
    drop(s);
    state
}

#[test]
fn lock_logs_out_and_unlock_needs_the_right_pin() {
    need_hsm!();
    // Nobody in this process is logged in to the token yet.
    assert_eq!(login_state_seen_from_outside("lock"), SessionState::RwPublic);
    let kr = Keyring::new_pkcs11(&cfg("lock"), "locked-key").unwrap();
    let d = dk();
    let b = kr.wrap(&d).unwrap();
    // While unlocked, a fresh session sees Cellar's login (so the check below can fail).
    assert_eq!(login_state_seen_from_outside("lock"), SessionState::RwUser, "Cellar's connection is logged in");
    kr.lock().unwrap();
    assert!(kr.is_locked().unwrap());
    assert_eq!(code(kr.wrap(&d)).0, 8);
    assert_eq!(code(kr.unwrap(&b)).0, 8);
    assert_eq!(code(kr.rewrap(&b)).0, 8);
    // Cellar's lock logged out: the test never logged in or out on this token itself, and a
    // fresh session now sees the public state.
    assert_eq!(login_state_seen_from_outside("lock"), SessionState::RwPublic, "the token is still logged in after lock");
    // Wrong PIN: a clear error naming the CKR_ value, and still locked.
    let (c, m) = code(kr.unlock_pkcs11(b"wrong-pin-123", None, 0, true));
    assert_eq!(c, 4, "{m}");
    assert!(m.contains("CKR_PIN_INCORRECT"), "{m}");
    assert!(kr.is_locked().unwrap());
    assert_eq!(code(kr.wrap(&d)).0, 8);
    assert_eq!(login_state_seen_from_outside("lock"), SessionState::RwPublic, "a wrong PIN logged in");
    // The right PIN.
    assert_eq!(kr.unlock_pkcs11(PIN, None, 0, true).unwrap(), 1);
    assert!(!kr.is_locked().unwrap());
    assert_eq!(login_state_seen_from_outside("lock"), SessionState::RwUser);
    assert_eq!(kr.unwrap(&b).unwrap().0.id(), d.id());
    // Nothing left to reconnect: 0.
    assert_eq!(kr.unlock_pkcs11(PIN, None, 0, true).unwrap(), 0);
}

#[test]
fn wrong_pin_missing_module_missing_token() {
    need_hsm!();
    let bad = Pkcs11Config { pin: b"not-the-pin", ..cfg("pin") };
    let (c, m) = code(Keyring::new_pkcs11(&bad, "k"));
    assert_eq!(c, 4, "{m}");
    assert!(m.contains("CKR_PIN_INCORRECT"), "{m}");
    assert_eq!(last_operation_approved(), Approval::Unknown);
    let nomod = Pkcs11Config { module: "/nonexistent/libpkcs11.so", ..cfg("pin") };
    let (c, m) = code(Keyring::new_pkcs11(&nomod, "k"));
    assert_eq!(c, 11, "{m}");
    assert!(m.contains("module"), "{m}");
    let notpkcs11 = Pkcs11Config { module: "/etc/hostname", ..cfg("pin") };
    assert_eq!(code(Keyring::new_pkcs11(&notpkcs11, "k")).0, 11);
    let (c, m) = code(Keyring::new_pkcs11(&cfg("no-such-token"), "k"));
    assert_eq!(c, 11, "{m}");
    assert!(m.contains("no token"), "{m}");
    let noslot = Pkcs11Config { token: TokenSelector::Slot(987_654_321), ..cfg("pin") };
    assert_eq!(code(Keyring::new_pkcs11(&noslot, "k")).0, 11);
    // Bad arguments.
    assert_eq!(code(Keyring::new_pkcs11(&Pkcs11Config { pin: b"", ..cfg("pin") }, "k")).0, 2);
    assert_eq!(code(Keyring::new_pkcs11(&Pkcs11Config { max_sessions: 65, ..cfg("pin") }, "k")).0, 2);
    assert_eq!(code(Keyring::new_pkcs11(&cfg("pin"), "")).0, 2);
    // And the right PIN works on the same token.
    Keyring::new_pkcs11(&cfg("pin"), "k").unwrap();
}

#[test]
fn destroyed_key_fails_with_the_ckr_value_and_cannot_reconnect() {
    need_hsm!();
    let kr = Keyring::new_pkcs11(&cfg("destroyed"), "victim").unwrap();
    let b = kr.wrap(&dk()).unwrap();
    // Someone destroys the key object behind Cellar's back.
    {
        let s = side_session("destroyed");
        let h = s.find_objects(&[Attribute::Label(b"victim".to_vec())]).unwrap();
        s.destroy_object(h[0]).unwrap();
    }
    let (c, m) = code(kr.wrap(&dk()));
    assert_eq!(c, 11, "{m}");
    assert!(m.contains("CKR_"), "{m}");
    let (c, m) = code(kr.unwrap(&b));
    assert_eq!(c, 11, "{m}");
    assert!(m.contains("CKR_"), "{m}");
    kr.lock().unwrap();
    let (c, m) = code(kr.unlock_pkcs11(PIN, None, 0, true));
    assert_eq!(c, 7, "{m}");
    assert!(kr.is_locked().unwrap());
}

#[test]
fn eight_threads_share_a_bounded_session_pool() {
    need_hsm!();
    let c = Pkcs11Config { max_sessions: 3, ..cfg("threads") };
    let k = Pkcs11Key::generate(&c, "busy").unwrap();
    let token = Arc::clone(k.token());
    let kr = Arc::new(Keyring::with_provider(k).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let kr = Arc::clone(&kr);
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let d = dk();
                    let b = kr.wrap(&d).unwrap();
                    assert_eq!(last_operation_approved(), Approval::NotApproved);
                    let (back, v) = kr.unwrap(&b).unwrap();
                    assert_eq!((back.id(), v), (d.id(), 1));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let open = token.open_sessions();
    assert!(open >= 1 && open <= 3, "{open} sessions open");
}

/// Export in this process, import and reconnect in a new process (this test binary again,
/// running `child_reimports_and_reconnects`), which also shows the reference carries no
/// material: the child has only the export, the PIN and the token.
#[test]
fn export_is_reimported_in_a_new_process_that_reconnects() {
    let h = need_hsm!();
    let kr = Keyring::new_pkcs11(&cfg("export"), "exported").unwrap();
    kr.rotate(None).unwrap();
    kr.rotate_pkcs11(&cfg("export"), "exported-3").unwrap();
    let d = dk();
    let blob = kr.wrap(&d).unwrap();
    let root = Key::generate(KeyType::Aes256).unwrap();
    let export = kr.export_with_root_key(&root).unwrap();
    // The reference is in the export (the version ids and token names), never a key value.
    let r = kr.pkcs11_reference(1).unwrap().unwrap();
    assert_eq!(Pkcs11Ref::decode(&r.encode()), Some(r.clone()));
    let dir = h.dir.join("export");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("state"), &export).unwrap();
    std::fs::write(dir.join("root"), &*root.dangerous_export_raw()).unwrap();
    std::fs::write(dir.join("blob"), &blob).unwrap();
    std::fs::write(dir.join("dk"), d.id()).unwrap();
    // The child gets a copy of the "export" token alone, in a directory of its own: the other
    // tests in this process keep writing their tokens' files, which a second process reading the
    // same directory may catch half-written (SoftHSM2's file store is not made for that).
    let child_conf = copy_token_for_child(h, "export", &dir.join("hsm"));
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_reimports_and_reconnects", "--ignored", "--nocapture"])
        .env("CELLAR_TEST_SOFTHSM2_CONF", &child_conf)
        .env("CELLAR_TEST_EXPORT_DIR", &dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("child: reconnected 2 token versions"), "{text}");
}

/// The directory of the token labelled `label` under the run's token directory (SoftHSM2 names
/// it by a UUID; its token.object holds the label).
fn token_dir_of(h: &Hsm, label: &str) -> PathBuf {
    let mut found = None;
    for e in std::fs::read_dir(h.dir.join("tokens")).unwrap() {
        let p = e.unwrap().path();
        let tok = std::fs::read(p.join("token.object")).unwrap_or_default();
        let padded = format!("{label:<32}");
        if tok.windows(32).any(|w| w == padded.as_bytes()) {
            assert!(found.is_none(), "two token directories for {label}");
            found = Some(p);
        }
    }
    found.unwrap_or_else(|| panic!("token directory of {label} not found"))
}

/// Copies one token's directory into `into/tokens` and writes a SoftHSM2 configuration for it;
/// returns the configuration's path.
fn copy_token_for_child(h: &Hsm, label: &str, into: &std::path::Path) -> PathBuf {
    let src = token_dir_of(h, label);
    let dst = into.join("tokens").join(src.file_name().unwrap());
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
    let conf = into.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", into.join("tokens").display()),
    )
    .unwrap();
    conf
}

#[test]
#[ignore = "run by export_is_reimported_in_a_new_process_that_reconnects in a child process"]
fn child_reimports_and_reconnects() {
    let Some(dir) = std::env::var_os("CELLAR_TEST_EXPORT_DIR").map(PathBuf::from) else { return };
    need_hsm!();
    let root = Key::import(KeyType::Aes256, &std::fs::read(dir.join("root")).unwrap()).unwrap();
    let kr = Keyring::import_with_root_key(&std::fs::read(dir.join("state")).unwrap(), &root).unwrap();
    let blob = std::fs::read(dir.join("blob")).unwrap();
    // Imported locked: the token versions are references only.
    assert!(kr.is_locked().unwrap());
    assert!(kr.is_pkcs11_version(1).unwrap() && !kr.is_pkcs11_version(2).unwrap() && kr.is_pkcs11_version(3).unwrap());
    assert_eq!(code(kr.unwrap(&blob)).0, 8);
    assert_eq!(code(kr.unlock_pkcs11(b"wrong-pin-123", None, 0, true)).0, 4);
    let n = kr.unlock_pkcs11(PIN, None, 2, true).unwrap();
    println!("child: reconnected {n} token versions");
    let (d, v) = kr.unwrap(&blob).unwrap();
    assert_eq!(v, 3);
    assert_eq!(&d.id()[..], &std::fs::read(dir.join("dk")).unwrap()[..]);
    // Version 2 was local and is in the export: it works too.
    assert_eq!(kr.unwrap(&kr.wrap(&d).unwrap()).unwrap().1, 3);
}

/// The token disappears mid-run (its files are removed, as when an HSM is unplugged or its
/// partition deleted): calls fail with PROVIDER_FAILED naming the CKR_ value, not a crash.
#[test]
fn token_that_disappears_fails_with_provider_failed() {
    need_hsm!();
    // In a child process with its own token directory: SoftHSM2 rescans the directory, and the
    // other tests' tokens must not move under them.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_token_disappears", "--ignored", "--nocapture"])
        .env("CELLAR_TEST_CHILD_GONE", "1")
        .env("CELLAR_TEST_ONLY_TOKENS", "gone")
        .env_remove("CELLAR_TEST_SOFTHSM2_CONF")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("child: token gone, calls failed with"), "{text}");
}

#[test]
#[ignore = "run by token_that_disappears_fails_with_provider_failed in a child process"]
fn child_token_disappears() {
    if std::env::var_os("CELLAR_TEST_CHILD_GONE").is_none() {
        return;
    }
    let h = need_hsm!();
    let kr = Keyring::new_pkcs11(&cfg("gone"), "vanishing").unwrap();
    let b = kr.wrap(&dk()).unwrap();
    // Find the token's directory (SoftHSM2 names it by a UUID) and remove it.
    let mut removed = false;
    for e in std::fs::read_dir(h.dir.join("tokens")).unwrap() {
        let p = e.unwrap().path();
        let tok = std::fs::read(p.join("token.object")).unwrap_or_default();
        if tok.windows(4).any(|w| w == b"gone") {
            std::fs::remove_dir_all(&p).unwrap();
            removed = true;
        }
    }
    assert!(removed, "token directory not found");
    let (c, m) = code(kr.wrap(&dk()));
    assert_eq!(c, 11, "{m}");
    assert!(m.contains("CKR_"), "{m}");
    let (c, m2) = code(kr.unwrap(&b));
    assert_eq!(c, 11, "{m2}");
    assert!(m2.contains("CKR_"), "{m2}");
    println!("child: token gone, calls failed with: {m} / {m2}");
    let _ = std::fs::remove_dir_all(&h.dir);
}

// ---------------------------------------------------------------------------------------------
// The probe's other branches, through a test-only PKCS#11 *filter* module
// (ffi-tests/pkcs11/p11_filter.c): loaded in place of SoftHSM2, it forwards every call to the real
// libsofthsm2.so through its function list, and only changes which key-wrap mechanisms the token
// appears to offer (hidden, or offered under another code). Tokens, keys and the cryptography are
// SoftHSM2's own; it is not a mock.

/// Builds the filter module once (with the system C compiler) and returns its path.
fn filter_module() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ffi-tests/pkcs11");
        // In this run's token directory, removed with it by a later run.
        let out = hsm().unwrap().dir.join("libp11filter.so");
        let st = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(&dir)
            .arg(dir.join("p11_filter.c"))
            .arg("-o")
            .arg(&out)
            .arg("-ldl")
            .output()
            .expect("a C compiler (cc) builds the PKCS#11 filter module");
        assert!(st.status.success(), "building p11_filter.c failed: {}", String::from_utf8_lossy(&st.stderr));
        out
    })
    .clone()
}

/// Runs `child_filtered_probe` in a new process (the filter reads its rules once per process)
/// with the filter's rules; returns its output.
fn run_filtered(case: &str, hide: &str, map: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_filtered_probe", "--ignored", "--nocapture"])
        // A token directory of the child's own with only the "filter" token (see
        // copy_token_for_child for why a child does not share this process's directory).
        .env_remove("CELLAR_TEST_SOFTHSM2_CONF")
        .env("CELLAR_TEST_ONLY_TOKENS", "filter")
        .env("CELLAR_TEST_FILTER_MODULE", filter_module())
        .env("CELLAR_TEST_FILTER_CASE", case)
        .env("CELLAR_P11_FILTER_TARGET", MODULE)
        .env("CELLAR_P11_FILTER_HIDE", hide)
        .env("CELLAR_P11_FILTER_MAP", map)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{case}: {text}");
    assert!(text.contains(&format!("child: filter case {case} ok")), "{text}");
    text
}

/// A token that offers neither CKM_AES_KEY_WRAP_KWP nor CKM_AES_KEY_WRAP_PAD is refused with a
/// clear error; so is one whose only "KWP" is plain RFC 3394 under the KWP code (the known-answer
/// test, not the code, decides).
#[test]
fn token_offering_neither_kwp_mechanism_is_refused() {
    need_hsm!();
    run_filtered("neither", "210a,210b", "");
    run_filtered("impostor-only", "210a", "210b:2109");
}

/// The probe tries CKM_AES_KEY_WRAP_KWP (0x210B) first: offered alone, or beside
/// CKM_AES_KEY_WRAP_PAD, it is chosen; a KWP code that fails the known-answer test is passed
/// over for PAD.
#[test]
fn probe_prefers_kwp_and_checks_it_by_known_answer() {
    need_hsm!();
    run_filtered("kwp-only", "210a", "210b:210a");
    run_filtered("both", "", "210b:210a");
    run_filtered("impostor", "", "210b:2109");
}

#[test]
#[ignore = "run by the filter tests in a child process"]
fn child_filtered_probe() {
    let Some(case) = std::env::var_os("CELLAR_TEST_FILTER_CASE") else { return };
    let case = case.into_string().unwrap();
    need_hsm!();
    let module = std::env::var("CELLAR_TEST_FILTER_MODULE").unwrap();
    let c = Pkcs11Config { module: &module, ..cfg("filter") };
    let strict = Pkcs11Config { allow_zero_padded_kwp: false, ..c };
    let neither = "neither CKM_AES_KEY_WRAP_KWP nor CKM_AES_KEY_WRAP_PAD";
    match case.as_str() {
        "neither" | "impostor-only" => {
            for conf in [c, strict] {
                let (code_, m) = code(Keyring::new_pkcs11(&conf, "never"));
                assert_eq!(code_, 11, "{m}");
                assert!(m.contains(neither), "{m}");
                assert!(m.contains("known-answer test"), "{m}");
            }
            assert_eq!(count_keys("filter", "never"), 0);
        }
        "kwp-only" | "both" | "impostor" => {
            let want = if case == "impostor" { CKM_AES_KEY_WRAP_PAD } else { CKM_AES_KEY_WRAP_KWP };
            let k = Pkcs11Key::generate(&c, &format!("via-{case}")).unwrap();
            assert_eq!(k.token().mechanism(), want, "{case}");
            // SoftHSM underneath: the zero-padded flavour whichever code it is reached by, and
            // refused without the allowance.
            assert_eq!(k.token().flavor(), KwpFlavor::ZeroPadded);
            let kr = Keyring::with_provider(k).unwrap();
            for d in every_kind_of_data_key() {
                let b = kr.wrap(&d).unwrap();
                assert_eq!(last_operation_approved(), Approval::NotApproved);
                let (back, v) = kr.unwrap(&b).unwrap();
                assert_eq!((back.id(), v, back.purpose()), (d.id(), 1, d.purpose()));
            }
            drop(kr);
            let (code_, m) = code(Keyring::new_pkcs11(&strict, "strict"));
            assert_eq!(code_, 11, "{m}");
            assert!(m.contains("zero-pads"), "{m}");
        }
        other => panic!("unknown filter case {other}"),
    }
    println!("child: filter case {case} ok");
    let _ = std::fs::remove_dir_all(&hsm().unwrap().dir);
}
