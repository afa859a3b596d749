"""What the API's resource modules share: the role groups, the JSON error handling, the
run a query reads, the result columns and the run helpers."""
from __future__ import annotations

import datetime as dt
from http import HTTPStatus
import threading

from flask import current_app, g, request
from flask_smorest import Api, abort


from .. import db
from ..auth import api_user, own_enterprise_only, role_of
from ..models import Enterprise, Result, Run
from ..runs import current_run, current_run_query, effective_status, execute_run, fail_stale
from ..schemas import RunSchema




def labels() -> dict:
    """Field key -> Chinese label, of the policy in force's data dictionary."""
    from .. import shape
    return shape.field_labels()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_CONTENT = {"text/csv": {"schema": {"type": "string"}}, XLSX: {"schema": {"type": "string", "format": "binary"}}}


def answers(bp, schema=None, status=200, files=False, content=None, description=None):
    """Document an answer without changing it: `schema` for its JSON body (the view returns a
    Response, which flask-smorest passes as it is), `files` for the CSV and XLSX exports
    (format=csv/xlsx), `content` for other media types."""
    extra = {**(FILE_CONTENT if files else {}), **(content or {})}
    if not extra:
        return bp.alt_response(status, schema=schema, success=True, description=description)
    media = {"application/json": {"schema": schema}} if schema is not None else {}
    doc = {"description": description or HTTPStatus(status).phrase, "content": {**media, **extra}}
    return bp.doc(responses={str(status): doc})


def iso(when):
    """A stored (naive, UTC) time as ISO 8601 with its time zone; None stays None."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.isoformat()
STAFF = ("officer", "admin")
READERS = ("officer", "finance", "admin")


class InnoApi(Api):
    """flask-smorest's Api, with JSON errors for /api only (pages keep their HTML errors)."""

    def handle_http_exception(self, error):
        if not request.path.startswith("/api"):
            return error
        data = getattr(error, "data", None)
        if data and "messages" in data:
            data["errors"] = translate(data.pop("messages"))
            data.setdefault("message", "请求参数有误，见 errors / validation failed, see errors")
        payload, code, headers = super().handle_http_exception(error)
        if getattr(error, "valid_methods", None):          # 405: the methods the URL takes (RFC 9110)
            headers = {**headers, "Allow": ", ".join(error.valid_methods)}
        return payload, code, headers


MESSAGES_ZH = [
    (r"Missing data for required field\.", "必填项缺失"),
    (r"Not a valid integer\.", "不是有效的整数"),
    (r"Not a valid number\.", "不是有效的数字"),
    (r"Not a valid boolean\.", "不是有效的是/否值（true/false）"),
    (r"Not a valid string\.", "不是有效的文本"),
    (r"Not a valid datetime\.", "不是有效的日期时间"),
    (r"Unknown field\.", "未知字段"),
    (r"Field may not be null\.", "不能为空值"),
    (r"Invalid input type\.", "输入类型无效"),
    (r"Invalid JSON body\.", "请求体不是有效的 JSON"),
    (r"Must be one of: (.*)\.", r"只能是：\1"),
    (r"Must be greater than or equal to (\S+) and less than or equal to (\S+)\.", r"应在 \1 到 \2 之间"),
    (r"Must be greater than or equal to (\S+)\.", r"应不小于 \1"),
    (r"Must be less than or equal to (\S+)\.", r"应不大于 \1"),
    (r"Length must be (\d+)\.", r"长度应为 \1"),
    (r"Length must be between (\d+) and (\d+)\.", r"长度应在 \1 到 \2 之间"),
    (r"Shorter than minimum length (\d+)\.", r"长度不能少于 \1"),
    (r"Longer than maximum length (\d+)\.", r"长度不能超过 \1"),
    (r"String does not match expected pattern\.", "格式不符"),
]


def translate(messages):
    """marshmallow's messages as 'Chinese / English', field by field (the structure kept)."""
    import re
    if isinstance(messages, dict):
        return {k: translate(v) for k, v in messages.items()}
    if isinstance(messages, list):
        return [translate(m) for m in messages]
    text = str(messages)
    for pattern, zh in MESSAGES_ZH:
        if re.fullmatch(pattern, text):
            return f"{re.sub(pattern, zh, text)} / {text}"
    return text


def bad_cells(cells, limit=None):
    """The bad cells as the answers list them: the first `limit` (IMPORT_SHOWN_BAD_CELLS)."""
    if limit is None:
        limit = current_app.config["IMPORT_SHOWN_BAD_CELLS"]
    return [{"row": c.row, "column": c.column, "column_zh": labels().get(c.column, c.column), "value": c.value,
             "reason": c.reason_zh, "reason_en": c.reason_en} for c in cells[:limit]]


def enterprise_session(code):
    """The session, once the caller may see enterprise `code` and it exists (403/404)."""
    own_enterprise_only(code)
    s = db.session()
    ent = s.get(Enterprise, code)
    if ent is None:
        abort(404, message=f"没有企业 {code} / no such enterprise")
    # held for the request: the session keeps loaded rows only while something refers to
    # them, and the handler reads this one again (a lookup queried it twice)
    g.enterprise = ent
    return s


def check_keys(s, run, stage=None, sort=None, scope=None):
    """A stage, sort or honour-list scope must be one the run's policy version declares (its
    stages and categories are the package's, so the schema can only bound their form): 422."""
    from .. import query
    stages = query.stage_names(s, run)
    errors = {}
    if stage is not None and stage not in stages:
        errors["stage"] = [f"没有发展阶段 {stage}，可用：{'、'.join(stages)} / unknown stage"]
    if scope is not None and scope != "overall" and scope not in stages:
        errors["scope"] = [f"没有榜单范围 {scope}，可用：overall、{'、'.join(stages)} / unknown scope"]
    if sort is not None and sort not in query.SORTS and not (
            sort.endswith("_score") and sort[:-6] in query.category_titles(s, run)):
        errors["sort"] = [f"不能按 {sort} 排序 / unknown sort key"]
    if errors:
        abort(422, message="查询参数有误 / bad query", errors={"query": errors})


def pick_run(args, code=None) -> Run:
    """The run a query reads: `run` by id, else the current run of `year` (or the newest).
    Only staff (officers, finance, admins) read runs that are not published: the public,
    enterprises and banks read published runs only, whatever they ask for. With `code`, the
    current run is read with that enterprise's result in one statement (kept for the
    request, `query.result_of`): a lookup's round trips 4 -> 3."""
    s = db.session()
    public = role_of(api_user(request)) not in READERS
    if args.get("run"):
        run = s.get(Run, args["run"])
        if run is None or run.status != "done" or (public and run.published_at is None):
            abort(404, message=f"没有已完成的计算批次 {args['run']} / no such completed run")
        return run
    if code is None:
        run = current_run(s, args.get("year"), published=public)
    else:
        from ..query import remember_result
        year = args.get("year")
        params = {"lookup_code": code} if year is None else {"lookup_code": code, "lookup_year": year}
        row = s.execute(_run_and_result(year is not None, public), params).first()
        run = row[0] if row is not None else None
        if run is not None:
            remember_result(run, code, row[1])
    if run is None:
        abort(404, message="尚无已完成（或已发布）的计算批次 / no completed run yet")
    return run


_RUN_AND_RESULT = {}


def _run_and_result(by_year: bool, published: bool):
    """`pick_run`'s statement with an enterprise's result, built once per kind (with or
    without a year, published runs or all) and bound per request: building it (an aliased
    subquery and its join) took 1.6 of a lookup's 3.7 ms of server CPU (cProfile, 2026-12-05).
    The run is chosen first (LIMIT 1 in a subquery), then its one result: a join ordered and
    limited as a whole could probe the results of every done run before sorting."""
    key = (by_year, published)
    q = _RUN_AND_RESULT.get(key)
    if q is None:
        from sqlalchemy import bindparam, select
        from sqlalchemy.orm import aliased
        chosen = aliased(Run, current_run_query(bindparam("lookup_year") if by_year else None,
                                                published=published).subquery())
        q = _RUN_AND_RESULT[key] = select(chosen, Result).outerjoin(
            Result, (Result.run_id == chosen.id) & (Result.credit_code == bindparam("lookup_code")))
    return q


def run_dict(run, s):
    d = {k: getattr(run, k) for k in RunSchema().fields if k != "current"}
    d["status"] = effective_status(run, limit=current_app.config["RUN_STALE_SECONDS"])
    cur = current_run(s, run.year)
    d["current"] = cur is not None and cur.id == run.id
    return d


RESULT_COLUMNS = [("credit_code", "统一社会信用代码"), ("name", "企业名称"), ("park", "所属园区"), ("industry", "所属行业"),
                  ("stage_zh", "发展阶段"), ("excluded", "是否排除"), ("exclusion_clauses", "排除依据"),
                  ("weighted", "加权积分"), ("deductions", "扣分"), ("decay_factor", "衰减系数"), ("bonus", "加分"),
                  ("final_score", "最终积分"), ("rank_in_stage", "同阶段排名"), ("rank_overall", "全区排名")]


def result_columns(titles) -> list:
    """The result export's columns, with a column per category of the run's indicators.yaml
    (`<category>_score`, titled by the category) before the weighted score."""
    i = [k for k, _ in RESULT_COLUMNS].index("weighted")
    return RESULT_COLUMNS[:i] + [(f"{k}_score", f"{t}积分") for k, t in titles.items()] + RESULT_COLUMNS[i:]


def start(app, run_id):
    """Run in this request (tests, `RUNS_INLINE`), in a process of its own (the default,
    `RUNS_IN_PROCESS`: the server's lookups keep their speed meanwhile, see service/worker.py)
    or on a thread of the server."""
    maker = app.extensions["db_sessions"]
    every = app.config["RUN_HEARTBEAT_SECONDS"]
    if app.config.get("RUNS_INLINE"):
        execute_run(maker, run_id, heartbeat_every=every)
    elif app.config.get("RUNS_IN_PROCESS") and ":memory:" not in app.config["DATABASE_URL"] \
            and app.config["DATABASE_URL"] not in ("sqlite://", "sqlite:///"):
        from .. import worker
        try:
            worker.start(app.config["DATABASE_URL"], maker, run_id, every)
        except Exception:          # no process could be started: the run goes on a thread instead
            current_app.logger.exception("run %s: no process could be started; running it on a thread", run_id)
            threading.Thread(target=execute_run, args=(maker, run_id), kwargs={"heartbeat_every": every},
                             daemon=True, name=f"run-{run_id}").start()
    else:
        threading.Thread(target=execute_run, args=(maker, run_id), kwargs={"heartbeat_every": every}, daemon=True,
                         name=f"run-{run_id}").start()


def reap_stale_runs(s):
    """Fail the runs whose worker stopped (no heartbeat for RUN_STALE_SECONDS), before they are read."""
    fail_stale(s, current_app.config["RUN_STALE_SECONDS"])


def found(s, model, key, message):
    """The row of `model` with primary key `key`, else 404 with `message`."""
    row = s.get(model, key)
    if row is None:
        abort(404, message=message)
    return row


def run_or_404(s, run_id, done=True):
    run = s.get(Run, run_id)
    if run is None or (done and run.status != "done"):
        abort(404, message=f"没有{'已完成的' if done else ''}计算批次 {run_id}")
    return run
