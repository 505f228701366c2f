"""`make audit`: known vulnerabilities in the installed dependencies, by pip-audit.

A known vulnerability fails the step. Dependencies that could not be checked (the
vulnerability service unreachable, or a package index without its per-version data) are
reported loudly; they fail the step only with AUDIT_REQUIRED=1, so that `make test` still
runs where no vulnerability data can be had. AUDIT_SERVICE picks pip-audit's service
(`pypi`, the default, or `osv`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

BANNER = "!" * 78


def _loud(lines: list[str]) -> None:
    print(BANNER, *(f"!! {line}" for line in lines), BANNER, sep="\n", file=sys.stderr)


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
    vulns = [(d, v) for d in deps for v in d.get("vulns", [])]
    skipped = [d for d in deps if "skip_reason" in d]
    for dep, vuln in vulns:
        fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
        print(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    audited = len(deps) - len(skipped)
    print(
        f"pip-audit ({service}): {audited} of {len(deps)} dependencies audited, "
        f"{len(vulns)} known vulnerabilities"
    )
    if skipped:
        _loud(
            [
                f"{len(skipped)} of {len(deps)} dependencies could NOT be audited, e.g.:",
                *(d["skip_reason"] for d in skipped[:3]),
                "no vulnerability data for them: set AUDIT_REQUIRED=1 to fail on this",
            ]
        )
    if vulns:
        return 1
    return 1 if skipped and required else 0


if __name__ == "__main__":
    sys.exit(main())
