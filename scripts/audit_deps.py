"""Completes pip-audit where the package index gives it no data.

pip-audit reads each installed release's JSON document (`/pypi/<name>/<version>/json`). Where the
index answers 404 for those (as the index reachable from this project's machines and CI does),
pip-audit reports the package as "could not be audited" and no vulnerability. The per-project
document (`/pypi/<name>/json`) still answers there, and it lists the known vulnerabilities (PyPI's
OSV data) of the project's *latest* release. So every skipped package that is installed at its
latest release can still be audited for real; one that is older than the latest cannot, and is
listed by name so that nobody mistakes silence for a clean audit.

Usage: pip-audit -f json ... > audit.json; python scripts/audit_deps.py audit.json [--ignore ID ...]
Exit status: 0 when no known vulnerability (outside the ignored IDs) was found, 1 when one was,
2 when the input cannot be read.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

DEFAULT_INDEX = "https://pypi.org/pypi"


@dataclass
class Finding:
    name: str
    version: str
    vuln_id: str
    aliases: list[str]
    fixed_in: list[str]
    source: str  # "pip-audit" or "latest-release"
    summary: str = ""


@dataclass
class Outcome:
    audited_by_pip_audit: list[str] = field(default_factory=list)
    audited_by_latest: list[str] = field(default_factory=list)
    unaudited: list[tuple[str, str]] = field(default_factory=list)  # (name version, why)
    findings: list[Finding] = field(default_factory=list)
    ignored: list[Finding] = field(default_factory=list)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def holders(name: str, latest: str) -> list[str]:
    """The installed distributions whose requirements exclude `latest` of `name`."""
    found = []
    for dist in importlib.metadata.distributions():
        for line in dist.requires or []:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if normalise(req.name) != normalise(name) or (req.marker and not req.marker.evaluate({"extra": ""})):
                continue
            try:
                if not req.specifier.contains(latest, prereleases=True):
                    found.append(f"{dist.metadata['Name']} requires {req.name}{req.specifier}")
            except InvalidVersion:
                continue
    return sorted(set(found))


def older_reason(name: str, latest: str, requires_python: str | None) -> str:
    """Why an older release is installed, as far as can be told: the latest may need a newer Python,
    or another installed package may hold it back."""
    here = ".".join(str(part) for part in sys.version_info[:3])
    why = f"older than the latest release {latest}"
    try:
        if requires_python and here not in SpecifierSet(requires_python):
            return f"{why}, which needs Python {requires_python} (this is {here})"
    except InvalidSpecifier:
        pass
    held = holders(name, latest)
    return f"{why}; held back: {'; '.join(held)}" if held else why


def fetch_project(index: str, name: str, timeout: float) -> dict[str, Any] | str:
    """The project's JSON document, or a one-line reason why it could not be read."""
    url = f"{index.rstrip('/')}/{normalise(name)}/json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: dict[str, Any] = json.load(response)
            return data
    except urllib.error.HTTPError as exc:
        return f"the index answered {exc.code} for {url}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return f"the index could not be reached ({exc})"
    except json.JSONDecodeError:
        return f"the index sent something that is not JSON for {url}"


def audit(report: dict[str, Any], ignore: set[str], index: str, timeout: float = 20.0) -> Outcome:
    out = Outcome()
    skipped: list[tuple[str, str]] = []
    for dep in report.get("dependencies", []):
        name, version = dep.get("name", "?"), dep.get("version")
        if "skip_reason" in dep:
            if version is None:
                # "could not be audited: name (version)": pip-audit names the version only here.
                match = re.search(r"\(([^)]+)\)\s*$", dep["skip_reason"])
                version = match.group(1) if match else None
            if version is None:
                out.unaudited.append((name, dep["skip_reason"]))
            else:
                skipped.append((name, version))
            continue
        out.audited_by_pip_audit.append(f"{name} {version}")
        for vuln in dep.get("vulns", []):
            finding = Finding(
                name, str(version), vuln["id"], vuln.get("aliases", []), vuln.get("fix_versions", []), "pip-audit"
            )
            (out.ignored if ignore & {finding.vuln_id, *finding.aliases} else out.findings).append(finding)

    with ThreadPoolExecutor(max_workers=8) as pool:
        documents = list(pool.map(lambda item: fetch_project(index, item[0], timeout), skipped))
    for (name, version), doc in zip(skipped, documents, strict=True):
        if isinstance(doc, str):
            out.unaudited.append((f"{name} {version}", doc))
            continue
        info = doc.get("info") or {}
        latest = str(info.get("version", ""))
        if not same_version(version, latest):
            out.unaudited.append((f"{name} {version}", older_reason(name, latest, info.get("requires_python"))))
            continue
        out.audited_by_latest.append(f"{name} {version}")
        seen: set[str] = set()  # the index lists one vulnerability under each of its IDs (PYSEC, GHSA)
        for vuln in doc.get("vulnerabilities") or []:
            ids = {str(vuln.get("id")), *(vuln.get("aliases") or [])}
            if vuln.get("withdrawn") or ids & seen:
                continue
            seen |= ids
            finding = Finding(
                name,
                version,
                str(vuln.get("id")),
                list(vuln.get("aliases") or []),
                list(vuln.get("fixed_in") or []),
                "latest-release",
                str(vuln.get("summary") or vuln.get("details") or "")[:200],
            )
            (out.ignored if ignore & {finding.vuln_id, *finding.aliases} else out.findings).append(finding)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="pip-audit's output with -f json")
    parser.add_argument("--ignore", action="append", default=[], help="a vulnerability ID to accept (repeatable)")
    parser.add_argument("--index", default=DEFAULT_INDEX, help=f"the JSON API's base URL (default {DEFAULT_INDEX})")
    args = parser.parse_args(argv)
    try:
        with open(args.report, encoding="utf-8") as fh:
            report = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"audit_deps: cannot read pip-audit's JSON report {args.report}: {exc}", file=sys.stderr)
        return 2

    out = audit(report, set(args.ignore), args.index)
    total = len(out.audited_by_pip_audit) + len(out.audited_by_latest) + len(out.unaudited)
    print(
        f"dependency audit: {total} packages; {len(out.audited_by_pip_audit)} audited by pip-audit, "
        f"{len(out.audited_by_latest)} against their latest release's advisories on the index, "
        f"{len(out.unaudited)} not audited; {len(out.findings)} known vulnerabilities, "
        f"{len(out.ignored)} accepted (.pip-audit-ignore)"
    )
    for name, why in out.unaudited:
        print(f"  not audited: {name}: {why}")
    for f in out.ignored:
        print(f"  accepted: {f.name} {f.version} {f.vuln_id} ({', '.join(f.aliases) or 'no aliases'})")
    for f in out.findings:
        fix = ", ".join(f.fixed_in) or "no fixed release yet"
        print(
            f"VULNERABLE: {f.name} {f.version}: {f.vuln_id} ({', '.join(f.aliases) or 'no aliases'}); "
            f"fixed in {fix}. {f.summary}",
            file=sys.stderr,
        )
    return 1 if out.findings else 0


if __name__ == "__main__":
    sys.exit(main())
