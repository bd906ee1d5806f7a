"""quant.timing: phases nest and add up, library timers measure without changing what they wrap."""
from __future__ import annotations

import time


from quant import timing


def test_phase_is_a_no_op_without_timing():
    with timing.phase("anything"):
        pass  # nothing recorded, nothing raised


def test_phases_nest_and_add_up():
    with timing.timed(True) as t:
        with timing.phase("lower"):
            for _ in range(3):
                with timing.phase("pass"):
                    time.sleep(0.01)
        with timing.phase("validate"):
            pass
    record = t.to_json()
    phases = {tuple(p["path"]): p for p in record["phases"]}
    assert phases[("lower", "pass")]["calls"] == 3
    assert phases[("lower", "pass")]["s"] >= 0.03 and phases[("lower", "pass")]["cpu_s"] < 0.03  # asleep: no CPU
    assert phases[("lower",)]["s"] >= phases[("lower", "pass")]["s"]
    assert [p["path"] for p in record["phases"]][1:] == [["lower"], ["lower", "pass"], ["validate"]]
    assert record["total_s"] >= phases[("lower",)]["s"]
    assert set(record["load_average_1min"]) == {"start", "end"}
    assert timing._active.get() is None  # the command's timing ends with it


def test_table_shows_the_phases_that_matter():
    t = timing.Timing()
    with t.span("calibrate"):
        time.sleep(0.05)
    with t.span("tiny"):
        pass
    t.stop()
    table = t.table(min_share=0.1)
    assert "calibrate" in table and "tiny" not in table and "load average" in table


def test_switch(monkeypatch):
    monkeypatch.delenv(timing.SWITCH, raising=False)
    assert not timing.requested() and timing.requested(True)
    monkeypatch.setenv(timing.SWITCH, "1")
    assert timing.requested()
