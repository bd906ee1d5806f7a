"""The XNNPACK graphs inside a ``.pte``, read back from the file: what the instruction counter
needs to know about their nodes.

XNNPACK runs a concatenation of n inputs (and an even split into n outputs) as n copy
operators; with profiling on it reads the clock after each of them, but reports the node
as one operator named after its first object (``Copy (NC, X8)``). Only the graph says n.

Each node also carries the ``debug_handle`` of the edge-graph node it came from (65535,
``NO_HANDLE``, for the layout transposes the delegate inserts itself), which the export
manifest maps to a paper block (``profiling.debug_handle_blocks``).
"""
from __future__ import annotations

import heapq
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# XNNPACK node types run as one copy operator per input (concatenate) or output (even split).
_OBJECTS_PER_INPUT = re.compile(r"XNN(Concatenate|EvenSplit)(\d)$")
NO_HANDLE = 65535  # executorch's DEFAULT_DEBUG_HANDLE (backends/xnnpack/xnnpack_preprocess.py)
_INVALID_VALUE = 0xFFFFFFFF  # XNN_INVALID_VALUE_ID: an unused input slot
_OUTPUT = re.compile(r"output\d*_id$")


@dataclass(frozen=True)
class GraphNode:
    """One node of a delegate's XNNPACK graph: its type, debug handle, the values it reads and
    writes, and whether it bounds its output (a fused activation)."""

    kind: str
    debug_handle: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    bounded: bool = False


def _xnode(node: dict) -> GraphNode:
    fields = node["xnode_union"]
    ids = {k: v for k, v in fields.items() if k.endswith("_id") and v != _INVALID_VALUE}
    return GraphNode(node["xnode_union_type"], node.get("debug_handle", 0),
                 tuple(v for k, v in ids.items() if not _OUTPUT.match(k)),
                 tuple(v for k, v in ids.items() if _OUTPUT.match(k)), bool(node.get("output_min_max")))


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
        subprocess.run([_get_flatc_path(), "--json", "--strict-json", "--defaults-json", "--raw-binary", "-o", tmp, str(schema),
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


def nodes_per_delegate_call(artifact: Path) -> list[list[GraphNode]]:
    """The nodes of each delegate's XNNPACK graph in definition order (which XNNPACK keeps for
    its operators), per delegate call in the order the program makes them ([] for another backend)."""
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
        calls.append([_xnode(node) for node in _delegate_graph(payload)["xnodes"]])
    return calls


_UNARY = {"sigmoid", "clamp", "floor", "ceiling", "squareroot", "hardswish", "leakyrelu", "negate", "square", "elu",
          "abs", "reciprocalsquareroot", "log", "gelu", "tanh", "exp", "sin", "cos"}
# Operator names (before " (") whose node type is spelled otherwise in the graph; by default
# "Reciprocal Square Root" runs an XNNReciprocalSquareRoot node. XNNPACK runs a 1x1
# convolution as a fully-connected operator, a multiply of a value by itself as a square
# ("Mean Squared" when a mean reads it), and a float unary op between two Converts, or two
# Converts alone (int8 -> float -> int8 of other parameters), as one int8 op that its 1.5.1
# profiler names "Invalid Unary Op" (seen for GELU, and for the requantization of a batch
# matmul's right operand to zero point 0).
_RUN_BY = {
    "invalidunaryop": _UNARY | {"convert"},
    "convolution": {"conv2d", "depthwiseconv2d"}, "fullyconnected": {"fullyconnected", "conv2d"},
    "deconvolution": {"convtranspose2d"}, "copy": {"concatenate", "evensplit", "copy"},
    "transpose": {"statictranspose"}, "slice": {"staticslice"}, "divide": {"div"},
    "mean": {"globalavgpooling2d", "staticmean"}, "meansquared": {"globalavgpooling2d", "staticmean"},
    "square": {"square", "multiply"}, "constantpad": {"staticconstantpad"}, "maxpooling": {"maxpooling2d"},
    "averagepooling": {"avgpooling2d"},
}


def runs(operator: str, kind: str) -> bool:
    """Whether an operator event named ``operator`` (``Convolution (NHWC, QC8) IGEMM``) can run a node of type ``kind``."""
    op = operator.split(" (")[0].replace(" ", "").lower()
    node = re.sub(r"\d+$", "", kind.removeprefix("XNN")).lower()
    return node in _RUN_BY.get(op, {op})


# Nodes XNNPACK 1.5.1 was seen to run without an operator of their own, in every artifact of
# 26m, 96m and the tiny variant: a clamp fused into the op before it, a Convert around a float
# unary op, a reshape or transpose it elides or merges.
_ELIDED = {"XNNClamp", "XNNConvert", "XNNStaticReshape", "XNNStaticTranspose"}


def _elided(node: GraphNode) -> bool:
    """Whether XNNPACK may run ``node`` without an operator of its own (see :data:`_ELIDED`; a
    multiply of a value by itself is a square, fused into the mean that reads it)."""
    return node.kind in _ELIDED or (node.kind == "XNNMultiply" and len(set(node.inputs)) == 1)


def _match_in_order(operators: list[str], nodes: list[GraphNode]) -> tuple[list[int] | None, int | None]:
    """Events matched to ``nodes`` taken in this order; on failure, None and the position of the
    node that blocked (an event found only past a node XNNPACK does not elide), if one did."""
    matched: list[int] = []
    j = 0
    for name in operators:
        split_bounds = matched and nodes[matched[-1]].bounded and not runs(name, nodes[matched[-1]].kind)
        if split_bounds and runs(name, "XNNClamp") and (j == len(nodes) or not runs(name, nodes[j].kind)):
            matched.append(matched[-1])
            continue
        while j < len(nodes) and not runs(name, nodes[j].kind):
            if not _elided(nodes[j]):
                return None, j if any(runs(name, n.kind) for n in nodes[j + 1:]) else None
            j += 1
        if j == len(nodes):
            return None, None
        if nodes[j].kind == "XNNConvert" and j + 1 < len(nodes) and runs(name, nodes[j + 1].kind):
            j += 1  # "Invalid Unary Op": the Convert before the op it runs is elided
        matched.append(j)
        j += 1
    return matched, None


def _appended_last(nodes: list[GraphNode], moved: set[int]) -> list[int]:
    """The nodes in a stable topological order of the list ``nodes`` without ``moved`` followed
    by ``moved``: each step takes the first node of that list whose inputs are all written."""
    queue = [i for i in range(len(nodes)) if i not in moved] + sorted(moved)
    rank = {node: r for r, node in enumerate(queue)}
    writer = {value: i for i, node in enumerate(nodes) for value in node.outputs}
    waits_on = [{writer[v] for v in node.inputs if v in writer} for node in nodes]
    readers: dict[int, list[int]] = {}
    for i, writers in enumerate(waits_on):
        for w in writers:
            readers.setdefault(w, []).append(i)
    ready = [rank[i] for i in range(len(nodes)) if not waits_on[i]]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        node = queue[heapq.heappop(ready)]
        order.append(node)
        for reader in readers.get(node, []):
            waits_on[reader].discard(node)
            if not waits_on[reader]:
                heapq.heappush(ready, rank[reader])
    return order


def match_operators(operators: list[str], nodes: list[GraphNode]) -> list[int] | None:
    """The node each operator event of one delegate call runs, or None when they do not line up.

    XNNPACK creates one operator per node in definition order, except for the nodes it fuses
    into a neighbour (a clamp into the convolution before it, a square into the mean after
    it), which get none, and the bounded nodes whose bounds it cannot fuse (an int8
    multiply), which get a clamp operator after their own: each event takes the next node
    its name can run, skipping fused ones, and such a clamp goes with the node before it.

    One rewrite also reorders: in the stock int8 graph of 96m, XNNPACK replaces a Convert of
    an int8 map into float and the fp32 batch matmul reading it by new nodes (``Convert (NC,
    QS8, QC8)``, ``Batch Matrix Multiply (NC, F32, QC8W)``) placed after every later node that
    does not depend on them, as a stable topological sort of the graph with the new nodes
    appended would. So where events find a node only past one XNNPACK does not elide, that
    node and the elided nodes just before it that feed it are moved so, and the match is
    tried again. None when no such move lines them up: then no block is guessed.
    """
    moved: set[int] = set()
    order = list(range(len(nodes)))
    while True:
        matched, blocked = _match_in_order(operators, [nodes[i] for i in order])
        if matched is not None:
            return [order[m] for m in matched]
        if blocked is None or order[blocked] in moved:
            return None
        moved.add(order[blocked])
        k = blocked - 1
        while k >= 0 and _elided(nodes[order[k]]) and set(nodes[order[k]].outputs) & set(nodes[order[blocked]].inputs):
            moved.add(order[k])
            k -= 1
        order = _appended_last(nodes, moved)


def node_blocks(nodes: list[GraphNode], handle_blocks: dict[str, str]) -> list[str | None]:
    """Each node's paper block: its debug handle's; for a node without one (a layout transpose
    the delegate inserted, the quantization of the graph's input) that of the node that reads
    its output, else of the node that wrote its input; None if neither has one."""
    blocks = [handle_blocks.get(str(node.debug_handle)) for node in nodes]
    for i in reversed(range(len(nodes))):
        if blocks[i] is None:
            readers = (k for k in range(i + 1, len(nodes)) if set(nodes[k].inputs) & set(nodes[i].outputs))
            blocks[i] = next((blocks[k] for k in readers if blocks[k] is not None), None)
    for i in range(len(nodes)):
        if blocks[i] is None:
            writers = (k for k in reversed(range(i)) if set(nodes[k].outputs) & set(nodes[i].inputs))
            blocks[i] = next((blocks[k] for k in writers if blocks[k] is not None), None)
    return blocks

