"""The web app: server-rendered pages (Jinja2 + htmx) over the same services as the API."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from starlette.staticfiles import StaticFiles

from leadflow.kit.nultext import refuse_nul_form, refuse_nul_upload_form
from leadflow.web import error_pages
from leadflow.web.routes import (
    admin,
    dashboard,
    imports,
    lead_extras,
    leads,
    pipeline,
    reports,
    shell,
    views,
)
from leadflow.web.templating import STATIC_DIR


def install(app: FastAPI) -> None:
    """Mount the pages at `/`, the assets at `/static` and the HTML error pages.

    Lead pages live under `/crm/` because `/leads` is a seed alias of the API.
    """
    for module in (
        shell,
        dashboard,
        leads,
        lead_extras,
        views,
        pipeline,
        imports,
        reports,
        admin,
    ):
        check = refuse_nul_upload_form if module is imports else refuse_nul_form
        app.include_router(module.router, dependencies=[Depends(check)])
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    error_pages.install(app)
