"""`make audit`'s fallback: a dependency pip-audit could not look up per version is judged by
its PyPI project page, but only when that page describes the installed release."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tools.audit import recheck_skipped, vulns_from_project_page

VULN = {"id": "PYSEC-1", "aliases": ["CVE-1"], "fixed_in": ["2.1"], "withdrawn": None}
WITHDRAWN = {"id": "PYSEC-2", "aliases": [], "fixed_in": ["2.1"], "withdrawn": "2026-01-01"}


def test_the_newest_releases_records_judge_that_release() -> None:
    page = {"info": {"version": "2.0"}, "vulnerabilities": [VULN, WITHDRAWN]}
    found = vulns_from_project_page("2.0.0", page)  # the same version, spelled otherwise
    assert found == [{"id": "PYSEC-1", "aliases": ["CVE-1"], "fix_versions": ["2.1"]}]


def test_an_older_release_is_not_judged_by_the_newest_ones_records() -> None:
    page = {"info": {"version": "2.1"}, "vulnerabilities": []}
    assert vulns_from_project_page("2.0", page) is None


def test_an_empty_list_on_the_installed_release_is_clean() -> None:
    page = {"info": {"version": "3.0"}, "vulnerabilities": []}
    assert vulns_from_project_page("3.0", page) == []


def test_a_page_without_records_or_of_another_shape_cannot_tell() -> None:
    assert vulns_from_project_page("3.0", {"info": {"version": "3.0"}}) is None
    no_list = {"info": {"version": "3.0"}, "vulnerabilities": None}
    assert vulns_from_project_page("3.0", no_list) is None
    no_id = {"info": {"version": "3.0"}, "vulnerabilities": [{"aliases": []}]}
    assert vulns_from_project_page("3.0", no_id) is None
    assert vulns_from_project_page("3.0", ["not", "a", "page"]) is None


PAGES: dict[str, dict[str, Any]] = {
    "current-pkg": {"info": {"version": "1.0"}, "vulnerabilities": []},
    "vulnerable-pkg": {"info": {"version": "1.0"}, "vulnerabilities": [VULN]},
    "old-pkg": {"info": {"version": "9.0"}, "vulnerabilities": []},
    "current-pkg-checkout": {"info": {"version": "1.0"}, "vulnerabilities": []},
}


class _Index(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        name = self.path.split("/")[2]
        if name not in PAGES:
            self.send_error(404)
            return
        body = json.dumps(PAGES[name]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def index_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # urllib honours *_proxy variables; the local index is reached directly.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/pypi/{{name}}/json"
    finally:
        server.shutdown()
        server.server_close()


def test_skipped_dependencies_are_judged_by_a_served_project_page(index_url: str) -> None:
    reason = "Dependency not found on PyPI and could not be audited"
    editable = "distribution marked as editable"
    deps: list[dict[str, Any]] = [
        {"name": "current-pkg", "version": "1.0", "skip_reason": reason},
        {"name": "Vulnerable_Pkg", "version": "1.0", "skip_reason": reason},
        {"name": "old-pkg", "version": "1.0", "skip_reason": reason},
        {"name": "gone-pkg", "version": "1.0", "skip_reason": reason},
        {"name": "audited-pkg", "version": "1.0", "vulns": []},
        {"name": "leadflow", "skip_reason": editable},
        {"name": "current-pkg-checkout", "version": "1.0", "skip_reason": editable},
    ]
    recheck_skipped(deps, index_url)
    by_name = {d["name"]: d for d in deps}
    assert "leadflow" not in by_name  # our own package is not a dependency
    assert by_name["current-pkg"]["vulns"] == [] and "skip_reason" not in by_name["current-pkg"]
    assert [v["id"] for v in by_name["Vulnerable_Pkg"]["vulns"]] == ["PYSEC-1"]
    assert "skip_reason" in by_name["old-pkg"]  # its page is about 9.0
    assert "skip_reason" in by_name["gone-pkg"]  # no page
    assert by_name["audited-pkg"] == {"name": "audited-pkg", "version": "1.0", "vulns": []}
    # An editable checkout is not PyPI's release, whatever its name: it stays unchecked.
    assert by_name["current-pkg-checkout"]["skip_reason"] == editable
