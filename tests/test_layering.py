"""The package's layers: core/ and ports/ import no domain package and no entry point.

core/ holds what every part shares (settings, database, errors, security); ports/ the adapters of
the outside world. A domain (telemetry, rules, analytics, ...) may use both; neither may use a
domain, or the import graph turns into a knot (and a domain's import-time cost lands everywhere).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "factoryops"
ALLOWED = {
    # `from factoryops import __version__`; the readiness probes (core/health.py) use the ports' adapters.
    "core": {"factoryops", "factoryops.core", "factoryops.ports"},
    "ports": {"factoryops.core", "factoryops.ports"},
}

pytestmark = pytest.mark.nodb


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # function-level imports count too
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "factoryops" or name.startswith("factoryops.")}


def outside(module: str, allowed: set[str]) -> bool:
    # "factoryops" itself allows only `from factoryops import ...` (the package's __init__), not its subpackages.
    return not any(
        module == prefix or (prefix != "factoryops" and module.startswith(prefix + ".")) for prefix in allowed
    )


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_lower_layer_imports_no_domain(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files
    wrong = {
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in files
        for module in imported_modules(path)
        if outside(module, ALLOWED[layer])
    }
    assert not wrong, sorted(wrong)


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from factoryops.telemetry.spool import Spool\n    import factoryops.rules\n")
    assert imported_modules(sample) == {"factoryops.telemetry.spool", "factoryops.rules"}
    assert outside("factoryops.telemetry.spool", ALLOWED["core"])
