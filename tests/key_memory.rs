//! Key memory (issue 19, item 5): key material lives in pages that are excluded from core dumps
//! (`MADV_DONTDUMP`) and locked into RAM (`mlock`) where the process's `RLIMIT_MEMLOCK` allows;
//! without the limit keys keep working from unlocked no-dump pages and the status says so.
//!
//! * always: `key_memory_status()` agrees with what the process may lock; in a child process
//!   re-run with `RLIMIT_MEMLOCK = 0` and without `CAP_IPC_LOCK`, keys work, the status reports
//!   `locked: false, nodump: true` and no mapping of the child is locked (`/proc/self/smaps`);
//! * with the `test-hooks` feature (`make test-hygiene`): the mapping that holds a live key's
//!   material carries the `dd` VmFlag and, where the limit allows, is fully `Locked:` (`lo`).
#![cfg(target_os = "linux")]

use cellar::keys::{self, key_memory_status, Key, KeyType};
use cellar::{CellCipher, CellMode, PageCipher, PageMode};

/// One mapping of /proc/self/smaps.
#[derive(Debug)]
#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
struct Mapping {
    start: usize,
    end: usize,
    size_kb: u64,
    locked_kb: u64,
    flags: Vec<String>,
}

fn smaps() -> Vec<Mapping> {
    let text = std::fs::read_to_string("/proc/self/smaps").expect("read /proc/self/smaps");
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                out.push(Mapping { start, end, size_kb: 0, locked_kb: 0, flags: vec![] });
                continue;
            }
        }
        let Some(m) = out.last_mut() else { continue };
        let kb = |rest: &str| rest.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0);
        if let Some(rest) = line.strip_prefix("Size:") {
            m.size_kb = kb(rest);
        } else if let Some(rest) = line.strip_prefix("Locked:") {
            m.locked_kb = kb(rest);
        } else if let Some(rest) = line.strip_prefix("VmFlags:") {
            m.flags = rest.split_whitespace().map(str::to_string).collect();
        }
    }
    out
}

/// The calling thread holds `CAP_IPC_LOCK` (then `mlock` ignores `RLIMIT_MEMLOCK`).
fn has_cap_ipc_lock() -> bool {
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("read status");
    let eff = status.lines().find_map(|l| l.strip_prefix("CapEff:")).expect("CapEff line").trim();
    u64::from_str_radix(eff, 16).expect("CapEff hex") & (1 << CAP_IPC_LOCK) != 0
}

const CAP_IPC_LOCK: u32 = 14;

fn memlock_limit() -> libc::rlimit {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` is a valid out-parameter.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) }, 0);
    r
}

/// Whether this process may lock the key pages: CAP_IPC_LOCK, or a limit far above what the
/// tests lock (a few 4 KiB to 64 KiB slabs). `None` when it cannot be told in advance.
fn may_lock() -> Option<bool> {
    let r = memlock_limit();
    if has_cap_ipc_lock() || r.rlim_cur == libc::RLIM_INFINITY || r.rlim_cur >= 4 << 20 {
        Some(true)
    } else if r.rlim_cur < 4096 {
        Some(false)
    } else {
        None
    }
}

#[test]
fn status_reports_nodump_and_locked_as_the_limit_allows() {
    let k = Key::generate(KeyType::Aes256).unwrap();
    let s = key_memory_status().unwrap();
    assert!(s.nodump, "Linux key pages must be MADV_DONTDUMP: {s:?}");
    if let Some(expected) = may_lock() {
        assert_eq!(s.locked, expected, "RLIMIT_MEMLOCK {:?}, CAP_IPC_LOCK {}", memlock_limit().rlim_cur, has_cap_ipc_lock());
    }
    drop(k);
}

// ---- RLIMIT_MEMLOCK = 0 in a child process ----

const CHILD_ENV: &str = "CELLAR_TEST_MEMLOCK_CHILD";
const CHILD_MARK: &str = "memlock-child: keys work, locked=0 nodump=1, nothing locked";

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops CAP_IPC_LOCK from this thread's effective and permitted sets (root in a container may
/// hold it, and then `mlock` ignores the limit).
fn drop_cap_ipc_lock() {
    const V3: u32 = 0x2008_0522;
    let mut hdr = CapHeader { version: V3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data structs, as capget(2) documents.
    unsafe {
        assert_eq!(libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()), 0);
        data[0].effective &= !(1 << CAP_IPC_LOCK);
        data[0].permitted &= !(1 << CAP_IPC_LOCK);
        data[0].inheritable &= !(1 << CAP_IPC_LOCK);
        assert_eq!(libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()), 0);
    }
    assert!(!has_cap_ipc_lock());
}

/// The child half: runs only when the parent test below starts this binary with CHILD_ENV.
#[test]
fn zero_memlock_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    drop_cap_ipc_lock();
    let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &zero) }, 0);

    // Keys of both types, derived, wrapped and unwrapped, in use by page and cell ciphers.
    let kek = Key::generate(KeyType::Aes256).unwrap();
    let data = Key::generate(KeyType::Aes256Xts).unwrap();
    let blob = keys::wrap(&kek, &data, 3).unwrap();
    let (back, v) = keys::unwrap(&kek, &blob).unwrap();
    assert_eq!((back.id(), v), (data.id(), 3));
    let many: Vec<Key> = (0..300).map(|_| Key::generate(KeyType::Aes256).unwrap()).collect();
    let page = PageCipher::new(&back, PageMode::Xts, 7, 3, 0).unwrap();
    let plain: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    let mut ct = vec![0u8; 4096];
    let mut pt = vec![0u8; 4096];
    page.encrypt(1, &plain, &mut ct).unwrap();
    page.decrypt(1, &ct, &mut pt).unwrap();
    assert_eq!(pt, plain);
    let child = kek.derive(KeyType::Aes256, b"orders.email").unwrap();
    let cell = CellCipher::new(&child, CellMode::Randomized, 1).unwrap();
    let c = cell.encrypt(b"ctx", b"alice@example.com").unwrap();
    assert_eq!(&cell.decrypt(b"ctx", &c).unwrap()[..], b"alice@example.com");

    let s = key_memory_status().unwrap();
    assert!(!s.locked, "mlock cannot succeed with RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK: {s:?}");
    assert!(s.nodump, "{s:?}");
    let maps = smaps();
    let locked: Vec<_> = maps.iter().filter(|m| m.locked_kb > 0).collect();
    assert!(locked.is_empty(), "locked mappings under RLIMIT_MEMLOCK 0: {locked:?}");
    #[cfg(feature = "test-hooks")]
    for k in [&kek, &data, &back, &child, &many[0], &many[299]] {
        let (addr, _) = k.material_address();
        let m = maps.iter().find(|m| (m.start..m.end).contains(&addr)).expect("mapping of the key");
        assert!(m.flags.iter().any(|f| f == "dd"), "{m:?}");
        assert!(!m.flags.iter().any(|f| f == "lo"), "{m:?}");
    }
    drop(many);
    println!("{CHILD_MARK}");
}

#[test]
fn zero_memlock_falls_back_to_nodump_only() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "zero_memlock_child", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(CHILD_MARK),
        "child failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- the mapping of a live key (test-hooks: the material's address) ----

#[cfg(feature = "test-hooks")]
#[test]
fn live_key_pages_are_nodump_and_locked() {
    let keys: Vec<Key> = [KeyType::Aes256, KeyType::Aes256Xts]
        .into_iter()
        .flat_map(|t| (0..100).map(move |_| Key::generate(t).unwrap()))
        .collect();
    let derived = keys[0].derive(KeyType::Aes256Xts, b"x").unwrap();
    let imported = Key::import(KeyType::Aes256, &[0x5Au8; 32]).unwrap();
    let s = key_memory_status().unwrap();
    let expect_locked = may_lock();
    let maps = smaps();
    for k in keys.iter().chain([&derived, &imported]) {
        let (addr, len) = k.material_address();
        assert_eq!(len, k.key_type().material_len());
        let m = maps
            .iter()
            .find(|m| (m.start..m.end).contains(&addr) && (m.start..=m.end).contains(&(addr + len)))
            .unwrap_or_else(|| panic!("no mapping holds the key at {addr:#x}"));
        assert!(m.flags.iter().any(|f| f == "dd"), "key mapping lacks VmFlags dd: {m:?}");
        assert!(m.size_kb >= 4 && m.size_kb <= 64 * 1024, "{m:?}");
        if expect_locked == Some(true) {
            assert!(m.flags.iter().any(|f| f == "lo"), "key mapping not locked: {m:?}");
            assert_eq!(m.locked_kb, m.size_kb, "key mapping not wholly locked: {m:?}");
        }
        if s.locked {
            assert_eq!(m.locked_kb, m.size_kb, "status says locked but the mapping is not: {m:?}");
        }
        // The key's slot is not in an ordinary heap or stack mapping.
        assert!(!m.flags.iter().any(|f| f == "gd"), "{m:?}");
    }
}
