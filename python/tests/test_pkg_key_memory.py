"""Key memory (issue 19, item 5) through the package: key pages are no-dump and locked where the
process may lock memory, a fork() child locks its copies again, and without RLIMIT_MEMLOCK keys
keep working with the fallback reported."""
import os
import resource
import shutil
import subprocess
import sys
import textwrap

import pytest

import cellar
from cellar import CellCipher, CellMode, Key, KeyType

CAP_IPC_LOCK = 14
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_DONTDUMP and smaps are Linux")


def has_cap_ipc_lock() -> bool:
    with open("/proc/self/status") as f:
        eff = next(line.split()[1] for line in f if line.startswith("CapEff:"))
    return bool(int(eff, 16) & (1 << CAP_IPC_LOCK))


def may_lock():
    """True/False when this process can/cannot lock the key pages; None when unclear."""
    cur, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if has_cap_ipc_lock() or cur == resource.RLIM_INFINITY or cur >= 4 << 20:
        return True
    if cur < 4096:
        return False
    return None


def locked_kb() -> int:
    with open("/proc/self/smaps") as f:
        return sum(int(line.split()[1]) for line in f if line.startswith("Locked:"))


@linux
def test_status_is_nodump_and_locked_where_allowed():
    with Key.generate(KeyType.AES256):
        s = cellar.key_memory_status()
    assert isinstance(s, cellar.KeyMemoryStatus)
    assert s.nodump is True
    expected = may_lock()
    if expected is not None:
        assert s.locked is expected
        assert s.protected is expected
        assert (locked_kb() > 0) is expected
    assert cellar.fips_status().key_memory == cellar.key_memory_status()


@linux
def test_fork_child_locks_its_copies_again():
    if may_lock() is not True:
        pytest.skip("this process may not lock memory")
    key = Key.generate(KeyType.AES256)
    cells = CellCipher(key, CellMode.RANDOMIZED)
    ct = cells.encrypt(b"v", context=b"c")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: memory locks are not inherited; the library's atfork handler relocks
        try:
            ok = cells.decrypt(ct, context=b"c") == b"v" and cellar.key_memory_status().locked
            os.write(w, b"%d %d" % (int(ok), locked_kb()))
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 100).split()
    os.close(r)
    os.waitpid(pid, 0)
    assert out and out[0] == b"1", out
    assert int(out[1]) > 0, "nothing locked in the child"
    key.close()


CHILD = textwrap.dedent(
    """
    import resource, cellar
    from cellar import CellCipher, CellMode, Key, KeyType
    assert resource.getrlimit(resource.RLIMIT_MEMLOCK) == (0, 0)
    keys = [Key.generate(KeyType.AES256) for _ in range(200)]
    c = CellCipher(keys[-1], CellMode.RANDOMIZED)
    assert c.decrypt(c.encrypt(b"alice", context=b"x"), context=b"x") == b"alice"
    kek = Key.generate(KeyType.AES256)
    blob = keys[0].wrap(kek)
    assert Key.unwrap(kek, blob)[0] == keys[0]
    s = cellar.key_memory_status()
    locked = sum(int(l.split()[1]) for l in open("/proc/self/smaps") if l.startswith("Locked:"))
    print("status", int(s.locked), int(s.nodump), "locked_kb", locked)
    """
)


@linux
def test_without_memlock_limit_keys_work_and_the_fallback_is_reported():
    cmd = [sys.executable, "-c", CHILD]
    if has_cap_ipc_lock():
        # CAP_IPC_LOCK makes mlock ignore the limit: drop it for the child (root in a container).
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("CAP_IPC_LOCK held and no setpriv to drop it")
        cmd = [setpriv, "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock", "--"] + cmd

    def zero_memlock():
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run(cmd, preexec_fn=zero_memlock, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "status 0 1 locked_kb 0" in r.stdout, r.stdout
