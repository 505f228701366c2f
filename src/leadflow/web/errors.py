"""Error codes of the web app (its pages answer them as pages, not problem+json)."""

from __future__ import annotations

from leadflow.exceptions import Forbidden, Unauthorized


class SignInRequired(Unauthorized):
    """A page that needs a signed-in browser was asked for without one."""

    code = "sign_in_required"


class CsrfRejected(Forbidden):
    """A form or htmx request without the right CSRF token."""

    code = "csrf_rejected"
