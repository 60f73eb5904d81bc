//! The KMIP provider against a real PyKMIP server, started per test binary run by
//! `scripts/kmip_server.sh` in a temporary directory (its own CA, server and client certificates,
//! a free loopback port) and stopped by process id at the end.
//!
//! These tests need PyKMIP: `make test-kmip` installs it in a virtual environment and runs them
//! with `--include-ignored` and `CELLAR_KMIP_PYTHON` naming that environment's interpreter.

use cellar::fips::{last_operation_approved, Approval};
use cellar::provider::kmip::{KmipClient, KmipConfig, KmipKey, KmipMode};
use cellar::{Error, Key, KeyType, Keyring};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

struct Server {
    dir: PathBuf,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&self.dir);
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kmip_server.sh")
}

fn python() -> String {
    std::env::var("CELLAR_KMIP_PYTHON").expect("CELLAR_KMIP_PYTHON must name a Python with PyKMIP (make test-kmip sets it)")
}

fn start(dir: &Path) -> u16 {
    let out = Command::new("bash")
        .arg(script())
        .arg("start")
        .arg(dir)
        .env("KMIP_PYTHON", python())
        .stderr(Stdio::inherit())
        .output()
        .expect("run kmip_server.sh");
    assert!(out.status.success(), "the KMIP server did not start");
    let s = String::from_utf8(out.stdout).unwrap();
    let port = s.split_whitespace().find_map(|w| w.strip_prefix("KMIP_PORT=")).expect("port");
    port.parse().unwrap()
}

fn stop(dir: &Path) {
    let _ = Command::new("bash").arg(script()).arg("stop").arg(dir).status();
}

// One server for the whole test binary; tests use distinct key names.
fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cellar-kmip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let port = start(&dir);
        // The server is stopped when the process exits: statics are not dropped, so register it.
        extern "C" fn at_exit() {
            if let Some(s) = SERVER_DIR.get() {
                stop(s);
                let _ = std::fs::remove_dir_all(s);
            }
        }
        static SERVER_DIR: OnceLock<PathBuf> = OnceLock::new();
        let _ = SERVER_DIR.set(dir.clone());
        extern "C" {
            fn atexit(f: extern "C" fn()) -> i32;
        }
        // SAFETY: registering a plain function with the C runtime.
        unsafe { atexit(at_exit) };
        Server { dir, port }
    })
}

fn config_for(s: &Server, cert: &str, ca: &str) -> KmipConfig {
    let mut c = KmipConfig::new(
        "127.0.0.1",
        s.port,
        s.dir.join(format!("{cert}.pem")),
        s.dir.join(format!("{cert}.key")),
        s.dir.join(format!("{ca}.pem")),
    );
    c.connect_timeout = Duration::from_secs(3);
    c.io_timeout = Duration::from_secs(10);
    c
}

fn client() -> Arc<KmipClient> {
    Arc::new(KmipClient::new(config_for(server(), "client", "ca")).unwrap())
}

fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("cellar-test-{}-{}-{name}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn negotiates_fips_tls_and_a_protocol_version() {
    let c = client();
    let v = c.protocol_version().unwrap();
    assert!(v >= (1, 2), "{v:?}");
    let t = c.tls_info();
    assert!(t.fips, "rustls must report the connection as FIPS");
    assert!(t.cipher_suite.contains("AES"), "{}", t.cipher_suite);
    assert!(!t.cipher_suite.contains("CHACHA"));
}

#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn both_modes_round_trip_through_a_keyring() {
    for mode in [KmipMode::Fetch, KmipMode::Delegated] {
        let c = client();
        let kk = KmipKey::create(c.clone(), &unique("rt"), mode).unwrap();
        let uid = kk.uid().to_owned();
        let kr = Keyring::new(None).unwrap();
        let v = kr.add_provider(Arc::new(kk)).unwrap();
        assert_eq!(kr.active_version().unwrap(), v);
        let dk = Key::generate(KeyType::Aes256).unwrap();
        let blob = kr.wrap(&dk).unwrap();
        let wrap_approval = last_operation_approved();
        let (back, ver) = kr.unwrap(&blob).unwrap();
        let unwrap_approval = last_operation_approved();
        assert_eq!(back.id(), dk.id());
        assert_eq!(ver, v);
        match mode {
            // Fetch mode wraps inside the module; the blob is what a local version would make.
            KmipMode::Fetch => {
                let material = c.get_aes256(&uid).unwrap();
                let local = Key::import(KeyType::Aes256, &material).unwrap();
                let (again, _) = cellar::keys::unwrap(&local, &blob).unwrap();
                assert_eq!(again.id(), dk.id());
                assert_eq!(wrap_approval, Approval::Approved);
                assert_eq!(unwrap_approval, Approval::Approved);
            }
            // Delegated: the server did the cryptography.
            KmipMode::Delegated => {
                assert_eq!(wrap_approval, Approval::NotApproved);
                assert_eq!(unwrap_approval, Approval::NotApproved);
            }
        }
        // A tampered blob is an authentication failure, not a provider failure.
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(kr.unwrap(&bad), Err(Error::AuthenticationFailed(_))), "{mode:?}");
    }
}

#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn adopt_by_name_rotate_rewrap_and_retire_with_destroy() {
    let c = client();
    let name = unique("adopt");
    let first = KmipKey::create(c.clone(), &name, KmipMode::Delegated).unwrap();
    let first_uid = first.uid().to_owned();
    // Adopting by name finds the same server key.
    let adopted = KmipKey::adopt(c.clone(), &name, KmipMode::Delegated).unwrap();
    assert_eq!(adopted.uid(), first_uid);
    assert!(matches!(KmipKey::adopt(c.clone(), &unique("absent"), KmipMode::Fetch), Err(Error::KeyNotFound(_))));

    let kr = Keyring::new(None).unwrap();
    let v1 = kr.add_provider(Arc::new(adopted)).unwrap();
    let dk = Key::generate(KeyType::Aes256).unwrap();
    let blob1 = kr.wrap(&dk).unwrap();
    let second = KmipKey::create(c.clone(), &unique("rot"), KmipMode::Fetch).unwrap();
    let v2 = kr.add_provider(Arc::new(second)).unwrap();
    assert!(v2 > v1);
    let blob2 = kr.rewrap(&blob1).unwrap();
    assert_eq!(kr.unwrap(&blob2).unwrap().1, v2);
    assert_eq!(kr.unwrap(&blob1).unwrap().1, v1);

    // Retire with destroy: the server key is revoked and destroyed, blobs under it are dead.
    let victim = KmipKey::attach(c.clone(), &first_uid, KmipMode::Delegated).unwrap();
    victim.destroy_on_server().unwrap();
    kr.retire(v1).unwrap();
    assert!(kr.unwrap(&blob1).is_err());
    let err = KmipKey::attach(c.clone(), &first_uid, KmipMode::Delegated).unwrap_err();
    assert!(matches!(err, Error::KeyNotFound(m) if m.contains("Item Not Found")), "{err:?}");
}

#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn lock_and_unlock_reattach_the_server_key() {
    let c = client();
    let kr = Keyring::new_kmip(&c, KmipMode::Fetch, &unique("lock")).unwrap();
    let (_, uid) = kr.kmip_reference(1).unwrap().unwrap();
    let dk = Key::generate(KeyType::Aes256).unwrap();
    let blob = kr.wrap(&dk).unwrap();
    kr.lock().unwrap();
    assert!(matches!(kr.unwrap(&blob), Err(Error::TenantLocked(_))));
    assert!(matches!(kr.wrap(&dk), Err(Error::TenantLocked(_))));
    kr.unlock_provider(Arc::new(KmipKey::attach(c.clone(), &uid, KmipMode::Fetch).unwrap())).unwrap();
    assert_eq!(kr.unwrap(&blob).unwrap().0.id(), dk.id());
}

#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn revoked_key_is_refused_with_a_clear_error() {
    let c = client();
    let kk = KmipKey::create(c.clone(), &unique("revoked"), KmipMode::Delegated).unwrap();
    let uid = kk.uid().to_owned();
    c.revoke(&uid).unwrap();
    let err = KmipKey::attach(c.clone(), &uid, KmipMode::Delegated).unwrap_err();
    assert!(matches!(err, Error::InvalidKey(m) if m.contains("revoked")), "{err:?}");
    // A pre-active key (created, never activated) is refused too.
    let pre = c.create_aes256(&unique("pre"), 0x0C).unwrap();
    let err = KmipKey::attach(c.clone(), &pre, KmipMode::Delegated).unwrap_err();
    assert!(matches!(err, Error::InvalidKey(m) if m.contains("Pre-Active")), "{err:?}");
}

#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn kmip_errors_name_the_result_reason() {
    let c = client();
    let err = c.get_aes256("no-such-object-99999").unwrap_err();
    assert!(matches!(err, Error::ProviderFailed(m) if m.contains("Item Not Found")), "{err:?}");
}

#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn eight_threads_wrap_and_unwrap_at_once() {
    for mode in [KmipMode::Fetch, KmipMode::Delegated] {
        let c = client();
        let kr = Arc::new(Keyring::new(None).unwrap());
        kr.add_provider(Arc::new(KmipKey::create(c, &unique("mt"), mode).unwrap())).unwrap();
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let kr = kr.clone();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        let dk = Key::generate(KeyType::Aes256).unwrap();
                        let blob = kr.wrap(&dk).unwrap();
                        assert_eq!(kr.unwrap(&blob).unwrap().0.id(), dk.id());
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    }
}

#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn wrong_client_certificate_and_foreign_server_ca_are_refused() {
    let s = server();
    // A client certificate from a CA the server does not trust.
    let c = KmipClient::new(config_for(s, "other-client", "ca")).unwrap();
    let err = c.locate("anything").unwrap_err();
    assert!(matches!(err, Error::ProviderFailed(_)), "{err:?}");
    // A server certificate checked against another CA.
    let c = KmipClient::new(config_for(s, "client", "other-ca")).unwrap();
    let err = c.locate("anything").unwrap_err();
    assert!(matches!(err, Error::ProviderFailed(m) if m.contains("not trusted")), "{err:?}");
}

/// A TLS server (Python's ssl) that offers only non-FIPS cipher suites (ChaCha20-Poly1305, TLS
/// 1.2 only): rustls's FIPS provider must refuse to connect.
#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn a_server_offering_only_non_fips_suites_is_refused() {
    let s = server();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let code = format!(
        r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305")
ctx.load_cert_chain("{d}/server.pem", "{d}/server.key")
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", {port})); s.listen(4); print("ready", flush=True)
s.settimeout(20)
for _ in range(4):
    try:
        c, _ = s.accept()
        try: ctx.wrap_socket(c, server_side=True).close()
        except Exception: c.close()
    except Exception: break
"#,
        d = s.dir.display()
    );
    let mut child: Child = Command::new(python()).arg("-c").arg(code).stdout(Stdio::piped()).spawn().unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let mut cfg = config_for(s, "client", "ca");
    cfg.port = port;
    let c = KmipClient::new(cfg).unwrap();
    let err = c.locate("x").unwrap_err();
    let _ = child.kill();
    let _ = child.wait();
    assert!(matches!(err, Error::ProviderFailed(m) if m.contains("FIPS")), "{err:?}");
}

/// Last: stops the shared server. Runs in its own server so other tests are unaffected.
#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn a_server_stopped_mid_run_fails_fast_and_clearly() {
    let dir = std::env::temp_dir().join(format!("cellar-kmip-stop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = start(&dir);
    let guard = Server { dir: dir.clone(), port };
    let c = Arc::new(KmipClient::new(config_for(&guard, "client", "ca")).unwrap());
    let kr = Keyring::new(None).unwrap();
    kr.add_provider(Arc::new(KmipKey::create(c.clone(), &unique("down"), KmipMode::Delegated).unwrap())).unwrap();
    let dk = Key::generate(KeyType::Aes256).unwrap();
    let blob = kr.wrap(&dk).unwrap();
    stop(&dir);
    let t = Instant::now();
    let err = kr.unwrap(&blob).unwrap_err();
    assert!(matches!(err, Error::ProviderFailed(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(15), "must fail within the timeouts, took {:?}", t.elapsed());
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs a PyKMIP server: make test-kmip"]
fn export_records_the_reference_and_import_reconnects() {
    for mode in [KmipMode::Fetch, KmipMode::Delegated] {
        let c = client();
        let kr = Keyring::new_kmip(&c, mode, &unique("exp")).unwrap();
        let v = kr.active_version().unwrap();
        let (m, uid) = kr.kmip_reference(v).unwrap().unwrap();
        assert_eq!(m, mode);
        let dk = Key::generate(KeyType::Aes256).unwrap();
        let blob = kr.wrap(&dk).unwrap();
        let root = Key::generate(KeyType::Aes256).unwrap();
        let sealed = kr.export_with_root_key(&root).unwrap();
        // The export holds the unique identifier, never the server key's material.
        let state = cellar_test_open_export(&root, &sealed);
        assert!(state.windows(uid.len()).any(|w| w == uid.as_bytes()));
        if mode == KmipMode::Fetch {
            let material = c.get_aes256(&uid).unwrap();
            assert!(!state.windows(32).any(|w| w == &material[..]), "material must not be exported");
        }
        let back = Keyring::import_with_root_key(&sealed, &root).unwrap();
        assert!(matches!(back.unwrap(&blob), Err(Error::TenantLocked(_))));
        assert_eq!(back.unlock_kmip(&c).unwrap(), 1);
        assert_eq!(back.unwrap(&blob).unwrap().0.id(), dk.id());
    }
}

/// Opens a root-key export (`'R' | 0x01 | root id (16) | AES-KWP(root, state)`) with the
/// module's KWP, to look inside.
fn cellar_test_open_export(root: &Key, sealed: &[u8]) -> Vec<u8> {
    let raw = root.dangerous_export_raw();
    let kek = aws_lc_rs::key_wrap::AesKek::new(&aws_lc_rs::key_wrap::AES_256, &raw).unwrap();
    use aws_lc_rs::key_wrap::KeyWrapPadded;
    let mut out = vec![0u8; sealed.len()];
    let n = kek.unwrap_with_padding(&sealed[18..], &mut out).unwrap().len();
    out.truncate(n);
    out
}
