"""Which BLAS MLX training uses on this machine, and how the training process gets a fast one.

The ``mlx[cpu]`` Linux wheel links the unoptimised reference (Netlib) BLAS that it bundles in
``mlx_cpu.libs``: a float32 GEMM runs at a few GFLOP/s, 25-40x slower than numpy's OpenBLAS.
``libmlx.so`` imports plain ``cblas_sgemm``/``sgemm_`` symbols, so an optimised BLAS that exports
the same unprefixed names and is loaded ahead of it (``LD_PRELOAD``) takes every call.

The preload is confined to the training child process (``python -m
efficientai_assets.defs.training.train_worker``): ``training_process_env()`` builds that child's environment
and nothing else in the product changes its own. Libraries are tried in this order:

1. ``EFFICIENTAI_BLAS``: ``auto`` (default), ``reference`` (use the wheel's BLAS), or an absolute
   path to a shared library exporting ``cblas_sgemm``.
2. The distribution's OpenBLAS (Debian/Ubuntu ``libopenblas0-pthread``; Fedora ``openblas``).
3. OpenBLAS from PyPI: ``ngsolve-openblas`` (OpenBLAS with the standard names, every x86-64 core
   type, pthreads; 13 MB), a dependency of the project on Linux x86-64, so ``make run`` has it.
   Its ``libgfortran.so.5`` (used by a few LAPACK routines) comes from the mlx wheel's own copy
   through a folder of two links under ``<sys.prefix>/lib`` on the child's ``LD_LIBRARY_PATH``.
4. Intel oneMKL from PyPI (``pip install mkl``), found in ``<sys.prefix>/lib``.
5. Otherwise the wheel's reference BLAS: training works, only slower, and the choice is recorded.

Every candidate is verified without loading it into this process: it must be an ELF shared
object for this machine's architecture whose dynamic symbol table defines ``cblas_sgemm``.
PyPI's ``scipy-openblas32/64`` (and the copy inside numpy/scipy) export only ``scipy_``-prefixed
names and cannot serve. On macOS MLX uses Accelerate and nothing is preloaded.
"""

from __future__ import annotations

import os
import re
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

BLAS_ENV_VAR = "EFFICIENTAI_BLAS"
REQUIRED_SYMBOL = "cblas_sgemm"

SOURCE_ACCELERATE = "accelerate"
SOURCE_REFERENCE = "reference"
SOURCE_DEBIAN_OPENBLAS = "debian-openblas"
SOURCE_SYSTEM_OPENBLAS = "system-openblas"
SOURCE_PYPI_MKL = "pypi-mkl"
SOURCE_PYPI_OPENBLAS = "pypi-openblas"
PYPI_OPENBLAS_PACKAGE = "ngsolve_openblas"
# Links to the mlx wheel's libgfortran (and what it needs), for the PyPI OpenBLAS to find.
RUNTIME_LINKS_DIR = "efficientai-blas-runtime"
SOURCE_CONFIGURED = "configured"

_INSTALL_HINT = (
    "the project installs PyPI's ngsolve-openblas on Linux x86-64 (make setup); elsewhere "
    "install Debian's libopenblas0-pthread (apt-get install libopenblas0-pthread) or Intel "
    "oneMKL from PyPI (pip install mkl) for a fast BLAS"
)


@dataclass(frozen=True)
class BlasChoice:
    """The BLAS a training process uses: ``library`` is a path, or ``reference``/``accelerate``."""

    library: str
    source: str
    reason: str

    @property
    def preloads(self) -> bool:
        """Whether the training process gets ``library`` through ``LD_PRELOAD``."""
        return self.source not in (SOURCE_REFERENCE, SOURCE_ACCELERATE)

    def to_tags(self) -> dict[str, str]:
        """Run tags, so every training run records which BLAS produced it."""
        return {
            "blas.library": self.library,
            "blas.source": self.source,
            "blas.reason": self.reason,
        }


def describe_blas() -> BlasChoice:
    """The BLAS a process started with :func:`training_process_env` uses.

    Called inside that process, it also checks that the preloaded library is really mapped
    (``/proc/self/maps``), so the run's tags state what happened rather than what was planned.
    """
    choice = _select()
    if choice.preloads and _preload_requested_here(choice.library):
        if _mapped_here(choice.library):
            loaded = f"{choice.reason}; loaded in this process"
            return BlasChoice(choice.library, choice.source, loaded)
        return BlasChoice(
            SOURCE_REFERENCE,
            SOURCE_REFERENCE,
            f"LD_PRELOAD named {choice.library} but the loader did not map it; "
            "using the mlx wheel's reference BLAS",
        )
    return choice


def training_process_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the training child: ``base`` (default ``os.environ``) plus the preload.

    Unchanged when no verified fast BLAS exists or on macOS. An ``LD_PRELOAD`` already in
    ``base`` is kept, after ours.
    """
    env = dict(os.environ if base is None else base)
    choice = _select(env)
    if not choice.preloads:
        return env
    existing = env.get("LD_PRELOAD", "").strip()
    if choice.library not in re.split(r"[\s:]+", existing):
        env["LD_PRELOAD"] = f"{choice.library}:{existing}" if existing else choice.library
    if choice.library in _package_libraries(PYPI_OPENBLAS_PACKAGE):  # chosen or configured
        links = runtime_links()
        if links is not None:  # checked by _select; None only if the links vanished since
            paths = env.get("LD_LIBRARY_PATH", "")
            env["LD_LIBRARY_PATH"] = f"{links}:{paths}" if paths else links
    if "mkl_rt" in Path(choice.library).name:
        # MKL's default layer (Intel OpenMP) aborts the process when libiomp5 is not on the
        # loader path, and its OpenMP layers collapse on a busy machine with this model's small
        # GEMMs (measured: 3-4k samples/s vs 39-73k sequential); sequential needs nothing else.
        env.setdefault("MKL_THREADING_LAYER", "SEQUENTIAL")
    return env


def available_libraries() -> list[BlasChoice]:
    """Every verified fast BLAS found on this machine, in preference order (for comparisons)."""
    if not sys.platform.startswith("linux"):
        return []
    found: dict[str, BlasChoice] = {}
    for path, source in _candidates():
        if os.path.exists(path) and _unusable(path) is None:
            choice = BlasChoice(path, source, f"verified ({REQUIRED_SYMBOL} exported)")
            found.setdefault(os.path.realpath(path), choice)
    return list(found.values())


def _select(env: Mapping[str, str] | None = None) -> BlasChoice:
    """Pick the library per the module docstring's order; cheap (a few ``stat`` calls)."""
    env = os.environ if env is None else env
    if sys.platform == "darwin":
        return BlasChoice(SOURCE_ACCELERATE, SOURCE_ACCELERATE, "macOS: MLX links Apple Accelerate")
    if not sys.platform.startswith("linux"):
        return BlasChoice(
            SOURCE_REFERENCE, SOURCE_REFERENCE, f"no fast BLAS selection on {sys.platform}"
        )

    setting = env.get(BLAS_ENV_VAR, "auto").strip() or "auto"
    if setting == "reference":
        return BlasChoice(SOURCE_REFERENCE, SOURCE_REFERENCE, f"{BLAS_ENV_VAR}=reference")
    if setting != "auto":
        if not os.path.isabs(setting):
            raise ValueError(
                f"{BLAS_ENV_VAR}={setting!r}: expected 'auto', 'reference' or an absolute path "
                f"to a shared library exporting {REQUIRED_SYMBOL}"
            )
        problem = _unusable(setting)
        if problem:
            return BlasChoice(
                SOURCE_REFERENCE,
                SOURCE_REFERENCE,
                f"{BLAS_ENV_VAR}={setting} not used: {problem}; "
                "using the mlx wheel's reference BLAS",
            )
        return BlasChoice(setting, SOURCE_CONFIGURED, f"{BLAS_ENV_VAR} names a verified library")

    rejected: list[str] = []
    for path, source in _candidates():
        if not os.path.exists(path):
            continue
        problem = _unusable(path)
        if problem is None and source == SOURCE_PYPI_OPENBLAS and runtime_links() is None:
            problem = "no libgfortran.so.5 for it (the mlx wheel's copy was not found)"
        if problem is None:
            return BlasChoice(
                path, source, f"verified ({REQUIRED_SYMBOL} exported); preloaded for training only"
            )
        rejected.append(f"{path}: {problem}")
    detail = f" (rejected: {'; '.join(rejected)})" if rejected else ""
    return BlasChoice(
        SOURCE_REFERENCE,
        SOURCE_REFERENCE,
        f"no fast BLAS found{detail}; training uses the mlx wheel's reference BLAS "
        f"(correct but ~30x slower GEMM); {_INSTALL_HINT}",
    )


def _multiarch() -> str:
    return getattr(sys.implementation, "_multiarch", "") or f"{os.uname().machine}-linux-gnu"


def _candidates() -> list[tuple[str, str]]:
    """Known locations, best first: the distribution's OpenBLAS, then MKL from PyPI."""
    triplet = _multiarch()
    return [
        (f"/usr/lib/{triplet}/openblas-pthread/libopenblas.so.0", SOURCE_DEBIAN_OPENBLAS),
        (f"/usr/lib/{triplet}/openblas-openmp/libopenblas.so.0", SOURCE_DEBIAN_OPENBLAS),
        (f"/usr/lib/{triplet}/libopenblas.so.0", SOURCE_DEBIAN_OPENBLAS),
        ("/usr/lib64/libopenblasp.so.0", SOURCE_SYSTEM_OPENBLAS),
        ("/usr/lib64/libopenblas.so.0", SOURCE_SYSTEM_OPENBLAS),
        *((path, SOURCE_PYPI_OPENBLAS) for path in _package_libraries(PYPI_OPENBLAS_PACKAGE)),
        (os.path.join(sys.prefix, "lib", "libmkl_rt.so.3"), SOURCE_PYPI_MKL),
        (os.path.join(sys.prefix, "lib", "libmkl_rt.so.2"), SOURCE_PYPI_MKL),
    ]


def _package_folder(package: str) -> Path | None:
    """Where an installed package lies, found without importing it (``ngsolve_openblas``'s
    ``__init__`` would load its library into this process)."""
    from importlib.util import find_spec

    try:
        spec = find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def pypi_openblas_library() -> str | None:
    """The PyPI OpenBLAS that ``make setup`` installs on Linux x86-64 (None where it is not):
    what a fresh machine without a distribution OpenBLAS trains with."""
    found = _package_libraries(PYPI_OPENBLAS_PACKAGE)
    return found[0] if found else None


def _package_libraries(package: str) -> list[str]:
    folder = _package_folder(package)
    return sorted(str(p) for p in folder.glob("libopenblas*.so*")) if folder is not None else []


def runtime_links() -> str | None:
    """A folder holding ``libgfortran.so.5`` (and its ``libquadmath``) as links to the mlx
    wheel's copies, made once under ``<sys.prefix>/lib``; None when they cannot be found or
    made. Only the training child gets it on ``LD_LIBRARY_PATH``."""
    mlx = _package_folder("mlx")
    libs = mlx.parent / "mlx_cpu.libs" if mlx is not None else None
    gfortran = sorted(libs.glob("libgfortran-*.so.5*")) if libs is not None else []
    if not gfortran or libs is None:
        return None
    folder = Path(sys.prefix) / "lib" / RUNTIME_LINKS_DIR
    wanted = {"libgfortran.so.5": gfortran[0]}
    wanted.update({p.name: p for p in libs.glob("libquadmath-*.so*")})
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, target in wanted.items():
            link = folder / name
            if not (link.is_symlink() and os.readlink(link) == str(target)):
                tmp = folder / f".{name}.{os.getpid()}"
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(target)
                os.replace(tmp, link)
    except OSError:
        return None
    return str(folder)


def _unusable(path: str) -> str | None:
    """Why ``path`` cannot be preloaded, or None when it can (cached per file version)."""
    if re.search(r"[\s:]", path):
        return "LD_PRELOAD cannot carry a path containing spaces or colons"
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot stat ({exc.strerror})"
    return _verify_elf(os.path.realpath(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=32)
def _verify_elf(path: str, size: int, mtime_ns: int) -> str | None:
    """ELF checks without loading: same class/endianness/machine as Python, defines the symbol."""
    del size, mtime_ns  # cache key only: a replaced file is checked again
    try:
        own = _elf_ident(sys.executable)
        with open(path, "rb") as f:
            header = f.read(64)
            if _ident(header) is None:
                return "not an ELF file"
            if _ident(header) != own:
                return "built for another architecture"
            if header[4] != 2 or header[5] != 1:
                return "only 64-bit little-endian ELF is supported"
            (e_shoff,) = struct.unpack_from("<Q", header, 0x28)
            e_shentsize, e_shnum = struct.unpack_from("<HH", header, 0x3A)
            f.seek(e_shoff)
            table = f.read(e_shentsize * e_shnum)
            sections = [
                struct.unpack_from("<IIQQQQIIQQ", table, i * e_shentsize) for i in range(e_shnum)
            ]
            dynsym = next((s for s in sections if s[1] == 11), None)  # SHT_DYNSYM
            if dynsym is None:
                return "no dynamic symbol table"
            strtab = sections[dynsym[6]]
            f.seek(strtab[4])
            names = f.read(strtab[5])
            f.seek(dynsym[4])
            symbols = f.read(dynsym[5])
    except OSError as exc:
        return f"cannot read ({exc.strerror})"
    except (struct.error, IndexError):
        return "malformed ELF file"
    wanted = REQUIRED_SYMBOL.encode() + b"\0"
    # Linkers merge string tails ("scipy_cblas_sgemm" can hold "cblas_sgemm"): collect every
    # offset where the exact name starts and ends.
    offsets = {m.start() for m in re.finditer(re.escape(wanted), names)}
    for st_name, st_info, _other, st_shndx, _value, _size in struct.iter_unpack("<IBBHQQ", symbols):
        if st_name in offsets and st_shndx != 0 and (st_info & 0xF) in (2, 10):  # FUNC, IFUNC
            return None
    return f"does not export {REQUIRED_SYMBOL}"


def _ident(header: bytes) -> tuple[int, int, int] | None:
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    endian = "<" if header[5] == 1 else ">"
    (machine,) = struct.unpack_from(f"{endian}H", header, 18)
    return header[4], header[5], machine


@lru_cache(maxsize=1)
def _elf_ident(executable: str) -> tuple[int, int, int] | None:
    with open(os.path.realpath(executable), "rb") as f:
        return _ident(f.read(20))


def _preload_requested_here(library: str) -> bool:
    preload = os.environ.get("LD_PRELOAD", "")
    return library in re.split(r"[\s:]+", preload)


def _mapped_here(library: str) -> bool:
    """Whether ``library`` is mapped into this process (Linux only)."""
    real = os.path.realpath(library)
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return real in maps or library in maps
