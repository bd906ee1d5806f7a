"""How every ``python -m`` command of the project ends: one error type, one wrapper; and the text table
the commands print.

It lives here, in the bottom layer, because ``mobileformer.summary`` is a command too and
``mobileformer`` never imports ``quant``; ``quant`` re-uses it (:mod:`quant.errors`).
A :class:`UserError` (bad option, bad file, full disk) ends the command with one
``error:`` line and exit code 2; anything else is a bug and keeps its traceback (exit 1);
Ctrl-C prints one line and exits 130.
"""
from __future__ import annotations

import argparse
import copy
import errno
import functools
import sys
from collections.abc import Callable
from typing import NoReturn

MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 1024  # the network downsamples by 32; above 1024 activations outgrow a phone

# OSErrors about the user's storage, not about our code: reported like a UserError.
# A path too long or through a file or a link loop is the user's path too.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.ENAMETOOLONG,
                            errno.ENOTDIR, errno.ELOOP})


class UserError(Exception):
    """Something the user can fix (an option, an input file, the output location): no traceback."""


def _shows_default(action: argparse.Action) -> bool:
    """By identity: ``0`` and ``0.0`` equal ``False`` but are defaults worth showing."""
    return not any(action.default is v for v in (None, False, argparse.SUPPRESS))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, also for options without a help text, except where
    there is none to show (``None``/``False``) or the help text already says what it is."""

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and action.option_strings and _shows_default(action):
            action = copy.copy(action)  # argparse shows no default for an option without a help text
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if not _shows_default(action) or "default:" in text or "(default)" in text:
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse ending bad options as every command ends bad input: one ``error:`` line naming
    ``--help`` (not argparse's usage lines, then ``prog: error:``), exit code 2; ``--help`` shows
    each option's default (:class:`HelpFormatter`)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


Main = Callable[[list[str] | None], int]


def command(main: Main) -> Main:
    """Wrap a command's ``main(argv) -> exit code`` so that every command ends the same way."""

    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except UserError as e:
            return _fail(str(e))
        except OSError as e:
            if e.errno not in STORAGE_ERRNOS:
                raise
            return _fail(f"{e.filename}: {e.strerror}" if e.filename else str(e.strerror))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return run


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def check_input_size(size: int | None, option: str = "--input-size") -> None:
    """An input size the network takes (a multiple of 32) and a machine can hold; None: the default."""
    if size is not None and (size % MIN_INPUT_SIZE or not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE):
        raise UserError(f"{option} must be a multiple of {MIN_INPUT_SIZE} from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE}, "
                        f"got {size}")


def check_at_least(minimum: int | float, **options: int | float | None) -> None:
    """Each of ``options`` (``name=value``, ``None`` skipped) is at least ``minimum``."""
    for name, value in options.items():
        if value is not None and not value >= minimum:  # NaN too
            raise UserError(f"--{name.replace('_', '-')} must be at least {minimum}, got {value}")


def text_table(header: list[str], rows: list[list[object]]) -> str:
    """``rows`` under ``header`` in aligned columns, a rule under the header: the first column left-aligned,
    the others right-aligned (numbers)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells: list[object]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
