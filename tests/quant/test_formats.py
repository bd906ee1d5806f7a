"""quant.formats: the latency result and the export manifest, read, checked and mapped to paper blocks."""
import json
import math

from quant.formats import apply_manifest, block_totals, op_type, percentile, read_result, summarize
from tests.conftest import BLOCKS


def test_apply_manifest_is_idempotent(bench_results, tiny_exports):
    r = read_result(bench_results / f"{BLOCKS}.latency.json")
    manifest = json.loads((tiny_exports / f"{BLOCKS}.manifest.json").read_text())
    assert apply_manifest(json.loads(json.dumps(r)), manifest) == r


def test_summaries_percentiles_and_operator_types():
    assert summarize([4.0, 1.0, 2.0, 3.0]) == {"p50": 2.5, "p90": 3.7, "mean": 2.5, "min": 1.0, "max": 4.0}
    assert math.isnan(percentile([], 50))
    assert op_type("Convolution (NHWC, QC8) IGEMM #3") == "Convolution (NHWC, QC8) IGEMM" and op_type("Add #x") == "Add #x"
    ops = [{"block": "stem", "mean_ms": 1.0}, {"block": None, "mean_ms": 5.0}, {"block": "stem", "mean_ms": 0.5},
           {"block": "block 1", "mean_ms": 2.0}]
    assert block_totals(ops) == [{"name": "stem", "ms": 1.5}, {"name": "block 1", "ms": 2.0}]
