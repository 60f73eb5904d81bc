//! Writes tests/data/compat_v1/fixtures.txt with the code as it was before format v2
//! (run at commit ecc1753: `cargo run --release --example gen_v1_fixtures`).
use cellar::cell::{self, CellCipher, CellMode};
use cellar::keyring::Keyring;
use cellar::keys::{self, Key, KeyType};
use cellar::page::{PageCipher, PageMode, FLAG_ZERO_IS_EMPTY};

fn main() {
    let mut o = String::new();
    let mut put = |k: &str, v: &[u8]| o.push_str(&format!("{k} = {}\n", hex::encode(v)));
    let m32: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(7).wrapping_add(3)).collect();
    let m64: Vec<u8> = (0u8..64).map(|i| i.wrapping_mul(13).wrapping_add(1)).collect();
    let key = Key::import(KeyType::Aes256, &m32).unwrap();
    let xkey = Key::import(KeyType::Aes256Xts, &m64).unwrap();
    put("key_aes256", &m32);
    put("key_xts", &m64);
    // Pages: file id 0x1122334455667788, key version 7, page number 42, 4096 bytes.
    let plain: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut p = plain.clone();
    p[4096 - 48..].fill(0);
    put("page_plain", &p);
    let g = PageCipher::new(&key, PageMode::Gcm, 0x1122_3344_5566_7788, 7, FLAG_ZERO_IS_EMPTY).unwrap();
    let mut ct = vec![0u8; 4096];
    g.encrypt(42, &plain, &mut ct).unwrap();
    put("page_gcm_v1", &ct);
    let x = PageCipher::new(&xkey, PageMode::Xts, 0x1122_3344_5566_7788, 7, 0).unwrap();
    x.encrypt(42, &plain, &mut ct).unwrap();
    put("page_xts", &ct);
    // Cells: key version 3, context "tenant/table/col/row".
    let ctx = b"tenant/table/col/row";
    let pt = b"alice@example.com";
    put("cell_context", ctx);
    put("cell_plain", pt);
    for (name, mode) in [
        ("cell_randomized", CellMode::Randomized),
        ("cell_deterministic_v1", CellMode::Deterministic),
        ("cell_mssql_randomized", CellMode::MssqlRandomized),
        ("cell_mssql_deterministic", CellMode::MssqlDeterministic),
    ] {
        let c = CellCipher::new(&key, mode, 3).unwrap();
        let ctxv: &[u8] = if mode.is_mssql() { b"" } else { ctx };
        put(name, &c.encrypt(ctxv, pt).unwrap());
    }
    let mut bi = [0u8; 32];
    cell::blind_index(&key, ctx, pt, &mut bi).unwrap();
    put("blind_index_v1", &bi);
    // Derive v1: children of `key` with label "orders.email".
    for (name, t) in [("derive_v1_aes256", KeyType::Aes256), ("derive_v1_xts", KeyType::Aes256Xts)] {
        let c = key.derive(t, b"orders.email").unwrap();
        put(name, &c.dangerous_export_raw());
    }
    // Wrap blob (format 0x01): XTS key under `key`, key version 9; password file.
    put("wrap_v1", &keys::wrap(&key, &xkey, 9).unwrap());
    put("password_v1", &keys::export_with_password(&xkey, 9, b"correct horse battery staple", 100_000).unwrap());
    // Keyring export under a root key (root = `key`), with the customer key `xkey`? (AES-256 only)
    let tenant = Key::import(KeyType::Aes256, &m64[..32]).unwrap();
    let kr = Keyring::new(Some(&tenant)).unwrap();
    put("keyring_wrapped_datakey", &kr.wrap(&xkey).unwrap());
    put("keyring_export_root", &kr.export_with_root_key(&key).unwrap());
    std::fs::write(format!("{}/tests/data/compat_v1/fixtures.txt", env!("CARGO_MANIFEST_DIR")), o).unwrap();
}
