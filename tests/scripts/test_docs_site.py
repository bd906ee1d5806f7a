"""scripts/docs_site.py and mkdocs.yml: the strict docs build, its generated reference, and what fails it."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SPEC = importlib.util.spec_from_file_location("docs_site", ROOT / "scripts" / "docs_site.py")
docs_site = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(docs_site)


def _build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=root,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)})


def _copy_sources(dest: Path) -> Path:
    """What the site is built from, in ``dest``: the config, the hook, the pages and the files they
    link to, and the packages (linked)."""
    for path in ["mkdocs.yml", "scripts/docs_site.py", *docs_site.site_sources(ROOT)]:
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, dest / path)
    for package in docs_site.PACKAGES:
        (dest / package).symlink_to(ROOT / package)
    return dest


def test_commands_are_found_in_the_source(tmp_path):
    found = docs_site.commands(ROOT)
    assert {"mobileformer.summary", "quant.export", "quant.bench", "quant.qat"} <= set(found)
    assert "quant.recipes" not in found and "mobileformer.registry" not in found  # modules, not commands
    (tmp_path / "quant" / "tool").mkdir(parents=True)
    (tmp_path / "quant" / "deep.py").write_text('def main():\n    pass\n\n\nif __name__ == "__main__":\n    main()\n')
    (tmp_path / "quant" / "tool" / "__main__.py").write_text("")
    (tmp_path / "quant" / "helper.py").write_text("def main():\n    pass\n")
    # a wing's script run as a child process (LiteRT's AArch64 guest) is no command: its main takes no --help
    (tmp_path / "quant" / "backends" / "tflite").mkdir(parents=True)
    (tmp_path / "quant" / "backends" / "tflite" / "guest.py").write_text('if __name__ == "__main__":\n    pass\n')
    assert docs_site.commands(tmp_path) == ["quant.deep", "quant.tool"]


def test_links_to_repository_files_are_resolved_from_the_page(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "run.sh").write_text("")
    text = "[a](../scripts/run.sh#L3) [b](https://x.org/y) [c](../nowhere.md) [d](#top) ![e](<../scripts/run.sh> \"t\")"
    assert docs_site.linked_files(tmp_path, "docs/page.md", text) == {"scripts/run.sh"}
    assert docs_site.linked_files(tmp_path, "docs/page.md", "[out](../../etc/passwd)") == set()


def test_the_commands_page_is_each_commands_help_as_printed():
    page = docs_site.commands_page({"quant.x": "usage: python -m quant.x [-h]\n\nDoes x.\n"})
    assert "## `python -m quant.x`\n\n```text\nusage: python -m quant.x [-h]\n\nDoes x.\n```" in page


@pytest.mark.slow
def test_site_builds_strict_without_a_warning_and_holds_every_help(tmp_path):
    run = _build(ROOT, tmp_path / "site")
    assert run.returncode == 0, run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    commands = (tmp_path / "site" / "docs" / "commands.html").read_text()
    for module in docs_site.commands(ROOT):
        assert f"python -m {module}</code>" in commands
    summary = subprocess.run([sys.executable, "-m", "mobileformer.summary", "--help"], capture_output=True, text=True,
                             env={**os.environ, "COLUMNS": docs_site.HELP_COLUMNS}, check=True).stdout
    assert summary.strip().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in commands
    api = (tmp_path / "site" / "docs" / "api.html").read_text()
    for name in ("mobileformer.create_model", "mobileformer.list_models", "quant.versions", "quant.export.export",
                 "quant.evaluate.evaluate"):
        assert f'id="{name}"' in api
    assert not re.search(r'id="quant\.\w+\.(main|build_parser)"', api)


@pytest.mark.slow
def test_a_broken_link_fails_the_strict_build(tmp_path):
    root = _copy_sources(tmp_path / "repo")
    with (root / "docs" / "export.md").open("a") as page:
        page.write("\n## Core ML — checked\n\nSee [the missing page](no-such-page.md) and [this](#core-ml--checked).\n")
    run = _build(root, tmp_path / "site")
    assert run.returncode != 0
    assert "contains a link 'no-such-page.md'" in run.stderr
    assert "core-ml--checked" not in run.stderr  # the anchor GitHub makes of that heading is found


def test_help_is_what_the_command_prints_and_a_failing_one_stops_the_build(tmp_path, monkeypatch):
    package = tmp_path / "toolbox"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text("import argparse\n\nif __name__ == '__main__':\n"
                                     "    argparse.ArgumentParser(prog='python -m toolbox.good', description='Does good.').parse_args()\n")
    (package / "bad.py").write_text("import sys\n\nif __name__ == '__main__':\n    sys.exit(2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setenv("COLUMNS", "100")
    assert docs_site.helps(["toolbox.good"]) == {"toolbox.good": "usage: python -m toolbox.good [-h]\n\nDoes good.\n\n"
                                                 "options:\n  -h, --help  show this help message and exit\n"}
    with pytest.raises(SystemExit, match="python -m toolbox.bad --help exited with 2"):
        docs_site.helps(["toolbox.bad"])


def test_a_list_right_after_a_paragraph_is_a_list_as_on_github():
    text = "Holds:\n- a\n- b\n  more of b\n- c\n\n```\nx:\n- not a list\n```\nsteps:\n1. one\n2. two\nyear\n2026. no"
    assert docs_site.github_lists(text) == text.replace("Holds:\n", "Holds:\n\n").replace("steps:\n", "steps:\n\n")
