#!/usr/bin/env python3
"""Builds a binary wheel of the ``cellar`` package that carries ``libcellar.so`` (``make wheel``).

The package itself is pure Python (ctypes); the wheel is platform specific only because of the
library inside. Steps:

1. stage ``python/`` (pyproject, README, the ``cellar`` package) in ``target/wheel/stage`` with
   the release library copied to ``cellar/libcellar.so`` (debug sections stripped; the FIPS
   module's integrity check covers its code and read-only data, which ``strip --strip-debug``
   does not touch, and the installed wheel's smoke test checks the self tests pass);
2. ``python -m build --wheel --no-isolation`` on the stage (a ``py3-none-any`` wheel);
3. retag it honestly: ``Root-Is-Purelib: false`` and the platform tag. With ``auditwheel`` on
   the path, ``auditwheel show`` must report the wheel consistent with a ``manylinux`` policy
   (the library needs only libc, libgcc_s and the loader) and that tag is used
   (``py3-none-manylinux_2_NN_x86_64``); without it, ``py3-none-linux_x86_64``. The library is
   never patched (``auditwheel repair`` is not used: there is nothing to graft, and the FIPS
   module must stay byte for byte what was built);
4. verify the final wheel: the library inside equals the staged copy, and ``auditwheel show``
   accepts the tag it carries.

The pure-Python package stays buildable (``pip install ./python``) for hosts that bring their
own library: nothing here changes ``python/``.

Usage: ``build_wheel.py [--lib target/release/libcellar.so] [--out dist]``; prints the wheel path.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw).stdout


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def retag(src: pathlib.Path, dst_dir: pathlib.Path, platform_tag: str) -> pathlib.Path:
    """Rewrites a py3-none-any wheel as py3-none-<platform_tag> (WHEEL and RECORD updated)."""
    m = re.match(r"(?P<name>[^-]+)-(?P<ver>[^-]+)-py3-none-any\.whl$", src.name)
    if not m:
        raise SystemExit(f"unexpected wheel name {src.name}")
    dst = dst_dir / f"{m['name']}-{m['ver']}-py3-none-{platform_tag}.whl"
    with zipfile.ZipFile(src) as zin:
        items = [(i, zin.read(i.filename)) for i in zin.infolist()]
    record_name = next(i.filename for i, _ in items if i.filename.endswith(".dist-info/RECORD"))
    lines = []
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in items:
            if info.filename == record_name:
                continue
            if info.filename.endswith(".dist-info/WHEEL"):
                text = data.decode()
                text = re.sub(r"Root-Is-Purelib: true", "Root-Is-Purelib: false", text)
                text = re.sub(r"Tag: py3-none-any", f"Tag: py3-none-{platform_tag}", text)
                data = text.encode()
            zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            zi.external_attr = info.external_attr
            zi.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(zi, data)
            lines.append(record_line(info.filename, data))
        lines.append(f"{record_name},,")
        zi = zipfile.ZipInfo(record_name, date_time=items[0][0].date_time)
        zi.compress_type = zipfile.ZIP_DEFLATED
        zout.writestr(zi, "\n".join(lines) + "\n")
    return dst


def auditwheel_policy(wheel: pathlib.Path) -> str | None:
    """The manylinux tag ``auditwheel show`` finds the wheel consistent with, or None."""
    exe = shutil.which("auditwheel")
    if exe is None:
        return None
    out = run([exe, "show", str(wheel)])
    m = re.search(r'consistent\s+with\s+the\s+following\s+platform\s+tag:\s*"?(manylinux_\d+_\d+_\w+)"?', out)
    if not m:
        print(out, file=sys.stderr)
        raise SystemExit("auditwheel show did not report a manylinux policy for the wheel")
    return m.group(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", default=str(ROOT / "target" / "release" / "libcellar.so"))
    ap.add_argument("--out", default=str(ROOT / "dist"))
    ap.add_argument("--work", default=str(ROOT / "target" / "wheel"))
    args = ap.parse_args()
    lib = pathlib.Path(args.lib)
    if not lib.is_file():
        raise SystemExit(f"{lib} not found: run `make build` first")
    if platform.system() != "Linux":
        raise SystemExit("make wheel builds Linux wheels only")
    work = pathlib.Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    stage = work / "stage"
    stage.mkdir(parents=True)
    src = ROOT / "python"
    shutil.copy2(src / "pyproject.toml", stage)
    shutil.copy2(src / "README.md", stage)
    shutil.copytree(src / "cellar", stage / "cellar",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "libcellar.so*"))
    bundled = stage / "cellar" / "libcellar.so"
    shutil.copy2(lib, bundled)
    if shutil.which("strip"):
        run(["strip", "--strip-debug", str(bundled)])
    os.chmod(bundled, 0o755)
    pure = work / "pure"
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(pure), str(stage)])
    (wheel,) = pure.glob("cellar-*-py3-none-any.whl")
    machine = platform.machine()
    generic = retag(wheel, work, f"linux_{machine}")
    policy = auditwheel_policy(generic)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("cellar-*.whl"):
        old.unlink()
    if policy:
        # A manylinux_2_NN tag also names the legacy alias (manylinux2014 etc.) only for NN <= 17.
        final = retag(wheel, out, policy)
        if auditwheel_policy(final) != policy:
            raise SystemExit("auditwheel does not accept the retagged wheel")
    else:
        final = out / generic.name
        shutil.copy2(generic, final)
    with zipfile.ZipFile(final) as z:
        if z.read("cellar/libcellar.so") != bundled.read_bytes():
            raise SystemExit("the library in the wheel differs from the staged one")
        names = z.namelist()
    for must in ("cellar/__init__.py", "cellar/arrow.py", "cellar/parquet.py", "cellar/py.typed"):
        if must not in names:
            raise SystemExit(f"{must} missing from the wheel")
    print(final)


if __name__ == "__main__":
    main()
