"""The dependency audit step (scripts/audit_deps.py after pip-audit).

The package index is the edge of the world: most cases serve its per-project JSON documents from a
local HTTP server, so that every outcome (vulnerable, withdrawn, accepted, held back, unknown) is
exercised. One case reads the real index (pypi.org, reachable from CI like every package registry)
for a project that is dead with open advisories, and one runs the real pip-audit on this venv.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "audit_deps.py"

pytestmark = pytest.mark.nodb


def vuln(vid: str, *aliases: str, fixed_in: tuple[str, ...] = (), withdrawn: str | None = None) -> dict[str, Any]:
    return {
        "id": vid,
        "aliases": list(aliases),
        "fixed_in": list(fixed_in),
        "withdrawn": withdrawn,
        "summary": f"summary of {vid}",
        "details": "",
        "link": "",
        "source": "osv",
    }


PROJECTS: dict[str, dict[str, Any]] = {
    "cleanpkg": {"info": {"version": "1.0", "requires_python": ">=3.8"}, "vulnerabilities": []},
    "badpkg": {
        "info": {"version": "2.0", "requires_python": None},
        # One vulnerability listed under both of its IDs, as the index does; and one withdrawn.
        "vulnerabilities": [
            vuln("PYSEC-2099-1", "CVE-2099-0001", "GHSA-aaaa-bbbb-cccc", fixed_in=("2.1",)),
            vuln("GHSA-aaaa-bbbb-cccc", "CVE-2099-0001", "PYSEC-2099-1", fixed_in=("2.1",)),
            vuln("PYSEC-2099-2", "CVE-2099-0002", withdrawn="2099-01-01T00:00:00Z"),
        ],
    },
    "futurepkg": {"info": {"version": "9.0", "requires_python": ">=9.0"}, "vulnerabilities": []},
    "movedpkg": {"info": {"version": "3.0", "requires_python": ""}, "vulnerabilities": []},
}


class FakeIndex(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")  # pypi/<name>/json
        doc = PROJECTS.get(parts[1]) if len(parts) == 3 and parts[0] == "pypi" and parts[2] == "json" else None
        if doc is None:
            self.send_error(404)
            return
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def index() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeIndex)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/pypi"
    server.shutdown()


def skipped(name: str, version: str) -> dict[str, str]:
    """A dependency as pip-audit reports one it could not audit."""
    return {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} ({version})"}


def run(tmp_path: Path, report: dict[str, Any] | str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "pip-audit.json"
    path.write_text(report if isinstance(report, str) else json.dumps(report))
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(path), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_latest_release_without_advisories_counts_as_audited(tmp_path: Path, index: str) -> None:
    result = run(tmp_path, {"dependencies": [skipped("cleanpkg", "1.0")]}, "--index", index)
    assert result.returncode == 0, result.stderr
    assert "1 packages; 0 audited by pip-audit, 1 against their latest release's advisories" in result.stdout
    assert "0 known vulnerabilities" in result.stdout


def test_vulnerable_latest_release_fails_once_per_vulnerability(tmp_path: Path, index: str) -> None:
    result = run(tmp_path, {"dependencies": [skipped("badpkg", "2.0"), skipped("cleanpkg", "1.0")]}, "--index", index)
    assert result.returncode == 1
    assert "1 known vulnerabilities" in result.stdout  # the GHSA twin and the withdrawn one are not counted
    assert "VULNERABLE: badpkg 2.0: PYSEC-2099-1 (CVE-2099-0001, GHSA-aaaa-bbbb-cccc); fixed in 2.1" in result.stderr
    assert "PYSEC-2099-2" not in result.stderr


def test_an_accepted_id_matches_any_alias(tmp_path: Path, index: str) -> None:
    result = run(tmp_path, {"dependencies": [skipped("badpkg", "2.0")]}, "--index", index, "--ignore", "CVE-2099-0001")
    assert result.returncode == 0, result.stderr
    assert "0 known vulnerabilities, 1 accepted" in result.stdout
    assert "accepted: badpkg 2.0 PYSEC-2099-1" in result.stdout


def test_what_cannot_be_audited_is_named_with_the_reason(tmp_path: Path, index: str) -> None:
    report = {
        "dependencies": [
            skipped("futurepkg", "1.0"),  # the latest needs a newer Python
            skipped("movedpkg", "1.0"),  # older for another reason
            skipped("nosuchpkg", "0.1"),  # the index does not know it
            {"name": "factoryops", "skip_reason": "distribution marked as editable"},
        ]
    }
    result = run(tmp_path, report, "--index", index)
    assert result.returncode == 0, result.stderr
    assert "0 against their latest release's advisories on the index, 4 not audited" in result.stdout
    assert "not audited: futurepkg 1.0: older than the latest release 9.0, which needs Python >=9.0" in result.stdout
    assert "not audited: movedpkg 1.0: older than the latest release 3.0" in result.stdout
    assert "not audited: nosuchpkg 0.1: the index answered 404" in result.stdout
    assert "not audited: factoryops: distribution marked as editable" in result.stdout


def test_an_unreachable_index_audits_nothing_and_says_so(tmp_path: Path) -> None:
    result = run(tmp_path, {"dependencies": [skipped("cleanpkg", "1.0")]}, "--index", "http://127.0.0.1:9/pypi")
    assert result.returncode == 0
    assert "1 not audited" in result.stdout
    assert "not audited: cleanpkg 1.0: the index could not be reached" in result.stdout


def test_a_held_back_release_names_what_holds_it(tmp_path: Path, index: str) -> None:
    # pytest is installed here and requires pluggy<2: a "pluggy" whose latest is 9.0 is held back by it.
    PROJECTS["pluggy"] = {"info": {"version": "9.0", "requires_python": ""}, "vulnerabilities": []}
    try:
        result = run(tmp_path, {"dependencies": [skipped("pluggy", "1.0")]}, "--index", index)
    finally:
        del PROJECTS["pluggy"]
    assert "not audited: pluggy 1.0: older than the latest release 9.0; held back: pytest requires pluggy" in (
        result.stdout
    )


def test_findings_of_pip_audit_itself_fail_too(tmp_path: Path, index: str) -> None:
    report = {
        "dependencies": [
            {
                "name": "oldlib",
                "version": "0.1",
                "vulns": [{"id": "PYSEC-2098-7", "fix_versions": ["0.2"], "aliases": ["CVE-2098-7"]}],
            }
        ]
    }
    result = run(tmp_path, report, "--index", index)
    assert result.returncode == 1
    assert "1 audited by pip-audit" in result.stdout
    assert "VULNERABLE: oldlib 0.1: PYSEC-2098-7 (CVE-2098-7); fixed in 0.2" in result.stderr
    assert run(tmp_path, report, "--index", index, "--ignore", "PYSEC-2098-7").returncode == 0


def test_an_unreadable_report_is_an_error(tmp_path: Path) -> None:
    result = run(tmp_path, "not json {")
    assert result.returncode == 2
    assert "cannot read pip-audit's JSON report" in result.stderr


def test_the_real_index_reports_a_dead_project_with_open_advisories(tmp_path: Path) -> None:
    # pycrypto's last release (2.6.1, 2013) carries two CVEs that will never be fixed; the real
    # index lists each under its PYSEC and its GHSA ID.
    result = run(tmp_path, {"dependencies": [skipped("pycrypto", "2.6.1")]})
    if "could not be reached" in result.stdout:
        pytest.skip("pypi.org is not reachable from this machine")
    assert result.returncode == 1, result.stdout
    assert "1 against their latest release's advisories on the index" in result.stdout
    assert "2 known vulnerabilities" in result.stdout
    assert "CVE-2013-7459" in result.stderr and "CVE-2018-6594" in result.stderr


def test_pip_audit_on_this_environment_feeds_the_script(tmp_path: Path) -> None:
    pip_audit = Path(sys.executable).parent / "pip-audit"
    out = subprocess.run(
        [str(pip_audit), "--skip-editable", "--progress-spinner", "off", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(out.stdout)
    names = {dep["name"] for dep in report["dependencies"]}
    assert {"fastapi", "sqlalchemy", "paho-mqtt"} <= names
    result = run(tmp_path, report)
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"dependency audit: {len(report['dependencies'])} packages;"), first
    assert result.returncode in (0, 1)  # 1 only if an advisory was published since; CI's own step decides
