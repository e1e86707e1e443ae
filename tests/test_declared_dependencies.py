"""Every package the library imports directly is declared in pyproject.toml (its runtime
dependencies or an extra), so a fresh install has it and a version bump is deliberate."""
import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {_normal(re.match(r"[A-Za-z0-9_.\-]+", r).group(0)) for r in requirements}


def _imported() -> dict[str, str]:
    """Top-level module -> the first file that imports it (absolute imports only)."""
    found = {}
    for path in sorted((ROOT / "inference_magics").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                found.setdefault(name.partition(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared():
    providers = packages_distributions()
    declared = _declared()
    missing = []
    for module, where in _imported().items():
        if module in sys.stdlib_module_names or module == "inference_magics":
            continue
        distributions = providers.get(module)
        assert distributions, f"{module} (imported in {where}) is not installed"
        if not any(_normal(d) in declared for d in distributions):
            missing.append(f"{module} ({', '.join(distributions)}, imported in {where})")
    assert missing == []
