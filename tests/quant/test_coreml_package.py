"""The .mlpackage manifest: item identifiers derived from content, files and folders alike."""
import json

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
