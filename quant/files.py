"""Writing artifacts so that a failure never leaves a half-written file behind.

Rules (docs/design): outputs are written under a temporary name beside their target and
renamed; all outputs of one command appear together or not at all; nothing this run did
not create is ever removed. A target that exists must be a regular file (replaced by the
rename) or an ``.mlpackage`` this tool wrote (recognised by its structure); anything else
(a folder, a link, a device) is refused with :class:`OutputError`.

Temporary names carry this tool's tag, the host and the process id
(``.mobileformer-<kind>-<host>-<pid>-<random>``), so that what a killed run left behind
is recognised and removed by the next run that writes to the same folder, and never
mistaken for output.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

TEMP_TAG = ".mobileformer-"
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
_TEMP_NAME = re.compile(r"^\.mobileformer-(?:staging|tmp)-(?P<host>\w+)-(?P<pid>\d+)-\w+(?:\.tmp)?$")
# What coremltools writes: ``Manifest.json`` and ``Data/``, every item authored by it.
_MLPACKAGE_AUTHOR = "com.github.apple.coremltools"


class OutputError(UserError):
    """The output location cannot be written."""


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and prove it is writable, with one clear error otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=f"{TEMP_TAG}tmp-{_HOST}-{os.getpid()}-"):
            pass
    except OSError as e:
        raise OutputError(f"cannot write to output directory {path}: {e.strerror or e}") from None
    return path


def _temp_prefix(kind: str) -> str:
    return f"{TEMP_TAG}{kind}-{_HOST}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove what runs of this tool on this host that are no longer alive left in ``folder``."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or match["host"] != _HOST or _pid_alive(int(match["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def is_our_mlpackage(path: Path) -> bool:
    """An ``.mlpackage`` as coremltools writes it: ``Manifest.json`` listing coremltools items, and ``Data/``."""
    if path.suffix != ".mlpackage" or path.is_symlink() or not path.is_dir():
        return False
    if sorted(p.name for p in path.iterdir()) != ["Data", "Manifest.json"]:
        return False
    try:
        manifest = json.loads((path / "Manifest.json").read_text())
        items = manifest["itemInfoEntries"].values()
        return bool(items) and manifest["rootModelIdentifier"] in manifest["itemInfoEntries"] and all(
            item["author"] == _MLPACKAGE_AUTHOR and (path / "Data" / item["path"]).exists() for item in items)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a link"), (stat.S_ISREG, "a file"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def check_replaceable(target: Path, is_dir: bool) -> None:
    """Raise :class:`OutputError` unless writing ``target`` (a folder if ``is_dir``) can only
    replace an earlier output of ours: a regular file by a file, our ``.mlpackage`` by a folder."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if is_our_mlpackage(target) if is_dir else stat.S_ISREG(mode):
        return
    raise OutputError(f"{target} exists and is {_kind(mode)}: refusing to replace it (choose another name)")


@contextmanager
def _disk_errors(where: Path) -> Iterator[None]:
    """A full disk or quota is the user's to fix: say so as an :class:`OutputError`."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT) or isinstance(e, OutputError):
            raise
        raise OutputError(f"cannot write to {where}: {e.strerror}") from None


def _replace(source: Path, target: Path) -> None:
    """Rename ``source`` over ``target``; a folder (our ``.mlpackage``) is swapped in, then the old one removed."""
    check_replaceable(target, source.is_dir())
    if not (source.is_dir() and target.exists()):
        os.replace(source, target)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=_temp_prefix("tmp")))
    os.replace(target, old / target.name)  # kept until the new one is in place
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target``.

    Works for files and directories (``.mlpackage``). On any exception the temporary
    is removed and ``target`` is left as it was. A target that is not a regular file
    (nor an ``.mlpackage`` of ours) is refused before any work.
    """
    target = Path(target)
    check_replaceable(target, target.is_dir())
    remove_stale_temporaries(target.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=_temp_prefix("tmp"), suffix=".tmp")
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        with _disk_errors(target):
            yield tmp
        _replace(tmp, target)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(target: str | Path, obj: object) -> None:
    write_bytes_atomic(target, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative names and contents, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def size_of(path: str | Path) -> int:
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


@contextmanager
def staged_outputs(out_dir: str | Path) -> Iterator[Path]:
    """A private staging folder inside ``out_dir``; its files move into ``out_dir`` only on success.

    Everything a command writes goes here first, so a failure at any stage (lowering,
    validation, ``--strict``, a full disk) leaves ``out_dir`` exactly as it was. Every
    target is checked before the first one is moved, so outputs appear together or not
    at all. Staging that killed runs left in ``out_dir`` is removed first.
    """
    out_dir = Path(out_dir)
    remove_stale_temporaries(out_dir)
    try:
        stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=_temp_prefix("staging")))
    except OSError as e:
        raise OutputError(f"cannot write to output directory {out_dir}: {e.strerror or e}") from None
    try:
        with _disk_errors(out_dir):
            yield stage
        items = sorted(stage.iterdir())
        for item in items:
            check_replaceable(out_dir / item.name, item.is_dir())
        for item in items:
            _replace(item, out_dir / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
