"""MkDocs hooks of ``make docs`` (``mkdocs.yml``): the site is the repository's own pages, where
they are, and a reference generated from the code at build time, so that it cannot drift.

- Pages: ``README.md`` (the home page), ``CHANGELOG.md``, everything under ``docs/`` and the apps'
  and native core's READMEs, each at its path in the repository, so a link that works on the repository
  works on the site and the other way round; a repository file a page links to (a script) is
  copied beside them. A link to anything else fails the strict build.
- ``docs/commands.md``: the ``--help`` of every ``python -m`` command, found in the code (a
  top-level module of ``mobileformer/`` or ``quant/`` with an ``if __name__ == "__main__":``) and printed
  by the command itself in a child process, as ``python -m X --help`` prints it.
- ``docs/api.md``: docstrings of ``mobileformer`` and ``quant`` (their ``__all__``) and the
  public functions of each ``quant`` command, rendered by mkdocstrings from the source.

Run as a script with module names (what the hook does), it prints their ``--help`` as JSON.
Nothing here imports torch or our packages: the child process does, once, for all commands.
"""
from __future__ import annotations

import io
import json
import os
import re
import runpy
import subprocess
import sys
import warnings
from contextlib import redirect_stdout
from pathlib import Path, PurePosixPath

PAGES = ("README.md", "CHANGELOG.md", "docs/**/*", "android_demo/README.md", "ios_demo/README.md", "native/README.md")
PACKAGES = ("mobileformer", "quant")
COMMANDS_PAGE, API_PAGE = "docs/commands.md", "docs/api.md"
API_FILTERS = ["!^_", "!^log$"]  # not rendered: private names, dunders, module loggers
HELP_COLUMNS = "100"  # --help wraps to the terminal; the page is the same on every machine
MAIN_GUARD = re.compile(r"""^if __name__ == ["']__main__["']:""", re.MULTILINE)
LIST_ITEM = re.compile(r"([-*+]|1[.)]) ")  # what may start a list inside a paragraph (CommonMark)
# an inline Markdown link or image target, up to an optional title
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*)?\)")


def commands(root: Path) -> list[str]:
    """Every ``python -m`` command of our packages, read from the source (nothing imported): a
    top-level module (``quant.X``, ``mobileformer.X``; a backend's wing holds no command, only
    helpers run as child processes, such as LiteRT's AArch64 guest script)."""
    found = []
    for package in PACKAGES:
        for path in [*(root / package).glob("*.py"), *(root / package).glob("*/__main__.py")]:
            if path.name == "__main__.py" or MAIN_GUARD.search(path.read_text(encoding="utf-8")):
                parts = path.relative_to(root).with_suffix("").parts
                found.append(".".join(parts[:-1] if path.name == "__main__.py" else parts))
    return sorted(found)


def helps(modules: list[str]) -> dict[str, str]:
    """Run in the child: each module as ``python -m module --help`` would, its output kept."""
    out = {}
    for module in modules:
        buffer, sys.argv = io.StringIO(), [module, "--help"]
        with redirect_stdout(buffer), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*found in sys.modules", category=RuntimeWarning)  # imported before
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as e:
                code = e.code
        if code not in (0, None):
            raise SystemExit(f"python -m {module} --help exited with {code}")
        out[module] = buffer.getvalue()
    return out


def command_helps(root: Path) -> dict[str, str]:
    """``--help`` of every command of the code under ``root``, from one child process."""
    from mkdocs.exceptions import PluginError

    env = {**os.environ, "COLUMNS": HELP_COLUMNS, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    run = subprocess.run([sys.executable, __file__, *commands(root)], cwd=root, env=env, capture_output=True, text=True)
    if run.returncode:
        raise PluginError(f"the commands' --help failed:\n{run.stderr.strip()}")
    return json.loads(run.stdout.splitlines()[-1])  # the last line: a library may print before it


def commands_page(helps_by_module: dict[str, str]) -> str:
    lines = ["# Commands", "",
             "Every `python -m` command, its `--help` as the command prints it: generated from the parsers when "
             "the site is built (`scripts/docs_site.py`), so it is the code's.", ""]
    for module, text in helps_by_module.items():
        lines += [f"## `python -m {module}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(lines)


def api_page(modules: list[str]) -> str:
    """mkdocstrings directives: the packages' ``__all__``, then each ``quant`` command's public
    functions and classes (its ``main`` and parser are the command, on the commands page)."""
    lines = ["# Python API", "",
             "Docstrings rendered from the source when the site is built. The commands are on the "
             "[commands page](commands.md).", ""]
    directives = [(package, [f"filters: {json.dumps(API_FILTERS)}"]) for package in PACKAGES]
    directives += [(module, [f"filters: {json.dumps([*API_FILTERS, '!^main$', '!^build_parser$'])}"])
                   for module in modules if module.startswith("quant.")]
    for name, options in directives:
        lines += [f"::: {name}", "    options:", *(f"      {option}" for option in options), ""]
    return "\n".join(lines)


def linked_files(root: Path, page: str, text: str) -> set[str]:
    """Repository files (relative to ``root``) that the page ``page`` links to by a relative path."""
    found = set()
    for target in LINK.findall(text):
        path = target.split("#", 1)[0]
        if not path or "://" in path or path.startswith(("mailto:", "/")):
            continue
        resolved = (root / PurePosixPath(page).parent / path).resolve()
        if resolved.is_file() and resolved.is_relative_to(root.resolve()):
            found.add(resolved.relative_to(root.resolve()).as_posix())
    return found


def site_sources(root: Path) -> list[str]:
    """The pages (:data:`PAGES`) and the repository files they link to, relative to ``root``."""
    pages = {p.relative_to(root).as_posix() for pattern in PAGES for p in root.glob(pattern) if p.is_file()}
    markdown = [p for p in pages if p.endswith(".md")]
    return sorted(pages.union(*(linked_files(root, p, (root / p).read_text(encoding="utf-8")) for p in markdown)))


def github_lists(markdown: str) -> str:
    """A blank line before a list that follows a paragraph line: GitHub starts a list there,
    Python-Markdown would run its items into the paragraph."""
    out, fenced, previous = [], False, ""
    for line in markdown.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and LIST_ITEM.match(line) and previous.strip() and not previous.startswith((" ", "\t")) \
                and not LIST_ITEM.match(previous):
            out.append("")
        out.append(line)
        previous = line
    return "\n".join(out)


def on_page_markdown(markdown, page, config, files):
    return github_lists(markdown)


def on_files(files, config):
    """The pages at their repository paths, the files they link to, and the generated pages."""
    from mkdocs.structure.files import File

    root = Path(config.config_file_path).parent
    for file in [f for f in files if f.src_dir == config.docs_dir]:
        files.remove(file)
    for path in site_sources(root):
        files.append(File(path, str(root), config.site_dir, config.use_directory_urls))
    helps_by_module = command_helps(root)
    files.append(File.generated(config, COMMANDS_PAGE, content=commands_page(helps_by_module)))
    files.append(File.generated(config, API_PAGE, content=api_page(list(helps_by_module))))
    return files


if __name__ == "__main__":
    print(json.dumps(helps(sys.argv[1:])))
