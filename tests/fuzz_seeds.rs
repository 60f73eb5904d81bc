//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/*`) through the same target
//! logic the cargo-fuzz binaries run (`fuzz/src/lib.rs`, included here), so a regression on a
//! known input shows under plain `cargo test --release`, without cargo-fuzz or nightly.
//! Password seeds run the whole import, PBKDF2 included.
//!
//! `CELLAR_WRITE_SEEDS=1 cargo test --release --test fuzz_seeds -- --ignored write_seeds`
//! writes any seed file that is missing (delete a corpus directory to regenerate it).

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus").join(target)
}

#[test]
fn replay_committed_corpora() {
    let mut total = 0;
    for target in targets::TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no seeds for {target}");
        for f in &files {
            let data = std::fs::read(f).unwrap();
            let r = std::panic::catch_unwind(|| targets::run(target, &data, true));
            assert!(r.is_ok(), "{target}: {} failed", f.display());
        }
        total += files.len();
    }
    assert!(total > 100);
}

/// Every freshly generated seed passes its target too (valid seeds are valid now).
#[test]
fn generated_seeds_pass() {
    for (target, name, data) in targets::seeds() {
        let r = std::panic::catch_unwind(|| targets::run(target, &data, true));
        assert!(r.is_ok(), "{target}/{name} failed");
    }
}

/// The "-valid" seeds are accepted by the entry point they target (so the fixed keys, modes and
/// prefixes of the targets really reach the success paths).
#[test]
fn valid_seeds_are_accepted() {
    use cellar::keys;
    let mut checked = 0;
    for (target, name, d) in targets::seeds() {
        if !name.ends_with("-valid") {
            continue;
        }
        let ok = match target {
            "page_decrypt" | "ffi_page_decrypt" => {
                let mut out = vec![0u8; d.len() - 2];
                targets::page_cipher(d[0]).decrypt(u64::from(d[1]), &d[2..], &mut out).is_ok()
            }
            "cell_decrypt" | "ffi_cell_decrypt" => {
                let mode = targets::CELL_MODES[usize::from(d[0] % 4)];
                let clen = usize::from(d[1] & 0x1F);
                targets::cell_cipher(mode).decrypt(&d[2..2 + clen], &d[2 + clen..]).is_ok()
            }
            "page_key_version" => cellar::page::page_key_version(&d) == Ok(targets::KEY_VERSION),
            "cell_key_version" => cellar::cell::key_version(&d) == Ok(targets::KEY_VERSION),
            "key_unwrap" if name.starts_with("wrapped-v1") => targets::tenant_keyring().unwrap(&d[1..]).is_ok(),
            "key_unwrap" if d[0] == 0 => keys::unwrap(targets::kek(), &d[1..]).is_ok(),
            "keyring_import" if d[0] == 0 => cellar::Keyring::import_with_root_key(&d[1..], targets::root_key()).is_ok(),
            "password_import" if d[0] == 0 => keys::import_with_password(&d[1..], targets::PASSWORD).is_ok(),
            "password_import" => cellar::Keyring::import_with_password(&d[1..], targets::PASSWORD).is_ok(),
            _ => continue,
        };
        assert!(ok, "{target}/{name} was refused");
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} valid seeds checked");
}

#[test]
#[ignore = "writes fuzz/corpus; run with CELLAR_WRITE_SEEDS=1"]
fn write_seeds() {
    if std::env::var_os("CELLAR_WRITE_SEEDS").is_none() {
        return;
    }
    for (target, name, data) in targets::seeds() {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        // Existing seeds are kept (nonces and salts are random, so rewriting would churn every
        // file): delete a corpus directory to regenerate it.
        if !path.exists() {
            std::fs::write(path, data).unwrap();
        }
    }
}
