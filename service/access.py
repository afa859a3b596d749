"""Who may reach each route, declared beside the route: the route table is the security table.

`auth.require` (API), `pages.page_role` (pages) and `public` (anyone) record the roles on the
view they wrap; `roles_for(app, endpoint, method)` reads them back. A route with no declared
roles is refused for everyone (deny by default, `init_app`), and the test that walks the URL
map fails on it (tests/test_security_routes.py)."""
from __future__ import annotations

from flask import abort, current_app, has_request_context, request
from flask.sessions import SecureCookieSessionInterface

ATTR = "_innopoints_roles"
ANYONE = "public"
ALL_ROLES = ("public", "enterprise", "officer", "finance", "bank", "admin", "department")
# endpoints that the app's libraries add, which cannot carry a decorator
LIBRARY_ENDPOINTS = {"static": {ANYONE}, "api-docs.openapi_json": {ANYONE}}
READ_METHODS = ("GET", "HEAD", "OPTIONS")


def declare(view, roles, write=None):
    """Record on `view` the roles that may read (GET) and, when `write` is given, write
    (POST, PUT, PATCH, DELETE) through it."""
    spec = {"read": frozenset(roles), "write": frozenset(roles if write is None else write)}
    setattr(view, ATTR, spec)
    return view


def public(view):
    """Decorator: anyone may use this route, logged in or not."""
    return declare(view, {ANYONE})


def roles_for(app, endpoint, method) -> frozenset | None:
    """The roles declared for `endpoint` and `method`; None when nothing is declared."""
    if endpoint in LIBRARY_ENDPOINTS:
        return frozenset(LIBRARY_ENDPOINTS[endpoint])
    view = app.view_functions.get(endpoint)
    if view is None:
        return None
    view_class = getattr(view, "view_class", None)
    if view_class is not None:                    # a MethodView: each method declares its own
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(view_class, "get", None)
        spec = getattr(handler, ATTR, None)
    else:
        spec = getattr(view, ATTR, None)
    if spec is None:
        return None
    return spec["read"] if method in READ_METHODS else spec["write"]


def allows(roles, role) -> bool:
    return ANYONE in roles or role in roles


def undeclared(app) -> list[str]:
    """Every (method, rule) of the URL map with no declared roles."""
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if roles_for(app, rule.endpoint, method) is None:
                out.append(f"{method} {rule.rule} ({rule.endpoint})")
    return out


# scripts and styles from the site only (no inline script; inline style attributes are
# allowed for the progress bar and the chart library's tooltips); no framing
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


def security_headers(response):
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    if request.is_secure:
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is `Secure` whenever the request came over HTTPS (and always
    when SESSION_COOKIE_SECURE is set), so that it never travels in clear text once served
    over HTTPS, while `make run` on http://127.0.0.1 still works."""

    def get_cookie_secure(self, app):
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)


def init_app(app):
    app.session_interface = SessionInterface()
    app.after_request(security_headers)

    @app.before_request
    def _deny_undeclared():
        if request.endpoint is None or request.method == "OPTIONS":
            return None               # 404 / 405 follow
        if roles_for(current_app, request.endpoint, request.method) is None:
            current_app.logger.error("route %s %s declares no roles: refused", request.method, request.endpoint)
            abort(403)
        return None
