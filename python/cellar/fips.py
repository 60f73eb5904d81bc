"""The FIPS status surface: module name and version, FIPS mode, self tests, fail-closed init,
and the per-thread "last operation approved" indicator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional

from ._native import lib
from .errors import raise_status

if TYPE_CHECKING:
    from .keys import KeyMemoryStatus

__all__ = [
    "AbiVersion",
    "FipsStatus",
    "fips_status",
    "init",
    "last_operation_approved",
    "abi_version",
    "module_certificate",
    "version",
]

INIT_REQUIRE_FIPS = 1

_approved = lib.cellar_last_operation_approved


@dataclass(frozen=True)
class FipsStatus:
    """What the library reports about its cryptographic module.

    ``module`` is the module's name and version (for example ``"AWS-LC FIPS 3.1.0"``),
    ``version`` Cellar's own version string, ``fips_mode`` whether the module runs in FIPS mode,
    ``self_test_passed`` whether the module's known-answer self tests passed, ``certificate``
    the module line, version and certificate (or "in CMVP review") as
    :func:`module_certificate` reports it.
    """

    module: str
    version: str
    fips_mode: bool
    self_test_passed: bool
    certificate: str = ""

    @property
    def ok(self) -> bool:
        """True when the module runs in FIPS mode and its self tests passed."""
        return self.fips_mode and self.self_test_passed

    @property
    def key_memory(self) -> "KeyMemoryStatus":
        """How key material is held now (locked / no-dump pages): see
        :func:`cellar.key_memory_status`."""
        from .keys import key_memory_status

        return key_memory_status()

    def __str__(self) -> str:
        mode = "FIPS mode" if self.fips_mode else "not in FIPS mode"
        tests = "self tests passed" if self.self_test_passed else "self tests FAILED"
        return f"{self.module} ({mode}, {tests})"


def fips_status() -> FipsStatus:
    """The module's status (runs the self tests on first call)."""
    return FipsStatus(
        module=lib.cellar_fips_module_version().decode("utf-8", "replace"),
        version=lib.cellar_version().decode("utf-8", "replace"),
        fips_mode=lib.cellar_fips_mode() == 1,
        self_test_passed=lib.cellar_fips_self_test_passed() == 1,
        certificate=module_certificate(),
    )


def module_certificate() -> str:
    """The module line this library was built on, the linked module version and its validation
    status, e.g. ``"AWS-LC FIPS 3 line, module AWS-LC FIPS 3.1.0: FIPS 140-3 certificate #5314
    (static module; #5298 dynamic)"``; on the opt-in 4.x build ``"...: in CMVP review, no
    certificate"``. A linked module other than the pinned version is named as such, with no
    certificate."""
    return lib.cellar_fips_module_certificate().decode("utf-8", "replace")


def init(require_fips: bool = False) -> None:
    """Initialises the library (optional). With ``require_fips=True`` it fails closed with
    :class:`~cellar.NotFipsError` unless the module is in FIPS mode, its self tests pass and it
    is the module version the library was built to pin (see :func:`module_certificate`)."""
    st = lib.cellar_init(INIT_REQUIRE_FIPS if require_fips else 0)
    if st:
        raise_status(st)


def last_operation_approved() -> Optional[bool]:
    """Whether this thread's last Cellar operation that did cryptography used only services the
    FIPS module counted as approved: True, False, or None (none yet, or the last one failed)."""
    v = _approved()
    if v == 1:
        return True
    if v == 0:
        return False
    return None


class AbiVersion(int):
    """``CELLAR_ABI_VERSION`` as the library reports it (``major << 16 | minor``): an ``int``
    that also has ``.major`` and ``.minor``, unpacks as ``major, minor = v`` and compares equal
    to the tuple ``(major, minor)``."""

    @property
    def major(self) -> int:
        return int(self) >> 16

    @property
    def minor(self) -> int:
        return int(self) & 0xFFFF

    def __iter__(self) -> Iterator[int]:
        return iter((self.major, self.minor))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple):
            return (self.major, self.minor) == other
        return int.__eq__(self, other)  # type: ignore[no-any-return]

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = int.__hash__

    def __repr__(self) -> str:
        return f"AbiVersion({self.major}.{self.minor})"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def abi_version() -> AbiVersion:
    """The loaded library's C ABI version (see :class:`AbiVersion`)."""
    return AbiVersion(lib.cellar_abi_version())


def version() -> str:
    """Cellar's version, the module's and its certificate, e.g. ``"cellar 0.1.0 (AWS-LC FIPS
    3.1.0; FIPS 140-3 certificate #5314 (static module; #5298 dynamic))"``."""
    return lib.cellar_version().decode("utf-8", "replace")
