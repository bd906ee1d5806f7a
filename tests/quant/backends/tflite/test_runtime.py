"""quant.backends.tflite.runtime: LiteRT on the host (the export tests of test_tflite.py run its interpreter on real files)."""
from __future__ import annotations

import pytest

from quant.backends.tflite.runtime import INSTALL_HINT, TFLiteError, load_tflite_interpreter

pytest.importorskip("ai_edge_litert", reason=f"the tflite extra is not installed: {INSTALL_HINT}")


def test_a_file_that_is_not_a_tflite_model_is_refused(tmp_path):
    missing, junk = tmp_path / "missing.tflite", tmp_path / "junk.tflite"
    junk.write_bytes(b"\0" * 64)
    with pytest.raises(TFLiteError, match="model not found"):
        load_tflite_interpreter(missing)
    with pytest.raises(TFLiteError, match="is not a TFLite model"):
        load_tflite_interpreter(junk)


@pytest.mark.slow
def test_loading_litert_prints_nothing():
    """TensorFlow, imported by litert-torch, printed absl's "All log messages before absl::InitializeLog()"
    and its "oneDNN custom operations are on" line on the first import, ahead of every tflite export
    (a fresh process: in this one it may be imported already)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "from quant.backends.tflite.runtime import require_litert; require_litert()"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr[-2000:]
