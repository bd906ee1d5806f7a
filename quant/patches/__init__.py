"""Run-time patches of other libraries: one mechanism, scoped, on the pinned versions only.

A patch here works around an overhead or a bug of a pinned release of another library
that offers no extension point for it. :func:`scoped_patches` applies a set of them for
the duration of a ``with`` block and undoes them on exit, on error too. It applies
them only when the installed versions are the ones they were written and checked
against; on any other version, or with ``MOBILEFORMER_PATCHES=off`` in the environment,
the libraries run as shipped (speed patches only: correctness ones stay on, exports still work).
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from unittest import mock

SWITCH = "MOBILEFORMER_PATCHES"
OFF = ("off", "0", "no", "false")
SPEED, CORRECTNESS, MEASUREMENT = "speed", "correctness", "measurement"

# (owner, attribute, wrap, kind): the attribute becomes ``wrap(original)`` within the block; kind:
# SPEED (the same numbers, sooner: lowering, or the program it writes), CORRECTNESS (without it an
# export fails or is wrong) or MEASUREMENT (times the call and changes nothing: quant/patches/timers.py).
Patch = tuple[object, str, Callable[[Callable], Callable], str]


def installed_version(package: str) -> str | None:
    """The installed release of ``package``, without a local tag (``2.13.0+cpu`` -> ``2.13.0``)."""
    try:
        return importlib.metadata.version(package).split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return None


def patches_apply(pinned: Mapping[str, str], kind: str = SPEED) -> bool:
    """Whether patches checked against ``pinned`` (package -> release) may run here."""
    if kind == SPEED and os.environ.get(SWITCH, "on").strip().lower() in OFF:
        return _say_speed_patches_off()
    return all(installed_version(package) == release for package, release in pinned.items())


@functools.cache
def _say_speed_patches_off() -> bool:
    print(f"[patches] {SWITCH}=off: speed patches off (libraries as shipped: slower)", file=sys.stderr, flush=True)
    return False


@contextlib.contextmanager
def scoped_patches(patches: Iterable[Patch], pinned: Mapping[str, str]) -> Iterator[bool]:
    """Apply ``patches`` in order within the block, each if :func:`patches_apply` to its kind; yields whether all did."""
    patches = list(patches)
    applied = [patch for patch in patches if patches_apply(pinned, patch[3])]
    with contextlib.ExitStack() as stack:
        for owner, name, wrap, _ in applied:
            stack.enter_context(mock.patch.object(owner, name, wrap(getattr(owner, name))))
        yield len(applied) == len(patches)
