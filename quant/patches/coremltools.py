"""coremltools' patch (correctness): op names that depend on the program only, so that an export's bytes do."""
from __future__ import annotations

from collections import defaultdict
from contextlib import AbstractContextManager

from . import CORRECTNESS, scoped_patches

# The coremltools release :func:`fresh_op_names` was checked against.
PINNED = {"coremltools": "9.0"}


def fresh_op_names() -> AbstractContextManager[bool]:
    """coremltools 9.0 names the ops a pass creates from one process-wide counter per op type
    (``Builder.name_count``), so a second conversion in the same process writes ``quantize_890``
    where the first wrote ``quantize_298``. A counter of its own per conversion makes the names
    depend on the program only. There is no option for it: a scoped patch (:mod:`quant.patches`)."""
    from coremltools.converters.mil.mil import Builder

    return scoped_patches([(Builder, "name_count", lambda _: defaultdict(int), CORRECTNESS)], PINNED)
