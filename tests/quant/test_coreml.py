"""Core ML export: the .mlpackage end to end (tiny variant), its MIL census, and content-derived item ids."""
import json

import pytest

from quant.coreml import _deterministic_manifest


def _package(root, ids, weights=b"w1"):
    data = root / "Data" / "com.apple.CoreML"
    (data / "weights").mkdir(parents=True)
    (data / "model.mlmodel").write_bytes(b"model")
    (data / "weights" / "weight.bin").write_bytes(weights)  # real models keep weights in a folder
    entries = {ids[0]: {"path": "com.apple.CoreML/model.mlmodel", "name": "model.mlmodel"},
               ids[1]: {"path": "com.apple.CoreML/weights", "name": "weights"}}
    (root / "Manifest.json").write_text(json.dumps({"itemInfoEntries": entries, "rootModelIdentifier": ids[0]}))
    _deterministic_manifest(root)
    return json.loads((root / "Manifest.json").read_text())


def test_same_content_same_identifiers_whatever_uuids_coremltools_drew(tmp_path):
    a = _package(tmp_path / "a", ["UUID-1", "UUID-2"])
    b = _package(tmp_path / "b", ["UUID-3", "UUID-4"])
    assert a == b and a["rootModelIdentifier"] in a["itemInfoEntries"]
    assert not {"UUID-1", "UUID-2"} & set(a["itemInfoEntries"])


def test_other_weights_other_identifier(tmp_path):
    a = _package(tmp_path / "a", ["U1", "U2"])
    b = _package(tmp_path / "b", ["U1", "U2"], weights=b"w2")
    assert a["rootModelIdentifier"] == b["rootModelIdentifier"] and a != b


@pytest.mark.slow
def test_mlpackage_export_is_int8_deterministic_and_described(tiny_variant, tmp_path):
    from quant.export import main as export_main
    from quant.files import sha256_of

    pytest.importorskip("coremltools")
    shas = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert export_main(["--backend", "coreml", "--model", tiny_variant, "--calib-images", "2",
                            "--out", str(out), "--no-progress"]) == 0
        package = out / f"{tiny_variant}_coreml_int8.mlpackage"
        assert (package / "Manifest.json").is_file()
        manifest = json.loads((out / f"{tiny_variant}_coreml_int8.manifest.json").read_text())
        assert manifest["sha256"] == sha256_of(package)
        shas.append(manifest["sha256"])
    census = manifest["op_census"]
    assert census["int8_weight_tensors"] > 0 and census["int8_gemm_pct"] == 100.0
    # every attention matmul int8 (the stock Core ML quantizer leaves them float); the only
    # GEMMs without a runtime input are the Linears on the learned tokens
    assert census["ops"]["matmul"] == {"int8": 14} and census["ops"]["linear"].get("float", 0) == 0
    assert "macOS" in json.dumps(manifest["validation"])
    assert shas[0] == shas[1]  # same inputs, byte-identical package
