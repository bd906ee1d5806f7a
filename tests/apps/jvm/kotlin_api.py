"""The public API of Kotlin classes as data: per class, its functions (name, static or not,
parameter types, which have defaults, return type) and constants. test_android_jvm.py checks
the fakes of the executorch-android AAR (org/pytorch/executorch/Fakes.kt) against the API of
the real Module.kt, Tensor.kt and EValue.kt, kept as executorch_android_api.json.

Regenerate that file from an ExecuTorch checkout (its sources are read, never committed):

    python -m tests.apps.jvm.kotlin_api <executorch checkout> <commit> > tests/apps/jvm/executorch_android_api.json
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

CLASSES = ("Module", "Tensor", "EValue")
SOURCE_DIR = "extension/android/executorch_android/src/main/java/org/pytorch/executorch"
HIDDEN = {"private", "internal", "protected"}
# Read with brackets and regular expressions: the tree-sitter Kotlin grammar of the test
# extra does not parse ExecuTorch's Tensor.kt and EValue.kt.
_FUN = re.compile(r"((?:@\w+(?:\([^)]*\))?\s+)*)((?:\w+\s+)*)fun\s+(\w+)\s*\(")
_CONST = re.compile(r"((?:\w+\s+)*)const\s+val\s+(\w+)\s*(?::\s*\w+\s*)?=\s*([^\n;]+)")


def _code_only(source: str) -> str:
    """``source`` with comments and string contents blanked (same length), so brackets count right."""
    out, i, n = list(source), 0, len(source)
    while i < n:
        two = source[i:i + 2]
        if two in ("//", "/*"):
            end = source.find("\n" if two == "//" else "*/", i + 2)
            end = n if end < 0 else end + (0 if two == "//" else 2)
        elif source[i] == '"':
            end = i + 1
            while end < n and source[end] != '"':
                end += 2 if source[end] == "\\" else 1
            i, end = i + 1, end  # keep the quotes
        else:
            i += 1
            continue
        for k in range(i, min(end, n)):
            if out[k] != "\n":
                out[k] = " "
        i = end + 1
    return "".join(out)


def _close(code: str, open_at: int) -> int:
    """Index of the bracket closing the one at ``open_at``."""
    pairs = {"{": "}", "(": ")", "<": ">"}
    opening, depth = code[open_at], 0
    for i in range(open_at, len(code)):
        depth += (code[i] == opening) - (code[i] == pairs[opening])
        if depth == 0:
            return i
    raise ValueError("unbalanced brackets")


def _split_top(text: str) -> list[str]:
    """``text`` split at commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += (c in "(<[{") - (c in ")>]}")
        if c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [p.strip() for p in parts + [text[start:]] if p.strip()]


def _parameter(text: str) -> tuple[str, bool]:
    """(type, has default) of one parameter, ``vararg`` kept: ``vararg inputs: EValue`` -> ``vararg EValue``."""
    text = re.sub(r"@\w+(\([^)]*\))?\s*", "", text)
    head, _, default = text.partition("=")
    name, _, kind = head.partition(":")
    return ("vararg " if name.split()[0] == "vararg" else "") + " ".join(kind.split()), bool(default.strip())


def _scope(text: str, code: str, body_start: int, body_end: int, static: bool, api: dict) -> None:
    """The members declared directly in the braces ``body_start``..``body_end`` (nested classes skipped)."""
    i = body_start + 1
    while i < body_end:
        if code[i] == "{":  # a nested body: a companion object's is a scope of static members
            if re.search(r"companion\s+object(\s+\w+)?\s*$", code[body_start:i]):
                _scope(text, code, i, _close(code, i), True, api)
            i = _close(code, i) + 1
            continue
        fun = _FUN.match(code, i) if (i == 0 or not (code[i - 1].isalnum() or code[i - 1] == "_")) else None
        if fun:
            paren = fun.end() - 1
            close = _close(code, paren)
            rest = re.match(r"\s*:\s*([\w.<>?, ]+?)\s*(?=[={\n])", code[close + 1:])
            words = set(fun.group(2).split())
            if not words & HIDDEN:
                params = [_parameter(p) for p in _split_top(code[paren + 1:close])]
                api["functions"].append({"name": fun.group(3), "static": static, "params": [p for p, _ in params],
                                         "defaults": [d for _, d in params],
                                         "returns": " ".join(rest.group(1).split()) if rest else "Unit"})
            i = close + 1
            continue
        const = _CONST.match(code, i) if code[i - 1] in " \n" else None
        if const and not set(const.group(1).split()) & HIDDEN:
            api["constants"][const.group(2)] = text[const.start(3):const.end(3)].strip()
            i = const.end()
            continue
        i += 1


def extract(source: bytes | str, classes: tuple[str, ...] = CLASSES) -> dict[str, dict]:
    """{class: {"functions": [...], "constants": {...}}} for the top-level ``classes`` in ``source``."""
    text = source.decode() if isinstance(source, bytes) else source
    code = _code_only(text)
    found = {}
    for m in re.finditer(r"^(?:[\w@]+[ \t\n]+)*class\s+(\w+)", code, re.M):
        if m.group(1) not in classes or m.group(1) in found:
            continue
        body = code.find("{", m.end())
        paren = code.find("(", m.end())
        if 0 <= paren < body:  # a primary constructor's parameters may hold braces of their own
            body = code.find("{", _close(code, paren))
        found[m.group(1)] = {"functions": [], "constants": {}}
        _scope(text, code, body, _close(code, body), False, found[m.group(1)])
    return found


def main(checkout: str, commit: str) -> None:
    api, digests = {}, {}
    for name in CLASSES:
        path = Path(checkout) / SOURCE_DIR / f"{name}.kt"
        data = path.read_bytes()
        digests[f"{SOURCE_DIR}/{name}.kt"] = hashlib.sha256(data).hexdigest()
        api.update(extract(data, (name,)))
    doc = {"what": "public API of the executorch-android AAR's Module, Tensor and EValue (tests/apps/jvm/kotlin_api.py)",
           "source": "https://github.com/pytorch/executorch", "commit": commit, "sha256": digests, "api": api}
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
