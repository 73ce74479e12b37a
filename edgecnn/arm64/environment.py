"""The emulated arm64 environment: a Debian arm64 root with the runtimes' official aarch64 wheels, built once.

Nothing in it runs during the build: debootstrap downloads and unpacks the
Debian packages (its first stage only), and pip installs the aarch64 wheels
from the host, so the build takes a minute rather than the ten a configured
root takes under emulation. The root is cached in the user cache folder
(``$EDGECNN_ARM64_CACHE``, else ``$XDG_CACHE_HOME/edgecnn/arm64``) and reused
offline; each set of runtime versions gets its own site folder in it, made
when a bundle records versions not yet there. Each part is built beside its
final place and renamed into it, so a killed build leaves nothing half-made.
"""
from __future__ import annotations

import filecmp
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import EdgecnnError
from ..fileio import write_json
from .cpus import check_emulator

#: Debian 12: its Python 3.11 is one the runtimes publish aarch64 wheels for.
RELEASE = "bookworm"
PYTHON_VERSION = "3.11"
MIRROR = os.environ.get("EDGECNN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: The aarch64 wheel tags pip may choose; ai-edge-litert is tagged only manylinux_2_27, which pip does not
#: infer from the others.
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
#: The host tools the build and the runs need, and the Debian package of each.
TOOLS = {"debootstrap": "debootstrap", "dpkg-deb": "dpkg", "qemu-aarch64-static": "qemu-user-static",
         "chroot": "coreutils"}
#: The runtime packages whose recorded versions the site is built with.
PINNED = ("onnxruntime", "ai-edge-litert")
QEMU_IN_ROOT = "/usr/bin/qemu-aarch64-static"
ROOT_STAMP = ".edgecnn-root.json"
#: The cores the emulated CPU shows the runtimes; each run uses one thread (see .run), this is what they count.
PROCESSORS = 1
Say = Callable[[str], None]


@dataclass(frozen=True)
class Arm64Env:
    """A built root and one site folder in it (``site_in_root``: its path as the emulated Python sees it)."""

    root: Path
    site_in_root: str
    pins: dict[str, str]
    emulator: str  # "qemu-aarch64 version 7.2.22 (...)": what the results were computed by


def cache_dir() -> Path:
    if os.environ.get("EDGECNN_ARM64_CACHE"):
        return Path(os.environ["EDGECNN_ARM64_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgecnn" / "arm64"


def runtime_pins(recorded: dict[str, str | None] | None) -> dict[str, str]:
    """The versions to run with: the runtimes a bundle recorded, this machine's own for the rest."""
    pins = {name: version for name, version in (recorded or {}).items() if name in PINNED and version}
    for name in (*PINNED, "numpy"):
        if name not in pins:
            try:
                pins[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                pass
    return dict(sorted(pins.items()))


def check_host(cpus: list[str] = ()) -> None:
    """One line naming what is missing: root, a tool (with the apt package that brings it), or a QEMU that
    emulates ``cpus`` right."""
    if not sys.platform.startswith("linux"):
        raise EdgecnnError(f"arm64 emulation needs Linux (this is {sys.platform})")
    if os.geteuid() != 0:
        raise EdgecnnError("arm64 emulation needs root (it runs the emulated Python in a chroot): run it as root")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        packages = " ".join(dict.fromkeys(TOOLS[tool] for tool in missing))
        raise EdgecnnError(f"arm64 emulation needs {', '.join(missing)}: apt-get install {packages}")
    try:
        check_emulator(list(cpus), emulator_version())
    except ValueError as exc:
        raise EdgecnnError(str(exc)) from None


def emulator() -> str:
    """The host QEMU's first ``--version`` line: what the results are computed by."""
    out = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out.strip() else "qemu-aarch64"


def emulator_version() -> tuple[int, ...]:
    found = re.search(r"version (\d+)\.(\d+)", emulator())
    return tuple(map(int, found.groups())) if found else (0, 0)


def setup(recorded: dict[str, str | None] | None = None, *, say: Say = lambda line: None) -> Arm64Env:
    """The environment for a bundle's ``recorded`` runtime versions, built where it is missing."""
    from filelock import FileLock

    check_host()
    pins = runtime_pins(recorded)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / "build.lock")):  # one build at a time; under it, a killed build's leftovers go
        for leftover in [*cache.glob("root.partial-*"), *cache.glob("root/opt/edgecnn/*.partial-*")]:
            shutil.rmtree(leftover, ignore_errors=True)
        root = _root(cache, say)
        _place_emulator(Path(shutil.which("qemu-aarch64-static")).resolve(), root)
        site = _site(root, pins, say)
    return Arm64Env(root, site, pins, emulator())


def _root(cache: Path, say: Say) -> Path:
    root = cache / "root"
    if (root / ROOT_STAMP).is_file():
        return root
    say(f"building the Debian {RELEASE} arm64 root in {root} (downloads about 60 MB, once)")
    partial = Path(tempfile.mkdtemp(prefix="root.partial-", dir=cache))
    try:
        _run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase", "--include=python3,libstdc++6",
              RELEASE, str(partial), MIRROR], f"debootstrap of Debian {RELEASE} arm64 from {MIRROR}")
        archives = sorted((partial / "var" / "cache" / "apt" / "archives").glob("*.deb"))
        say(f"unpacking {len(archives)} Debian packages")
        for deb in archives:  # the first stage unpacks only the essential ones; configuring needs no emulation here
            _run(["dpkg-deb", "-x", str(deb), str(partial)], f"unpacking {deb.name}")
            deb.unlink()
        shutil.rmtree(partial / "debootstrap", ignore_errors=True)
        write_json(partial / ROOT_STAMP, {"release": RELEASE, "mirror": MIRROR})
        shutil.rmtree(root, ignore_errors=True)  # an unstamped leftover
        partial.rename(root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root


def _place_emulator(source: Path, root: Path) -> None:
    """The host's emulator in ``root``, replaced (atomically) when it is not the same file: after an upgrade of
    qemu-user-static the runs use the new one."""
    target = root / QEMU_IN_ROOT.lstrip("/")
    if target.is_file() and filecmp.cmp(source, target, shallow=False):
        return
    partial = target.with_name(target.name + ".partial")
    shutil.copy2(source, partial)
    os.replace(partial, target)


def _site(root: Path, pins: dict[str, str], say: Say) -> str:
    """The site folder (as the root sees it) holding edgecnn's base requirements, ``pins`` applied."""
    name = "site-py" + PYTHON_VERSION + "-" + "-".join(f"{k}{v}" for k, v in pins.items())
    in_root = f"/opt/edgecnn/{name}"
    site = root / in_root.lstrip("/")
    if site.is_dir():
        return in_root
    site.parent.mkdir(parents=True, exist_ok=True)
    requirements = base_requirements(pins)
    say(f"installing the aarch64 wheels of {', '.join(requirements)}")
    partial = Path(tempfile.mkdtemp(prefix=name + ".partial-", dir=site.parent))
    try:
        platforms = [arg for tag in PLATFORMS for arg in ("--platform", tag)]
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
              "--target", str(partial), "--only-binary=:all:", "--implementation", "cp",
              "--python-version", PYTHON_VERSION, *platforms, *requirements],
             f"pip install of the aarch64 wheels for Python {PYTHON_VERSION}", explain=_pip_reason)
        partial.rename(site)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return in_root


def core_root(env: Arm64Env, cpu: str) -> Path:
    """A root for runs on ``cpu`` alone: the base root hard-linked (no copy), its CPU files its own, so runs on
    different cores go in parallel without mounts. Made once; given ``env``'s site folder when it lacks it."""
    from filelock import FileLock

    from .cpus import write_cpu_files

    cores = env.root.parent / "cores"
    core = cores / cpu
    cores.mkdir(exist_ok=True)
    with FileLock(str(core) + ".lock"):
        for leftover in cores.glob(cpu + ".partial-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if not (core / ROOT_STAMP).is_file():
            shutil.rmtree(core, ignore_errors=True)
            partial = Path(tempfile.mkdtemp(prefix=cpu + ".partial-", dir=cores))
            try:
                _run(["cp", "-al", f"{env.root}/.", str(partial)], f"linking the {cpu} root")
                for shared in ("proc", "sys"):  # hard links would write through to every core's root
                    shutil.rmtree(partial / shared, ignore_errors=True)
                write_cpu_files(partial, cpu, PROCESSORS)
                partial.rename(core)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
        _link_emulator(env.root, core)
        site = core / env.site_in_root.lstrip("/")
        if not site.is_dir():
            _run(["cp", "-al", str(env.root / env.site_in_root.lstrip("/")), str(site)], f"linking {site.name}")
    return core


def _link_emulator(root: Path, core: Path) -> None:
    """The core root's emulator hard-linked to the base root's, which :func:`_place_emulator` may have replaced."""
    source, target = root / QEMU_IN_ROOT.lstrip("/"), core / QEMU_IN_ROOT.lstrip("/")
    if target.is_file() and os.path.samefile(source, target):
        return
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    os.link(source, partial)
    os.replace(partial, target)


def base_requirements(pins: dict[str, str]) -> list[str]:
    """edgecnn's base install (its deploy runtime), each pinned package at its pinned version."""
    declared = [req for req in importlib.metadata.requires("edgecnn") or [] if "extra ==" not in req]
    names = [re.split(r"[<>=!~;\s\[]", req, maxsplit=1)[0] for req in declared]
    return [f"{name}=={pins[name]}" if name in pins else req for name, req in zip(names, declared)]


def _pip_reason(output: str) -> str | None:
    found = re.search(r"No matching distribution found for (\S+)", output)
    return f"no aarch64 wheel for Python {PYTHON_VERSION} matches {found.group(1)}" if found else None


def _run(command: list[str], what: str, explain: Callable[[str], str | None] = lambda output: None) -> None:
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        output = done.stdout.strip()
        last = output.splitlines()[-1] if output else f"exit status {done.returncode}"
        raise EdgecnnError(f"{what} failed: {explain(output) or last}")
