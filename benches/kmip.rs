//! KMIP provider latency: wrap and unwrap of one AES-256 data key through a keyring whose active
//! version is a PyKMIP server key, in fetch mode (material fetched once, KWP in the module) and
//! delegated mode (one KMIP Encrypt/Decrypt over TLS per call), beside the same keyring
//! operation on a local tenant key. The server is started on loopback for the run
//! (scripts/kmip_server.sh) and stopped at the end.
//!
//! Run: `make bench-kmip` (sets CELLAR_KMIP_PYTHON to a Python with PyKMIP).

use cellar::provider::kmip::{KmipClient, KmipConfig, KmipMode};
use cellar::{Key, KeyType, Keyring};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kmip_server.sh")
}

fn kmip(c: &mut Criterion) {
    let python = std::env::var("CELLAR_KMIP_PYTHON").expect("CELLAR_KMIP_PYTHON (make bench-kmip sets it)");
    let dir = std::env::temp_dir().join(format!("cellar-kmip-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new("bash").arg(script()).arg("start").arg(&dir).env("KMIP_PYTHON", &python).output().unwrap();
    assert!(out.status.success(), "KMIP server did not start");
    let port: u16 = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .find_map(|w| w.strip_prefix("KMIP_PORT=").map(|p| p.parse().unwrap()))
        .unwrap();
    let mut cfg = KmipConfig::new("127.0.0.1", port, dir.join("client.pem"), dir.join("client.key"), dir.join("ca.pem"));
    cfg.io_timeout = Duration::from_secs(20);
    let client = Arc::new(KmipClient::new(cfg).unwrap());

    let dk = Key::generate(KeyType::Aes256).unwrap();
    let local = Keyring::new(None).unwrap();
    let fetch = Keyring::new_kmip(&client, KmipMode::Fetch, "bench-fetch").unwrap();
    let delegated = Keyring::new_kmip(&client, KmipMode::Delegated, "bench-delegated").unwrap();
    let mut g = c.benchmark_group("kmip_wrap");
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for (name, kr) in [("local", &local), ("kmip_fetch", &fetch), ("kmip_delegated", &delegated)] {
        g.bench_function(name, |b| b.iter(|| black_box(kr.wrap(black_box(&dk)).unwrap())));
    }
    g.finish();
    let mut g = c.benchmark_group("kmip_unwrap");
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for (name, kr) in [("local", &local), ("kmip_fetch", &fetch), ("kmip_delegated", &delegated)] {
        let blob = kr.wrap(&dk).unwrap();
        g.bench_function(name, |b| b.iter(|| black_box(kr.unwrap(black_box(&blob)).unwrap())));
    }
    g.finish();
    let _ = Command::new("bash").arg(script()).arg("stop").arg(&dir).status();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, kmip);
criterion_main!(benches);
