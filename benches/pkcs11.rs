//! Wrap and unwrap latency of one AES-256 data key through a SoftHSM2 token (the built-in PKCS#11
//! provider: the tenant key stays in the token) beside the in-process path (a local tenant key,
//! AES-KWP in this process's FIPS module). Prints the ratio as the median of alternating rounds
//! (SPEC 7) before the criterion groups.
//!
//! Run: `make bench-pkcs11` or `cargo bench --bench pkcs11 -- --warm-up-time 1 --measurement-time 3`.
//! Makes its own SoftHSM2 token directory under the system temporary folder and removes it.

use cellar::keyring::Keyring;
use cellar::provider::pkcs11::{Pkcs11Config, TokenSelector};
use cellar::{Key, KeyType};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "4711-cellar";

struct TokenDir(PathBuf);
impl Drop for TokenDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn token_dir() -> TokenDir {
    let dir = std::env::temp_dir().join(format!("cellar-bench-pkcs11-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", dir.join("tokens").display())).unwrap();
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let st = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "bench", "--so-pin", "so-pin-0815", "--pin", PIN])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util (make setup installs softhsm2)");
    assert!(st.status.success());
    TokenDir(dir)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn per_op_ns(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn bench(c: &mut Criterion) {
    let _dir = token_dir();
    let cfg = Pkcs11Config { module: MODULE, token: TokenSelector::Label("bench"), pin: PIN.as_bytes(), max_sessions: 0, allow_zero_padded_kwp: true };
    let hsm = Keyring::new_pkcs11(&cfg, "bench-tenant").unwrap();
    let local = Keyring::new(None).unwrap();
    let dk = Key::generate(KeyType::Aes256).unwrap();
    let hblob = hsm.wrap(&dk).unwrap();
    let lblob = local.wrap(&dk).unwrap();

    // Alternating rounds, one process: ours (token), baseline (in process), ...
    let (mut wr, mut ur, mut hw, mut lw, mut hu, mut lu) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..7 {
        let a = per_op_ns(300, || drop(black_box(hsm.wrap(&dk).unwrap())));
        let b = per_op_ns(20_000, || drop(black_box(local.wrap(&dk).unwrap())));
        let x = per_op_ns(300, || drop(black_box(hsm.unwrap(&hblob).unwrap())));
        let y = per_op_ns(20_000, || drop(black_box(local.unwrap(&lblob).unwrap())));
        wr.push(a / b);
        ur.push(x / y);
        hw.push(a);
        lw.push(b);
        hu.push(x);
        lu.push(y);
    }
    let spread = |v: &Vec<f64>| {
        let mut s = v.clone();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (s[0], s[s.len() - 1])
    };
    println!(
        "pkcs11 wrap:   SoftHSM2 {:.1} us, in-process {:.2} us, ratio {:.0}x (spread {:.0}..{:.0})",
        median(hw.clone()) / 1000.0,
        median(lw.clone()) / 1000.0,
        median(wr.clone()),
        spread(&wr).0,
        spread(&wr).1
    );
    println!(
        "pkcs11 unwrap: SoftHSM2 {:.1} us, in-process {:.2} us, ratio {:.0}x (spread {:.0}..{:.0})",
        median(hu.clone()) / 1000.0,
        median(lu.clone()) / 1000.0,
        median(ur.clone()),
        spread(&ur).0,
        spread(&ur).1
    );

    let mut g = c.benchmark_group("keyring_wrap");
    g.bench_function("softhsm2_token", |b| b.iter(|| hsm.wrap(black_box(&dk)).unwrap()));
    g.bench_function("in_process", |b| b.iter(|| local.wrap(black_box(&dk)).unwrap()));
    g.finish();
    let mut g = c.benchmark_group("keyring_unwrap");
    g.bench_function("softhsm2_token", |b| b.iter(|| hsm.unwrap(black_box(&hblob)).unwrap()));
    g.bench_function("in_process", |b| b.iter(|| local.unwrap(black_box(&lblob)).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
