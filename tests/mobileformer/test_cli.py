"""How every command ends: ``error:`` + exit 2 for the user's faults, tracebacks for ours, 130 on Ctrl-C."""
import errno

import pytest

from mobileformer.cli import UserError, check_input_size, command
from mobileformer.summary import main as summary_main


def _raising(exc: BaseException):
    @command
    def main(argv=None) -> int:
        raise exc

    return main


def test_user_error_is_one_line_and_exit_2(capsys):
    assert _raising(UserError("bad option"))([]) == 2
    assert capsys.readouterr().err == "error: bad option\n"


def test_a_full_disk_is_the_user_s_not_a_bug(capsys):
    assert _raising(OSError(errno.ENOSPC, "No space left on device", "out/r.json"))([]) == 2
    assert capsys.readouterr().err == "error: out/r.json: No space left on device\n"


@pytest.mark.parametrize("bug", [ValueError("internal"), KeyError("config"), OSError(errno.ENOENT, "gone")])
def test_internal_errors_keep_their_traceback(bug):
    with pytest.raises(type(bug)):
        _raising(bug)([])


def test_ctrl_c_prints_one_line_and_exits_130(capsys):
    assert _raising(KeyboardInterrupt())([]) == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize("size", [0, 16, 100, 2048, 100000])
def test_input_size_bounds_both_ways(size):
    with pytest.raises(UserError, match="multiple of 32 from 32 to 1024"):
        check_input_size(size)


def test_summary_refuses_a_huge_input_size_at_once(capsys):
    assert summary_main(["--input-size", "100000"]) == 2  # once it tried to allocate 120 GB
    assert "--input-size must be a multiple of 32 from 32 to 1024" in capsys.readouterr().err


def test_summary_errors_end_the_same_way(capsys):
    assert summary_main(["--layers"]) == 2
    assert capsys.readouterr().err == "error: --layers needs --variant\n"
    assert summary_main(["--variant", "27m"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown model '27m'")


def test_help_shows_every_default_once():
    import argparse

    from mobileformer.cli import HelpFormatter

    p = argparse.ArgumentParser(formatter_class=HelpFormatter)
    p.add_argument("--steps", type=int, default=300)  # no help text: once shown as a bare name
    p.add_argument("--threads", type=int, default=1, help="worker threads (0: the runtime's default)")
    p.add_argument("--size", type=int, default=224, help="input size (default: the variant's)")
    p.add_argument("--model", help="a variant")
    p.add_argument("--seed", type=int, default=0)  # 0 == False in Python: still a default to show
    p.add_argument("--smoothing", type=float, default=0.0, help="label smoothing")
    p.add_argument("--quiet", action="store_true")
    text = " ".join(p.format_help().split())
    assert "--seed SEED (default: 0)" in text and "label smoothing (default: 0.0)" in text
    assert "--quiet (default" not in text
    assert "--steps STEPS (default: 300)" in text
    assert "(0: the runtime's default) (default: 1)" in text
    assert "(default: the variant's) --model" in text and "a variant (default" not in text


def test_text_table_aligns_names_left_and_numbers_right():
    from mobileformer.cli import text_table

    assert text_table(["model", "ms"], [["a", 1.5], ["longer", 12]]).splitlines() == [
        "model    ms", "------  ---", "a       1.5", "longer   12"]


COMMANDS = ("mobileformer.summary", "quant.train", "quant.qat", "quant.export", "quant.evaluate", "quant.numerics",
            "quant.bench", "quant.report")


@pytest.mark.parametrize("module", COMMANDS)
@pytest.mark.parametrize("bad", [["--no-such-option"], ["--input-size", "x"]])
def test_an_option_the_parser_cannot_read_is_one_error_line_too(module, bad, capsys):
    """argparse's own errors (a typo, a value of the wrong type) end like every other bad input: one
    ``error:`` line saying where ``--help`` is, exit 2 (argparse prints its usage lines first)."""
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as stop:
        main(bad)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.startswith("error: ") and err.endswith(f" (see python -m {module} --help)\n") and err.count("\n") == 1, err
