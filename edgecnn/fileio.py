"""Atomic file writes and hashing.

Every artifact edgecnn writes goes through :func:`atomic_path`: the content is
written to a temporary file in the same folder, flushed to disk, then renamed
over the target. An interrupted or failing run therefore leaves the previous
artifact intact, never a half-written one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import EdgecnnError, ModelFileError

TMP_PREFIX = ".edgecnn-tmp-"


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check that files can be written in it."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise EdgecnnError(f"output folder {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=_tmp_prefix()):
            pass
    except OSError as exc:
        raise EdgecnnError(f"cannot write to output folder {folder}: {_why(folder, exc)}") from exc
    return folder


def _why(folder: Path, exc: OSError) -> str:
    """The reason a folder cannot be created or written, naming a file that is in the way."""
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    return f"{blocker} is a file, not a folder" if blocker else str(exc.strerror or exc)


def ensure_writable_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """Check up front that ``path`` can be written, so a long run does not fail at its very end."""
    path = Path(path)
    if path.is_dir():
        raise EdgecnnError(f"{what} {path} is a folder; give a file name")
    ensure_writable_dir(path.parent if str(path.parent) else Path("."))
    return path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it over ``target`` on success.

    The temporary name keeps the target's suffix (``suffix`` overrides it) because
    some writers (Keras, ONNX) choose the format from the extension.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(target.parent)
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=_tmp_prefix() + target.stem + "-",
            suffix=suffix if suffix is not None else target.suffix,
        )
    except OSError as exc:
        raise EdgecnnError(f"cannot write {target}: {_why(target.parent, exc)}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise EdgecnnError(f"writing {target} produced no data")
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        reason = f"{target} is a folder" if target.is_dir() else exc.strerror or exc
        raise EdgecnnError(f"cannot write {target}: {reason}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _tmp_prefix() -> str:
    """Temp names carry the writer's pid, so a later run can tell abandoned ones."""
    return f"{TMP_PREFIX}{os.getpid()}-"


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete temp files whose writer no longer runs (it was killed mid-write)."""
    removed = []
    for tmp in Path(folder).glob(TMP_PREFIX + "*"):
        pid = tmp.name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but is not ours (EPERM)
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file, turning every failure into a one-line error naming it."""
    path = Path(path)
    if path.is_dir():
        raise EdgecnnError(f"{what} {path} is a folder, not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgecnnError(f"{what} {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgecnnError(f"cannot read {what} {path}: {exc}") from exc
    if not text.strip():
        raise EdgecnnError(f"{what} {path} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EdgecnnError(f"{what} {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc


def write_npy(target: str | os.PathLike, array: Any) -> Path:
    import io

    import numpy as np

    buffer = io.BytesIO()  # np.save to a real file reports a full disk as a bare short count, not ENOSPC
    np.save(buffer, array, allow_pickle=False)
    return write_bytes(target, buffer.getvalue())


def write_npz(target: str | os.PathLike, **arrays: Any) -> Path:
    """A compressed .npz of named arrays, written atomically (never pickled)."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return write_bytes(target, buffer.getvalue())


def read_npy(path: str | os.PathLike) -> Any:
    """Load a .npy file without ever unpickling (a pickled one is refused); one-line errors."""
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EdgecnnError(f"cannot read {path}: {exc}") from exc


def format_bytes(size: int | None) -> str:
    """A file size for people, in decimal units as every edgecnn table prints it ("1.34 MB", "336 kB")."""
    if size is None:
        return "—"
    if size >= 1_000_000:
        return f"{size / 1e6:.2f} MB"
    return f"{size / 1e3:.0f} kB" if size >= 1_000 else f"{size} B"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_model_bytes(path: Path, kind: str) -> bytes:
    """The model file's bytes, or a one-line error for a missing, empty or unreadable file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} not found") from None
    except IsADirectoryError:
        raise ModelFileError(f"model path {path} is a folder, expected a {kind} file") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    if not data:
        raise ModelFileError(f"model file {path} is empty (0 bytes)")
    return data
