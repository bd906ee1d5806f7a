"""The XNNPACK graphs inside a ``.pte``, read back from the file: what the instruction counter
needs to know about the nodes that XNNPACK runs as several operator objects.

XNNPACK runs a concatenation of n inputs (and an even split into n outputs) as n copy
operators; with profiling on it reads the clock after each of them, but reports the node
as one operator named after its first object (``Copy (NC, X8)``). Only the graph says n.
"""
from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

# XNNPACK node types run as one copy operator per input (concatenate) or output (even split).
_OBJECTS_PER_INPUT = re.compile(r"XNN(Concatenate|EvenSplit)(\d)$")


def _delegate_graph(payload: bytes) -> dict:
    """One XNNPACK delegate's flatbuffer as a dict (``flatc`` with the backend's schema)."""
    import executorch.backends.xnnpack.serialization as serialization
    from executorch.backends.xnnpack.serialization.xnnpack_graph_serialize import XNNHeader
    from executorch.exir._serialize._flatbuffer import _get_flatc_path

    header = XNNHeader.from_bytes(payload[:XNNHeader.EXPECTED_LENGTH])
    flatbuffer = payload[header.flatbuffer_offset:header.flatbuffer_offset + header.flatbuffer_size]
    schema = Path(next(iter(serialization.__path__))) / "schema.fbs"
    with tempfile.TemporaryDirectory(prefix="mf-xnngraph-") as tmp:
        (Path(tmp) / "graph.bin").write_bytes(flatbuffer)
        subprocess.run([_get_flatc_path(), "--json", "--strict-json", "--raw-binary", "-o", tmp, str(schema),
                        "--", str(Path(tmp) / "graph.bin")], check=True, capture_output=True)
        text = (Path(tmp) / "graph.json").read_text()
    # flatc writes non-finite floats (a clamp's bounds) as bare inf/nan, which JSON lacks.
    text = re.sub(r"(-?)\binf\b", r"\1Infinity", text)
    return json.loads(re.sub(r"-?\bnan\b", "NaN", text))


def copy_objects(node_types: list[str]) -> list[int]:
    """The operator objects of each node in ``node_types`` (graph order) that XNNPACK reports
    under a ``Copy`` name: n for a concatenation of n inputs or an even split into n, 1 for a copy."""
    objects = []
    for kind in node_types:
        match = _OBJECTS_PER_INPUT.match(kind)
        if match:
            objects.append(int(match.group(2)))
        elif kind == "XNNCopy":
            objects.append(1)
    return objects


def copy_objects_per_delegate_call(artifact: Path) -> list[list[int]]:
    """:func:`copy_objects` of each XNNPACK delegate, in the order the program calls them."""
    from executorch.exir._serialize._program import deserialize_pte_binary
    from executorch.exir.schema import DataLocation, DelegateCall

    program = deserialize_pte_binary(artifact.read_bytes()).program
    plan = program.execution_plan[0]
    calls = []
    for instruction in plan.chains[0].instructions:
        if not isinstance(instruction.instr_args, DelegateCall):
            continue
        delegate = plan.delegates[instruction.instr_args.delegate_index]
        if "xnnpack" not in delegate.id.lower() or delegate.processed.location != DataLocation.INLINE:
            calls.append([])
            continue
        payload = bytes(program.backend_delegate_data[delegate.processed.index].data)
        calls.append(copy_objects([node["xnode_union_type"] for node in _delegate_graph(payload)["xnodes"]]))
    return calls
