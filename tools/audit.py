"""`make audit`: known vulnerabilities in the installed dependencies, by pip-audit.

A known vulnerability fails the step. pip-audit asks PyPI for each installed version's page
(`/pypi/NAME/VERSION/json`); a package index or proxy that serves only the projects' own pages
(`/pypi/NAME/json`) answers those with 404. For each dependency pip-audit skipped that way,
the project's page is asked instead: it carries PyPI's vulnerability records for the newest
release, so it decides for a dependency installed at that release, and only for it.
Dependencies still unchecked (no page, an older release, the service unreachable) are reported
loudly; they fail the step only with AUDIT_REQUIRED=1, so that `make test` still runs where no
vulnerability data can be had. AUDIT_SERVICE picks pip-audit's service (`pypi`, the default,
or `osv`).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

BANNER = "!" * 78
PROJECT_PAGE = "https://pypi.org/pypi/{name}/json"
TIMEOUT_SECONDS = 20
OWN = {"leadflow"}


def _loud(lines: list[str]) -> None:
    print(BANNER, *(f"!! {line}" for line in lines), BANNER, sep="\n", file=sys.stderr)


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def vulns_from_project_page(version: str, page: Any) -> list[dict[str, Any]] | None:
    """The vulnerabilities PyPI's project page records for `version`, in pip-audit's shape;
    None when the page cannot tell: its records are the newest release's, not `version`'s, or
    it carries no `vulnerabilities` list (PyPI always sends one; a page without it is not
    evidence of none), or it is not shaped as PyPI's."""
    if not isinstance(page, dict) or not isinstance(page.get("info"), dict):
        return None
    if not _same_version(version, str(page["info"].get("version", ""))):
        return None
    records = page.get("vulnerabilities")
    if not isinstance(records, list):
        return None
    found = []
    for v in records:
        if not isinstance(v, dict) or not isinstance(v.get("id"), str):
            return None
        if v.get("withdrawn") is not None:
            continue
        found.append(
            {"id": v["id"], "aliases": v.get("aliases", []), "fix_versions": v.get("fixed_in", [])}
        )
    return found


def _project_page(name: str, page_url: str) -> Any:
    url = page_url.format(name=canonicalize_name(name))
    try:
        # A fixed https URL on PyPI, the name from our own installed packages.
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return json.load(response)
    except (OSError, ValueError, http.client.HTTPException):  # unreachable, 404, cut, not JSON
        return None


# pip-audit's reason for a dependency PyPI has no per-version page of; only these are asked
# again (an editable checkout or a private package of the same name is not PyPI's release).
NOT_FOUND = "not found on PyPI"


def recheck_skipped(deps: list[dict[str, Any]], page_url: str = PROJECT_PAGE) -> None:
    """Give each dependency pip-audit skipped for want of PyPI's per-version page the
    verdict of its project page, when that page can tell (in place: `vulns` set and
    `skip_reason` dropped). Our own editable package is left out of `deps` altogether: it is
    not on PyPI."""
    deps[:] = [d for d in deps if canonicalize_name(d["name"]) not in OWN]
    # pip-audit reports a skipped dependency by name only; this interpreter is the one audited.
    skipped = [d for d in deps if NOT_FOUND in d.get("skip_reason", "")]
    for dep in skipped:
        try:
            dep.setdefault("version", metadata.version(dep["name"]))
        except metadata.PackageNotFoundError:
            dep.setdefault("version", "")
    with ThreadPoolExecutor(8) as pool:
        pages = list(pool.map(lambda d: _project_page(d["name"], page_url), skipped))
    for dep, page in zip(skipped, pages, strict=True):
        if page is None or not dep["version"]:
            continue
        vulns = vulns_from_project_page(dep["version"], page)
        if vulns is not None:
            dep.pop("skip_reason")
            dep["vulns"] = vulns
            dep["checked_by"] = "project page"


def main() -> int:
    """Run pip-audit and judge its report; the exit status of the step."""
    required = os.environ.get("AUDIT_REQUIRED", "") in {"1", "true", "yes"}
    service = os.environ.get("AUDIT_SERVICE", "pypi")
    cmd = [
        sys.executable,
        "-m",
        "pip_audit",
        "--format",
        "json",
        "--skip-editable",  # leadflow itself is not on PyPI
        "--progress-spinner",
        "off",
        "--vulnerability-service",
        service,
    ]
    # Our own interpreter with fixed arguments (the service name only chooses among pip-audit's).
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        report: dict[str, Any] = json.loads(run.stdout)
    except json.JSONDecodeError:
        tail = run.stderr.strip().splitlines()[-3:]
        _loud([f"pip-audit could not reach its vulnerability service ({service}):", *tail])
        return 1 if required else 0
    deps = report["dependencies"]
    if service == "pypi":
        recheck_skipped(deps)
    vulns = [(d, v) for d in deps for v in d.get("vulns", [])]
    skipped = [d for d in deps if "skip_reason" in d]
    by_page = sum(1 for d in deps if d.get("checked_by") == "project page")
    for dep, vuln in vulns:
        fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
        print(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    audited = len(deps) - len(skipped)
    print(
        f"pip-audit ({service}): {audited} of {len(deps)} dependencies audited "
        f"({by_page} from their project page), {len(vulns)} known vulnerabilities"
    )
    if skipped:
        _loud(
            [
                f"{len(skipped)} of {len(deps)} dependencies could NOT be audited:",
                *(f"{d['name']} {d.get('version', '')}: {d['skip_reason']}" for d in skipped),
                "no vulnerability data for them: set AUDIT_REQUIRED=1 to fail on this",
            ]
        )
    if vulns:
        return 1
    return 1 if skipped and required else 0


if __name__ == "__main__":
    sys.exit(main())
