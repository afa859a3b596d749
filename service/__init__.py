"""The InnoPoints Flask service (app factory, as in the flaskr tutorial)."""
from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from flask import Flask



# the constant that signed every session before issue 13: never accepted as a key again
OLD_DEFAULT_KEYS = ("dev-only-change-me",)


class ConfigurationError(RuntimeError):
    pass


def secret_key(app) -> str:
    """The key that signs sessions and CSRF tokens: `SECRET_KEY` (environment or config),
    else one made for this instance and kept in instance/secret_key (mode 0600)."""
    key = app.config.get("SECRET_KEY") or os.environ.get("SECRET_KEY")
    if key:
        if key in OLD_DEFAULT_KEYS or len(key) < 16 and not app.config.get("TESTING"):
            raise ConfigurationError("SECRET_KEY 过短或为公开的默认值，拒绝启动 / SECRET_KEY is too short or a "
                                     "published default: refusing to start")
        return key
    path = Path(app.instance_path) / "secret_key"
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:              # another process made it first: use theirs
        return _read_key(path)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    return key


def _read_key(path) -> str:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigurationError(f"{path} 的权限为 {oct(mode)}，应为 0600 / {path} must not be readable by others")
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ConfigurationError(f"{path} 中的密钥过短 / the key in {path} is too short")
    return key


def create_app(test_config=None, instance_path=None):
    """Create the app: defaults, then instance/config.py or the test config, then the parts.
    The database is upgraded to the newest migration at start (`DB_UPGRADE`, on by default)."""
    from rules import assets
    app = Flask(__name__, instance_relative_config=True, template_folder=str(assets.path("templates")),
                static_folder=str(assets.path("static")), instance_path=instance_path)
    app.config.from_mapping(
        SECRET_KEY=None,
        DATABASE_URL=None,
        DB_UPGRADE=True,
        RUNS_INLINE=False,
        RUNS_IN_PROCESS=True,               # a run computes in a child process, not on a server thread
        RUNS_PRESTART=True,                 # ... forked from a server started at the first request
        MAX_CONTENT_LENGTH=200 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=12 * 3600,      # a form's CSRF token expires (seconds)
        SESSION_LIFETIME=12 * 3600,         # a page login lasts this long (seconds)
        TOKEN_LIFETIME=30 * 24 * 3600,      # an API token expires this long after it is issued (seconds)
        LOGIN_FAILURE_WINDOW=300,           # failed logins are counted over this many seconds,
        LOGIN_MAX_FAILURES_PER_USER=5,      # ... refused (429) past this many for one username
        LOGIN_MAX_FAILURES_PER_ADDRESS=20,  # ... or this many from one client address
        RUN_HEARTBEAT_SECONDS=5,            # a running run stamps its heartbeat this often (seconds)
        RUN_STALE_SECONDS=60,               # ... and is failed when it has not for this long (seconds)
        IMPORT_MAX_EXPANDED_BYTES=256 * 2**20,  # an upload may expand to this much (XLSX unzipped, CSV)
        IMPORT_MAX_RATIO=100,               # XLSX: largest compression ratio of a part (zip bombs)
        IMPORT_MAX_CELLS=100_000_000,       # rows × columns of an upload
        IMPORT_MAX_MEMBERS=1000,            # XLSX: parts in the zip
        OBJECTION_MAX_FILE_BYTES=5 * 2**20,  # 公示 objections: one evidence file at most
        OBJECTION_MAX_FILES=5,              # ... and this many per objection
        TODAY=None,                         # 公示 periods are judged by this date (ISO) when set; tests only
        IMPORT_SHOWN_BAD_CELLS=1000,        # bad cells listed in an answer (the total is always given)
        IMPORT_SLICE_ABOVE_BYTES=16 * 2**20,  # a CSV upload this large is checked in slices first,
        IMPORT_SLICE_ROWS=50_000,           # ... of this many rows (memory bounded for a file of bad rows)
        EVIDENCE_MAX_BYTES=5 * 2**20,       # an evidence file of a declaration (PDF, PNG, JPEG) at most
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    app.config["SECRET_KEY"] = secret_key(app)
    from .jsonout import JSONProvider
    app.json = JSONProvider(app)       # Chinese as such, keys in their own order, by orjson
    from . import access, api, authoring, calibration, db, gathering, pages, workspace
    db.init_app(app)
    if app.config["DB_UPGRADE"]:
        db.upgrade(app.config["DATABASE_URL"])
        fail_stale_runs(app)
    from flask_wtf.csrf import CSRFProtect
    csrf = CSRFProtect(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(workspace.bp)
    app.register_blueprint(authoring.bp)
    app.register_blueprint(calibration.bp)
    app.register_blueprint(gathering.bp)
    api.init_app(app)
    for name, bp in app.blueprints.items():
        if name not in ("pages", "ws", "policy", "calib", "gather"):          # the API authenticates with tokens, not cookies: no CSRF there
            csrf.exempt(bp)
    access.init_app(app)
    register_filters(app)
    if (app.config["RUNS_IN_PROCESS"] and app.config["RUNS_PRESTART"] and not app.config["RUNS_INLINE"]
            and not app.testing):
        from . import worker

        @app.before_request
        def _prestart_runs():          # a serving process: the first run need not wait for its forkserver
            worker.prestart()
    if not app.testing:
        @app.before_request
        def _settle():                 # a serving process: its long-lived objects out of the collector's way
            settle_memory(warm=lambda: warm_policy(app))
    return app


def warm_policy(app):
    """The policy version in force loaded into this process's cache (`policies.loaded`):
    `POST /api/runs` checks the year against it, and loading it cold held the GIL for about
    40 ms, which every lookup of that server process waited for (PostgreSQL, 10,000
    enterprises: the first run under load's p99 45 ms against 19-25 ms for the next ones)."""
    from . import db, policies
    try:
        with db.new_session(app) as s:
            policies.loaded(policies.active(s))
    except Exception:       # noqa: BLE001 - an optimisation: the first run then loads it
        pass


_SETTLE_AFTER = (0.0, 3.0, 30.0)      # seconds after the first request
_settling = {"started": False, "lock": threading.Lock()}


def settle_memory(after=_SETTLE_AFTER, warm=None):
    """In a serving process, a full garbage collection walks every object it holds, modules
    and caches included: about 75 ms with the pages and the API loaded, which one lookup in a
    few hundred waited for (the p99 at 200 req/s). After the first request, and twice later
    as lazily imported modules settle in, what the process holds is collected once and frozen
    (gc.freeze): later collections see only the objects requests make. Once per process.
    `warm`: called first, on the same thread (what the process should hold before it is
    frozen)."""
    with _settling["lock"]:
        if _settling["started"]:
            return
        _settling["started"] = True

    def run():
        import gc
        import time
        start = time.monotonic()
        if warm is not None:
            warm()
        for t in after:
            time.sleep(max(0.0, start + t - time.monotonic()))
            gc.collect()
            gc.freeze()
    threading.Thread(target=run, daemon=True, name="settle-memory").start()


def fail_stale_runs(app):
    """At start-up: a run left queued or running by a process that died is failed, with the reason."""
    from . import db
    from .runs import fail_stale
    with db.new_session(app) as s:
        fail_stale(s, app.config["RUN_STALE_SECONDS"])


def register_filters(app):
    from rules.report import yuan

    from . import labels

    def wan(v):
        """Yuan as 万元 with two decimals and thousands separators."""
        return "" if v is None else f"{v / 10000:,.2f}"

    def score(v, digits=4):
        return "—" if v is None else f"{v:.{digits}f}"

    def shown(text, key):
        """A stored record value as a person reads it: 是/否, stages and choices in Chinese (the
        policy in force's data dictionary)."""
        from . import shape
        data = shape.data()
        f = data.field(key)
        kind = f.kind if f else None
        if kind == "bool":
            return {"true": "是", "false": "否"}.get(text, text)
        if kind == "stage":
            return data.stages.get(text, text)
        if kind == "choice":
            return f.value_names.get(text, text)
        if kind in ("count", "amount", "ratio", "signed") and text not in (None, ""):
            return labels.measure(text, key, unit=False)      # (the unit is in the row's label)
        return text

    def num(v, digits=0):
        """A number with thousands separators ("—" when there is none)."""
        return "—" if v is None else f"{v:,.{digits}f}"

    def pct(v, digits=1):
        return "—" if v is None else f"{v * 100:.{digits}f}%"

    app.jinja_env.filters.update(yuan=yuan, wan=wan, score=score, shown=shown, num=num, pct=pct, n=labels.count, bjt=labels.beijing,
                                 strategy=labels.strategy_zh, changes=labels.changes, yesno=labels.yesno,
                                 when_words=labels.when_words, effect_words=labels.effect_words, measure=labels.measure,
                                 case_problem=labels.case_problem)
    app.jinja_env.globals.update(RUN_STATUS_ZH=labels.RUN_STATUS_ZH, policy_label=labels.policy_label,
                                 version_label=labels.version_label)

    def stage_names():
        """Stage key -> Chinese name of the policy in force (templates: stage_names())."""
        from . import shape
        return shape.stages()

    def stage_name(key):
        return stage_names().get(key, key)

    app.jinja_env.globals.update(stage_names=stage_names, stage_name=stage_name)
    app.jinja_env.filters["stage_name"] = stage_name
