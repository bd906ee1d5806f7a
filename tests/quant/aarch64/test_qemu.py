"""quant.aarch64.qemu: the cache's all-or-nothing setup and reading the plugin's logs (no emulator)."""
from __future__ import annotations

from pathlib import Path

import pytest

from quant.aarch64 import qemu


def test_cache_entry_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEFORMER_CACHE", str(tmp_path))

    def broken(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise qemu.Arm64Error("interrupted")

    with pytest.raises(qemu.Arm64Error):
        qemu.cached("thing", broken)
    assert list((tmp_path / "arm64").iterdir()) == []
    made = qemu.cached("thing", lambda tmp: (tmp / "whole").write_text("y"))
    assert made == tmp_path / "arm64" / "thing" and (made / "whole").read_text() == "y"
    assert qemu.cached("thing", broken) == made  # present: not rebuilt


def test_block_log_gives_each_main_log_line_the_executions_just_before_it():
    entries = qemu.read_entries("5 0 100\n0 1 130\nend 0 150\n")
    assert entries == [("5", 0, 100), ("0", 1, 130), ("end", 0, 150)]
    code, executions = qemu.read_blocks("t 0 400000 d503201fd65f03c0\nx 0 50\ni 0\nt 1 400010 aa0103e0\n"
                                        "x 1 10\nx 0 5\ni 1\nx 1 10\ni end\n", len(entries))
    assert code == {0: "d503201fd65f03c0", 1: "aa0103e0"}
    assert executions == [{0: 50}, {1: 10, 0: 5}, {1: 10}]
