"""公示 and objections (异议): before money is paid, a published run's award list and honour
lists are shown for a period; enterprises may object meanwhile; each objection is upheld (a
data correction and a new run, whose diff is kept with it) or rejected with its reason; when
the period has ended and no objection is open, the officer finalises the list, which then
states the period, the objections and their outcomes. Every step is in the audit log."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from sqlalchemy import func, select

from . import query, uses
from .models import HonourList, Objection, ObjectionFile, Publicity, Run, User, utcnow
from .runs import create_run
from .runs import publish as publish_run
from .store import FieldRejected, audit, correct_field, evidence_kind, get_record

STATUS_ZH = {"upcoming": "公示未开始", "open": "公示中", "ended": "公示期已结束，待定稿", "final": "已定稿"}
OBJECTION_ZH = {"open": "待处理", "upheld": "异议成立，已更正并重新计算", "rejected": "异议不成立，已驳回"}


class PublicityError(ValueError):
    pass


def today() -> dt.date:
    """The date periods are judged by (config TODAY in tests; the server's date otherwise)."""
    from flask import current_app, has_app_context
    if has_app_context() and current_app.config.get("TODAY"):
        return dt.date.fromisoformat(current_app.config["TODAY"])
    return dt.date.today()


def state(p: Publicity, on=None) -> str:
    on = on or today()
    if p.status == "final":
        return "final"
    if on < p.starts_on:
        return "upcoming"
    return "open" if on <= p.ends_on else "ended"


def open_period(s, run: Run, starts_on, ends_on, user) -> Publicity:
    """Open a 公示 period for a published run's award list and honour lists."""
    if run.status != "done" or run.published_at is None:
        raise PublicityError(f"第 {run.id} 批次尚未发布：只能公示已发布的批次")
    if ends_on < starts_on:
        raise PublicityError("公示结束日期不能早于开始日期")
    busy = s.scalar(select(Publicity).where(Publicity.year == run.year, Publicity.status == "open"))
    if busy is not None:
        raise PublicityError(f"{run.year} 年度已有公示（第 {busy.id} 号）尚未定稿")
    p = Publicity(run_id=run.id, first_run_id=run.id, year=run.year, starts_on=starts_on, ends_on=ends_on,
                  status="open", opened_by=user.id if user else None, statement="")
    s.add(p)
    s.flush()
    audit(s, user, "publicity.open", f"run:{run.id}", publicity=p.id, starts_on=starts_on, ends_on=ends_on)
    return p


def check_evidence(name, head: bytes, size, limit) -> str:
    """The content type of an evidence file, or PublicityError: its type by name and by its
    first bytes, its size within `limit`."""
    suffix, ctype, agrees = evidence_kind(name, head)
    if ctype is None:
        raise PublicityError(f"证明材料「{name}」的类型不受支持：只接受 PDF、PNG、JPG、XLSX、CSV")
    if size > limit:
        raise PublicityError(f"证明材料「{name}」超过 {limit // 2**20} MB")
    if size == 0:
        raise PublicityError(f"证明材料「{name}」是空文件")
    if not agrees:
        raise PublicityError(f"证明材料「{name}」不是 UTF-8 文本" if suffix == ".csv"
                             else f"证明材料「{name}」的内容与其类型（{suffix}）不符")
    return ctype


def file_objection(s, p: Publicity, user: User, item, reason, uploads, limit, max_files) -> Objection:
    """An enterprise's objection during the period, with its evidence files (each read no
    further than `limit` + 1 bytes: a larger one is refused before it is kept)."""
    if state(p) != "open":
        raise PublicityError(f"不在公示期内（{p.starts_on} 至 {p.ends_on}），不能提出异议")
    uploads = [u for u in uploads if u and u.filename]
    if len(uploads) > max_files:
        raise PublicityError(f"证明材料最多 {max_files} 个")
    files = []
    for u in uploads:
        try:
            content = u.stream.read(limit + 1)
        finally:
            u.close()
        ctype = check_evidence(u.filename, content[:64], len(content), limit)
        files.append(ObjectionFile(filename=Path(u.filename).name[:255], content_type=ctype, size=len(content),
                                   sha256=hashlib.sha256(content).hexdigest(), content=content))
    o = Objection(publicity_id=p.id, credit_code=user.credit_code, item=item, reason=reason, status="open",
                  filed_by=user.id, decision="", correction="")
    s.add(o)
    s.flush()
    for f in files:
        f.objection_id = o.id
        s.add(f)
    audit(s, user, "objection.file", f"publicity:{p.id}", objection=o.id, item=item,
          evidence=[{"name": f.filename, "size": f.size, "sha256": f.sha256} for f in files])
    return o


def decide(s, o: Objection, user, uphold, reason, field=None, year=None, value=None, start=None) -> Objection:
    """Resolve an objection: upheld — the record is corrected (audited as a correction) and a
    new run of the year is made (`start(run_id)` runs it), its diff against the 公示 run is
    what the objection shows; rejected — the reason is kept."""
    if o.status != "open":
        raise PublicityError("该异议已处理")
    p = s.get(Publicity, o.publicity_id)
    if p.status == "final":
        raise PublicityError("公示已定稿")
    if uphold:
        if not field or value is None:
            raise PublicityError("异议成立时须给出更正的字段和值")
        year = year or p.year
        rec = get_record(s, o.credit_code, year)
        if rec is None:
            raise PublicityError(f"{o.credit_code} 没有 {year} 年度记录")
        try:
            old, new = correct_field(s, rec, field, value, user, reason=f"异议 #{o.id} 成立：{reason}")
        except FieldRejected as exc:
            raise PublicityError("更正值不合规：" + "；".join(c.reason_zh for c in exc.cells)) from None
        from .store import text_of
        o.correction = json.dumps({"field": field, "year": year, "old": text_of(old), "new": text_of(new)},
                                  ensure_ascii=False)
        base = s.get(Run, p.run_id)
        o.old_run_id = base.id
        o.status, o.decided_by, o.decided_at, o.decision = "upheld", user.id, utcnow(), reason
        s.flush()
        run = create_run(s, p.year, user, policy=None, budget=base.budget, strategy=base.strategy)   # commits
        o.new_run_id = run.id
        s.commit()
        audit(s, user, "objection.uphold", f"publicity:{p.id}", objection=o.id, correction=json.loads(o.correction),
              new_run=run.id)
        s.commit()
        if start is not None:
            start(run.id)
        adopt_runs(s, p, user)
    else:
        o.status, o.decided_by, o.decided_at, o.decision = "rejected", user.id, utcnow(), reason
        audit(s, user, "objection.reject", f"publicity:{p.id}", objection=o.id, reason=reason)
    return o


def adopt_runs(s, p: Publicity, user=None):
    """Once the run made for an upheld objection is done, it becomes the run under 公示:
    published, with the honour lists of the run it replaces made again from it."""
    for o in s.scalars(select(Objection).where(Objection.publicity_id == p.id, Objection.status == "upheld",
                                               Objection.new_run_id.is_not(None)).order_by(Objection.id)):
        run = s.get(Run, o.new_run_id)
        if run is not None:
            s.refresh(run)            # its worker wrote through a session of its own
        if run is None or run.status != "done" or o.new_run_id <= p.run_id:
            continue
        if run.published_at is None:
            publish_run(s, run, user)
        for h in s.scalars(select(HonourList).where(HonourList.run_id == p.run_id).order_by(HonourList.id)).all():
            uses.publish_honours(s, run, h.scope, h.top_n, user)
        audit(s, user, "publicity.run", f"publicity:{p.id}", old_run=p.run_id, new_run=run.id, objection=o.id)
        p.run_id = run.id
    s.commit()


def pending_runs(s, p) -> list:
    out = []
    for o in s.scalars(select(Objection).where(Objection.publicity_id == p.id, Objection.status == "upheld")):
        run = s.get(Run, o.new_run_id) if o.new_run_id else None
        if run is not None:
            s.refresh(run)
            if run.status != "done":
                out.append(run.id)
    return out


def finalise(s, p: Publicity, user):
    """Finalise the list when the period has ended and no objection is open; the final list
    states the period, the objections and their outcomes."""
    if p.status == "final":
        raise PublicityError("公示已定稿")
    if state(p) != "ended":
        raise PublicityError(f"公示期（{p.starts_on} 至 {p.ends_on}）尚未结束，不能定稿")
    adopt_runs(s, p, user)
    n_open = s.scalar(select(func.count()).select_from(Objection).where(Objection.publicity_id == p.id,
                                                                          Objection.status == "open"))
    if n_open:
        raise PublicityError(f"还有 {n_open} 件异议未处理，不能定稿")
    if pending_runs(s, p):
        raise PublicityError("异议成立后的重新计算尚未完成，不能定稿")
    objections = [objection_dict(s, o, public=True) for o in objections_of(s, p)]
    p.statement = json.dumps({"starts_on": p.starts_on.isoformat(), "ends_on": p.ends_on.isoformat(),
                              "run_id": p.run_id, "first_run_id": p.first_run_id, "objections": len(objections),
                              "upheld": sum(o["status"] == "upheld" for o in objections),
                              "rejected": sum(o["status"] == "rejected" for o in objections),
                              "outcomes": objections}, ensure_ascii=False)
    p.status, p.finalised_by, p.finalised_at = "final", user.id, utcnow()
    audit(s, user, "publicity.finalise", f"publicity:{p.id}", run=p.run_id, objections=len(objections))


def objections_of(s, p, code=None):
    q = select(Objection).where(Objection.publicity_id == p.id).order_by(Objection.id)
    if code:
        q = q.where(Objection.credit_code == code)
    return s.scalars(q).all()


def objection_dict(s, o: Objection, public=False) -> dict:
    """An objection and its outcome; `public` leaves out the evidence and who filed it."""
    from .models import Enterprise
    ent = s.get(Enterprise, o.credit_code)
    d = {"id": o.id, "publicity_id": o.publicity_id, "credit_code": o.credit_code, "name": ent.name if ent else "",
         "item": o.item, "status": o.status, "status_zh": OBJECTION_ZH.get(o.status, o.status),
         "decision": o.decision, "correction": json.loads(o.correction) if o.correction else None,
         "old_run_id": o.old_run_id, "new_run_id": o.new_run_id,
         "diff_url": f"/api/runs/{o.old_run_id}/diff/{o.new_run_id}" if o.new_run_id else None,
         "decided_at": _iso(o.decided_at)}
    if not public:
        d.update(reason=o.reason, filed_at=_iso(o.filed_at),
                 evidence=[{"id": f.id, "filename": f.filename, "content_type": f.content_type, "size": f.size,
                            "sha256": f.sha256, "url": f"/api/objections/{o.id}/evidence/{f.id}"}
                           for f in s.scalars(select(ObjectionFile).where(ObjectionFile.objection_id == o.id)
                                              .order_by(ObjectionFile.id))])
        new = s.get(Run, o.new_run_id) if o.new_run_id else None
        if new is not None:
            s.refresh(new)
        if new is not None and new.status == "done":
            diff = query.diff(s, s.get(Run, o.old_run_id), new, limit=20)
            d["diff"] = {"summary": diff["summary"], "enterprises": diff["enterprises"], "awards": diff["awards"][:20]}
        elif new is not None:
            d["diff"] = None
            d["new_run_status"] = new.status
    return d


def _iso(when):
    return when.isoformat(timespec="seconds") + "+00:00" if when else None


def publicity_dict(s, p: Publicity, lists=True) -> dict:
    """A 公示 as the public sees it: the period, its state, the award list and honour lists
    of the run under 公示, and once final, the statement."""
    run = s.get(Run, p.run_id)
    d = {"id": p.id, "year": p.year, "run_id": p.run_id, "first_run_id": p.first_run_id,
         "starts_on": p.starts_on.isoformat(), "ends_on": p.ends_on.isoformat(), "state": state(p),
         "state_zh": STATUS_ZH[state(p)], "finalised_at": _iso(p.finalised_at),
         "title": f"{p.year}年度企业创新积分奖励名单及榜单"}
    if lists:
        awards = query.award_lines(s, run)
        d["awards"] = [{k: a[k] for k in ("credit_code", "name", "clause", "title", "granted_yuan")} for a in awards]
        d["granted_yuan"] = sum(a["granted_yuan"] for a in awards)
        d["honours"] = [{"scope": h.scope, "title": h.title, "entries": json.loads(h.entries)}
                        for h in s.scalars(select(HonourList).where(HonourList.run_id == p.run_id)
                                           .order_by(HonourList.id))]
        d["objections_filed"] = len(objections_of(s, p))
    if p.status == "final" and p.statement:
        d["statement"] = json.loads(p.statement)
    return d
