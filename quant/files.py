"""The output policy of every command: where outputs may go, what they may replace, how they land.

- Names are names: an output name given by the user (``--name``) or made from one (an
  artifact's stem) is one file name, no folder, no leading dot, at most 255 bytes
  (:func:`check_name`); outputs stay in their output folder.
- Nothing of the user's is replaced: a target that exists is replaced only if this project
  wrote it and nobody changed it since, as recorded in the folder's ledger
  ``.mobileformer-outputs.json`` (name -> SHA-256 of what we wrote). Anything else there (a
  file we did not write or that was edited, a link, a folder, a device) is refused with
  :class:`OutputError` before it is touched (:func:`check_replaceable`); commands call it
  for every target before their long work.
- Inputs are not outputs: an output never replaces what its command reads (the artifact scored,
  its manifest, a result, the checkpoint a run starts from), though the ledger would let a file
  of ours through (:func:`check_not_an_input`).
- Atomic: outputs are written under a temporary name beside their target and renamed; all
  outputs of one command appear together or not at all; nothing this run did not create
  is ever removed. Publishing into a folder holds a lock on it, so concurrent runs keep the
  ledger whole.

Temporary names carry this tool's tag, the host and the process id
(``.mobileformer-<kind>-<host>-<pid>-<random>``), so that what a killed run left behind
is recognised and removed by the next run that writes to the same folder, and never
mistaken for output.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

TEMP_TAG = ".mobileformer-"
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
_TEMP_NAME = re.compile(r"^\.mobileformer-(?:staging|tmp)-(?P<host>\w+)-(?P<pid>\d+)-\w+(?:\.tmp)?$")
LEDGER = ".mobileformer-outputs.json"
LEDGER_FORMAT = "mobileformer-outputs/1"
MAX_NAME_BYTES = 255  # NAME_MAX of Linux and macOS file systems


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


def check_name(name: str, option: str = "--name", suffix: str = "") -> str:
    """``name`` if it is one file name (with ``suffix``, the longest extension the command adds),
    else :class:`OutputError`: a separator or ``..`` would write outside the output folder."""
    bad = (not name or name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\\0")
           or any(ord(c) < 32 for c in name))
    if bad:
        raise OutputError(f"{option} must be a plain file name (no folder, no leading dot), got {name!r}")
    if len((name + suffix).encode(errors="surrogatepass")) > MAX_NAME_BYTES:
        raise OutputError(f"{option} is too long for a file name: {name + suffix!r} is over {MAX_NAME_BYTES} bytes")
    return name


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a link"), (stat.S_ISREG, "a file"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def read_ledger(folder: Path) -> dict[str, list[str]]:
    """What this project wrote in ``folder``: output name -> its SHA-256 (two while a replacement is
    under way, so that a run killed mid-way leaves either content recognised); empty without a ledger."""
    path = Path(folder) / LEDGER
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as e:
        raise OutputError(f"cannot read {path}: {e.strerror}") from None
    try:
        if not stat.S_ISREG(mode):
            raise ValueError
        ledger = json.loads(path.read_bytes())
        files = ledger["files"]
        if ledger["format"] != LEDGER_FORMAT or not all(
                isinstance(k, str) and isinstance(v, list) and all(isinstance(h, str) for h in v) for k, v in files.items()):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise OutputError(f"{path} is not mobileformer's record of its outputs ({LEDGER_FORMAT}): move it away") from None
    return dict(files)


def check_replaceable(target: str | Path, is_dir: bool, ledger: dict[str, list[str]] | None = None) -> None:
    """Raise :class:`OutputError` unless writing ``target`` (a folder if ``is_dir``) can only
    replace an output of ours that nobody changed: same kind, and its SHA-256 in the ledger."""
    target = Path(target)
    try:
        mode = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror}") from None
    if target.name == LEDGER:
        raise OutputError(f"{target}: this name is mobileformer's record of its outputs; choose another name")
    if not (stat.S_ISDIR(mode) if is_dir else stat.S_ISREG(mode)):
        raise OutputError(f"{target} exists and is {_kind(mode)}: refusing to replace it (choose another name)")
    recorded = (read_ledger(target.parent) if ledger is None else ledger).get(target.name, [])
    if not recorded or sha256_of(target) not in recorded:  # a file we never wrote is not read
        raise OutputError(f"{target} exists and was not written by mobileformer (or was changed since): refusing to "
                          "replace it; move it away or choose another name")


def check_not_an_input(output: str | Path, inputs: Mapping[Path, str], option: str) -> None:
    """Raise :class:`OutputError` if ``output`` is one of ``inputs`` (path -> what it is to the
    command, for the message): the same file, by any path or link to it."""
    for given, role in inputs.items():
        try:
            same = os.path.samefile(output, given)
        except OSError:  # either is missing: nothing read would be replaced
            same = False
        if same:
            raise OutputError(f"{option} {output} is {role}: choose another name")


def check_outputs(targets: list[Path], is_dir: Collection[Path] = ()) -> None:
    """:func:`check_replaceable` for every target of a command, before its long work; two
    targets of one name (two artifacts in one folder) are refused too."""
    seen: set[Path] = set()
    for target in targets:
        if target in seen:
            raise OutputError(f"two outputs would be written to {target}")
        seen.add(target)
        check_replaceable(target, target in is_dir)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_ledger(folder: Path, files: dict[str, list[str]]) -> None:
    tmp = folder / f"{_temp_prefix('tmp')}{secrets.token_hex(6)}.tmp"  # created like any output (umask), not 0600
    try:
        with open(tmp, "x") as f:
            json.dump({"format": LEDGER_FORMAT, "files": dict(sorted(files.items()))}, f, indent=1)
        os.replace(tmp, folder / LEDGER)
    finally:
        tmp.unlink(missing_ok=True)


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
    """Rename ``source`` over ``target``; a folder (an ``.mlpackage``) is swapped in, then the old one removed."""
    if not (source.is_dir() and target.exists()):
        os.replace(source, target)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=_temp_prefix("tmp")))
    os.replace(target, old / target.name)  # kept until the new one is in place
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)


def _publish(moves: list[tuple[Path, Path]]) -> None:
    """Move each ``(source, target)`` (targets in one folder) into place and record them in the
    folder's ledger; every target is checked, under the folder's lock, before the first move."""
    if not moves:
        return
    folder = moves[0][1].parent
    with _folder_lock(folder):
        ledger = read_ledger(folder)
        for source, target in moves:
            check_replaceable(target, source.is_dir(), ledger)
        new = {target.name: sha256_of(source) for source, target in moves}
        _write_ledger(folder, {**ledger, **{name: [*ledger.get(name, [])[-1:], digest] for name, digest in new.items()}})
        for source, target in moves:
            _replace(source, target)
        ledger.update({name: [digest] for name, digest in new.items()})
        _write_ledger(folder, {name: digests for name, digests in ledger.items() if os.path.lexists(folder / name)})


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target``.

    Works for files and directories (``.mlpackage``). On any exception the temporary
    is removed and ``target`` is left as it was. A target that is not an unchanged output
    of ours is refused before any work.
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
            _publish([(tmp, target)])
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def _strict(obj: object) -> object:
    """``obj`` with infinities as the strings ``"inf"``/``"-inf"`` (an SQNR of identical outputs)."""
    if isinstance(obj, float) and math.isinf(obj):
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    return obj


def json_text(obj: object) -> str:
    """Strict JSON, which every reader takes (no bare ``NaN`` or ``Infinity``): infinities are
    written as ``"inf"``/``"-inf"``, and a NaN is a bug upstream, raised as ``ValueError``
    before anything is written."""
    return json.dumps(_strict(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"


def write_json_atomic(target: str | Path, obj: object) -> None:
    write_bytes_atomic(target, json_text(obj).encode())


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
            # the stage's own ledger (outputs written into it atomically) is not an output
            _publish([(item, out_dir / item.name) for item in sorted(stage.iterdir()) if item.name != LEDGER])
    finally:
        shutil.rmtree(stage, ignore_errors=True)
