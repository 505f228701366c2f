"""Schemathesis over the served `/openapi.json` with a real admin token: no input produces a
server error, and every documented response matches its schema.

`make test` runs a short, seeded pass per engine (one test file each, so the two run side by
side); `make fuzz` runs LEADFLOW_FUZZ_SECONDS per engine with a random seed."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from tests.fixtures.server import Served, register_admin

FUZZ_SECONDS = os.environ.get("LEADFLOW_FUZZ_SECONDS", "")
# Ending the fuzzer's own session would turn every later case into a 401; event streams stay
# open as long as asked (up to an hour, keep-alives defeat read timeouts) and have tests of
# their own (tests/streams).
EXCLUDED = ["/api/v1/auth/logout"]
EXCLUDED_REGEX = r".*/stream$"


def _st_command(base_url: str, token: str, report: Path) -> list[str]:
    st = str(Path(sys.executable).with_name("st"))
    cmd = [
        st,
        "run",
        f"{base_url}/openapi.json",
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--workers",
        "2",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    for path in EXCLUDED:
        cmd += ["--exclude-path", path]
    cmd += ["--exclude-path-regex", EXCLUDED_REGEX]
    if FUZZ_SECONDS:
        cmd += ["--max-time", FUZZ_SECONDS]
    else:
        cmd += ["--max-examples", "4", "--seed", "20261129", "--generation-deterministic"]
    return cmd


def _problems(junit: Path) -> list[str]:
    """Failed checks and failed requests from the JUnit report; schemathesis' own internal
    errors (its generator tripping over a deep structure) are not the server's."""
    found = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        for child in case:
            text = (child.text or "").strip()
            if child.tag == "failure" or (
                child.tag == "error" and not text.startswith("Runtime Error")
            ):
                found.append(f"{case.get('name')}: {text[:600]}")
    return found


# Operations that answer 401/403 to an admin token by design: the provider's signed webhook,
# a login with generated credentials, and a report download (a generated token is never a
# validly signed link).
EXPECTED_UNAUTHORIZED = {"provider-events", "/auth/login", "/reports/downloads/"}


async def run_schemathesis(served: Served, tmp_path: Path) -> None:
    """Run schemathesis against the served schema and fail on any problem it reports."""
    token = await asyncio.to_thread(register_admin, served.base_url)
    junit = tmp_path / "junit.xml"
    cmd = _st_command(served.base_url, token, junit)
    proc = await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, timeout=3600, check=False
    )
    output = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert junit.exists(), output
    problems = _problems(junit)
    assert not problems, "\n\n".join(problems)
    # The token worked: only the expected operations answered nothing but 401/403.
    block = re.search(r"Authentication failed:.*?\n\n(.*?)\n💡", output, re.S)
    if block:
        ops = [line.strip("- ").strip() for line in block.group(1).splitlines() if "- " in line]
        assert all(any(e in op for e in EXPECTED_UNAUTHORIZED) for op in ops), output
