//! Every key operation reports "approved" from the module's own service indicator (FIPS build),
//! one test per operation; calls that do no cryptography leave the indicator unchanged; failures
//! report "unknown". Each test runs on its own thread, so the per-thread indicator starts at
//! Unknown.

use cellar::keys::{self, Key, KeyType};
use cellar::{last_operation_approved, Approval, Error};

const PW: &[u8] = b"correct horse battery staple";
const IT: u32 = keys::MIN_PASSWORD_ITERATIONS;

fn approved() {
    assert_eq!(last_operation_approved(), Approval::Approved);
}

/// Puts the indicator in the "unknown" state with a failing operation.
fn make_unknown() {
    assert!(Key::import(KeyType::Aes256, &[0u8; 31]).is_err());
    assert_eq!(last_operation_approved(), Approval::Unknown);
}

#[test]
fn fips_build() {
    assert!(cellar::fips::is_fips());
    assert!(cellar::fips::self_tests_passed());
}

#[test]
fn generate_aes256_is_approved() {
    make_unknown();
    Key::generate(KeyType::Aes256).unwrap();
    approved();
}

#[test]
fn generate_xts_is_approved() {
    make_unknown();
    Key::generate(KeyType::Aes256Xts).unwrap();
    approved();
}

fn not_approved() {
    assert_eq!(last_operation_approved(), Approval::NotApproved);
}

/// Raw import succeeds with indicator 0 (SPEC 10): the module cannot vouch for bytes it did not
/// generate, and an all-zero key imports. Using the key afterwards is approved as usual.
#[test]
fn raw_import_is_not_an_approved_scheme() {
    make_unknown();
    let k = Key::import(KeyType::Aes256, &[0u8; 32]).unwrap();
    not_approved();
    make_unknown();
    let mut m = [1u8; 64];
    m[40] = 2;
    Key::import(KeyType::Aes256Xts, &m).unwrap();
    not_approved();
    // With a purpose too.
    make_unknown();
    Key::import_with_purpose(KeyType::Aes256, &[3u8; 32], cellar::KeyPurpose::DataEncryption).unwrap();
    not_approved();
    // The imported key wraps under the module's approved AES-KWP as usual.
    make_unknown();
    keys::wrap(&k, &Key::generate(KeyType::Aes256).unwrap(), 1).unwrap();
    approved();
}

#[test]
fn derive_is_approved() {
    let parent = Key::generate(KeyType::Aes256).unwrap();
    for t in [KeyType::Aes256, KeyType::Aes256Xts] {
        make_unknown();
        parent.derive(t, b"orders.customer_email").unwrap();
        approved();
    }
}

#[test]
fn wrap_is_approved() {
    let kek = Key::generate(KeyType::Aes256).unwrap();
    let dek = Key::generate(KeyType::Aes256Xts).unwrap();
    make_unknown();
    keys::wrap(&kek, &dek, 1).unwrap();
    approved();
}

#[test]
fn unwrap_is_approved() {
    let kek = Key::generate(KeyType::Aes256).unwrap();
    let dek = Key::generate(KeyType::Aes256).unwrap();
    let blob = keys::wrap(&kek, &dek, 1).unwrap();
    make_unknown();
    keys::unwrap(&kek, &blob).unwrap();
    approved();
}

#[test]
fn export_with_password_is_approved() {
    let key = Key::generate(KeyType::Aes256).unwrap();
    make_unknown();
    keys::export_with_password(&key, 3, PW, IT).unwrap();
    approved();
}

#[test]
fn import_with_password_is_approved() {
    let key = Key::generate(KeyType::Aes256Xts).unwrap();
    let file = keys::export_with_password(&key, 3, PW, IT).unwrap();
    make_unknown();
    keys::import_with_password(&file, PW).unwrap();
    approved();
}

/// The minimum password length (14 bytes) is also the module's PBKDF2 approval floor.
#[test]
fn minimum_password_is_approved() {
    let key = Key::generate(KeyType::Aes256).unwrap();
    let pw = b"exactly14bytes";
    assert_eq!(pw.len(), 14);
    make_unknown();
    let file = keys::export_with_password(&key, 0, pw, IT).unwrap();
    approved();
    make_unknown();
    keys::import_with_password(&file, pw).unwrap();
    approved();
}

/// Id, type and usage queries are not cryptography: the indicator is unchanged, whatever it was.
/// Raw export is an operation of its own that reports 0 (SPEC 10: plaintext key output is not
/// an approved service).
#[test]
fn non_crypto_calls_leave_the_indicator_unchanged() {
    let key = Key::generate(KeyType::Aes256).unwrap();
    approved();
    let _ = (key.id(), key.key_type(), key.usage_count(), key.usage_limit());
    key.set_usage_limit(10).unwrap();
    let _ = keys::wrapped_len(KeyType::Aes256);
    approved();

    make_unknown();
    let _ = (key.id(), key.key_type(), key.usage_count());
    assert_eq!(last_operation_approved(), Approval::Unknown);

    let raw = key.dangerous_export_raw();
    assert_eq!(raw.len(), 32);
    not_approved();
    let _ = (key.id(), key.key_type());
    not_approved();
}

#[test]
fn failures_report_unknown() {
    let kek = Key::generate(KeyType::Aes256).unwrap();
    let xts = Key::generate(KeyType::Aes256Xts).unwrap();
    let blob = keys::wrap(&kek, &kek, 1).unwrap();
    let other = Key::generate(KeyType::Aes256).unwrap();

    approved();
    assert!(matches!(keys::unwrap(&other, &blob), Err(Error::AuthenticationFailed(_))));
    assert_eq!(last_operation_approved(), Approval::Unknown);

    kek.derive(KeyType::Aes256, b"x").unwrap();
    approved();
    assert!(matches!(keys::wrap(&xts, &kek, 1), Err(Error::InvalidKey(_))));
    assert_eq!(last_operation_approved(), Approval::Unknown);

    kek.derive(KeyType::Aes256, b"x").unwrap();
    assert!(kek.derive(KeyType::Aes256, b"").is_err());
    assert_eq!(last_operation_approved(), Approval::Unknown);

    kek.derive(KeyType::Aes256, b"x").unwrap();
    assert!(keys::export_with_password(&kek, 1, b"short", IT).is_err());
    assert_eq!(last_operation_approved(), Approval::Unknown);
}

/// The indicator is per thread: another thread's operations do not change this one's.
#[test]
fn indicator_is_per_thread() {
    make_unknown();
    std::thread::spawn(|| {
        Key::generate(KeyType::Aes256).unwrap();
        approved();
    })
    .join()
    .unwrap();
    assert_eq!(last_operation_approved(), Approval::Unknown);
}
