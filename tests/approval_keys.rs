//! Every key operation reports "approved" from the module's own service indicator.

use cellar::keys::{self, Key, KeyType};
use cellar::{last_operation_approved, Approval};

fn assert_approved() {
    assert_eq!(last_operation_approved(), Approval::Approved);
}

#[test]
fn generate_is_approved() {
    Key::generate(KeyType::Aes256).unwrap();
    assert_approved();
    Key::generate(KeyType::Aes256Xts).unwrap();
    assert_approved();
}

#[test]
fn import_is_approved() {
    Key::import(KeyType::Aes256, &[7u8; 32]).unwrap();
    assert_approved();
}

#[test]
fn derive_is_approved() {
    let k = Key::generate(KeyType::Aes256).unwrap();
    k.derive(KeyType::Aes256Xts, b"table 7").unwrap();
    assert_approved();
}

#[test]
fn wrap_and_unwrap_are_approved() {
    let kek = Key::generate(KeyType::Aes256).unwrap();
    let dek = Key::generate(KeyType::Aes256Xts).unwrap();
    let blob = keys::wrap(&kek, &dek, 3).unwrap();
    assert_approved();
    let (k, v) = keys::unwrap(&kek, &blob).unwrap();
    assert_approved();
    assert_eq!((k.id(), v), (dek.id(), 3));
}

#[test]
fn password_export_and_import_are_approved() {
    let k = Key::generate(KeyType::Aes256).unwrap();
    let blob = keys::export_with_password(&k, 9, b"correct horse battery", 100_000).unwrap();
    assert_approved();
    let (k2, v) = keys::import_with_password(&blob, b"correct horse battery").unwrap();
    assert_approved();
    assert_eq!((k2.id(), v), (k.id(), 9));
}

#[test]
fn failure_reports_unknown() {
    let kek = Key::generate(KeyType::Aes256).unwrap();
    assert!(keys::unwrap(&kek, &[0u8; 82]).is_err());
    assert_eq!(last_operation_approved(), Approval::Unknown);
}
