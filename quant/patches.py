"""Run-time patches of other libraries: one mechanism, scoped, on the pinned versions only.

A patch here works around an overhead or a bug of a pinned release of another library
that offers no extension point for it. :func:`scoped_patches` applies a set of them for
the duration of a ``with`` block and undoes them on exit, on error too. It applies
them only when the installed versions are the ones they were written and checked
against; on any other version, or with ``MOBILEFORMER_PATCHES=off`` in the environment,
the libraries run as shipped.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from unittest import mock

SWITCH = "MOBILEFORMER_PATCHES"
OFF = ("off", "0", "no", "false")

# (owner, attribute, wrap): the attribute becomes ``wrap(original)`` within the block.
Wrapper = tuple[object, str, Callable[[Callable], Callable]]


def installed_version(package: str) -> str | None:
    """The installed release of ``package``, without a local tag (``2.13.0+cpu`` -> ``2.13.0``)."""
    try:
        return importlib.metadata.version(package).split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return None


def patches_apply(pinned: Mapping[str, str]) -> bool:
    """Whether patches checked against ``pinned`` (package -> release) may run here."""
    if os.environ.get(SWITCH, "on").strip().lower() in OFF:
        return False
    return all(installed_version(package) == release for package, release in pinned.items())


@contextlib.contextmanager
def scoped_patches(wrappers: Iterable[Wrapper], pinned: Mapping[str, str]) -> Iterator[bool]:
    """Apply ``wrappers`` in order within the block if :func:`patches_apply`; yields whether it did."""
    if not patches_apply(pinned):
        yield False
        return
    with contextlib.ExitStack() as stack:
        for owner, name, wrap in wrappers:
            stack.enter_context(mock.patch.object(owner, name, wrap(getattr(owner, name))))
        yield True
