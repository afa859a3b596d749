"""No page any role reaches shows an internal word (issue 14, item 3): every GET page of the
URL map, as every role that may open it, rendered and its visible text (and the words of
placeholders, titles and labels) scanned for English sentences, clause-form YAML paths,
True/False, the policy's folder name, and the engine's own keys (by_stage, pro_rata, …)."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from rules.policy import load_policy
from tests.conftest import PASSWORD, Park, make_app
from tests.test_security_routes import EXPECTED, USERNAMES, _gathered_data, args_for

STAGES = dict(load_policy().data.stages)
RECORD_FIELD_KEYS = [f.key for f in load_policy().data.record_fields if "_" in f.key]     # (one-word keys such as "name" are English words)
INTERNAL = ["by_stage", "by_park", "by_industry", "pro_rata", "rank_priority", "score, rank", "xinxiang-2022",
            "True", "False", "None", "credit_code", "final_score", "when.", "effect.", "settings.", ".yaml", "SVC",
            "nan", *STAGES, *RECORD_FIELD_KEYS]
# three English words in a row is a sentence (or a phrase that a Chinese reader should get in Chinese)
ENGLISH = re.compile(r"\b[A-Za-z]+(?:[ ,]+[A-Za-z]+){2,}\b")
# what may stay: the product's and the API's own names, formats
ALLOWED = re.compile(r"InnoPoints 创新积分 API|OpenAPI|Bearer|Authorization|application/json|multipart/form-data")


class Text(HTMLParser):
    """The words a reader sees: text outside script/style, and placeholder/title/aria-label/alt."""

    def __init__(self):
        super().__init__()
        self.out, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        for k, v in attrs:
            if k in ("placeholder", "title", "aria-label", "alt") and v:
                self.out.append(v)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.out.append(data.strip())


def visible(html) -> str:
    p = Text()
    p.feed(html)
    return "\n".join(p.out)


def problems(text) -> list[str]:
    text = ALLOWED.sub("", text)
    found = [w for w in INTERNAL if re.search(("(?<![A-Za-z_])" if w[0].isalnum() else "") + re.escape(w)
                                              + ("(?![A-Za-z_])" if w[-1].isalnum() else ""), text)]
    found += [m.group(0) for m in ENGLISH.finditer(text)]
    return found


@pytest.fixture(scope="module")
def scan_park(tmp_path_factory):
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp('scan') / 's.db'}", WTF_CSRF_ENABLED=False)
    p = Park(app)
    p.import_golden()
    p.run_id = p.run(budget=15000000)
    p.post(f"/api/runs/{p.run_id}/publish", "officer")
    p.post(f"/api/runs/{p.run_id}/honours", "officer", json={"scope": "overall", "top_n": 10})
    p.second = p.run(budget=28000000)
    with app.app_context():
        from service import db, policies
        from service.models import User
        s = db.session()
        officer = s.query(User).filter_by(username="officer").one()
        p.draft_id = policies.create_draft(s, policies.active(s), "scan", officer, "").id
        p.version_id = policies.active(s).id
        from service.auth import create_user
        create_user(s, "dept", PASSWORD, "department", source="tax")        # a 数据报送单位 sees its pages too
        s.commit()
    p.decl_id = p.post("/api/declarations", "enterprise", json={"year": 2022, "field": "revenue", "value": "1",
                                                               "reason": "scan"}).get_json()["id"]
    p.client.put("/api/me/consent", headers=p.h("enterprise"), json={"consent": True})
    p.user_id = 1
    _gathered_data(p)          # a conflict, a published list, a 公示 with an objection: their pages too
    yield p
    app.extensions["db_engine"].dispose()


def page_urls(p):
    """(url, roles) for every page (not API, not a file) the URL map serves by GET, with
    extra query strings that open more of a page (a comparison, a lookup, a filter)."""
    app = p.app
    out = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.startswith(("/api", "/static")) or rule.endpoint in (
                "pages.favicon", "pages.export", "ws.awards_xlsx", "policy.file",
                # the guide for policy staff teaches how to write the package's files: its file
                # names, keys and commands are what it explains (each with its Chinese meaning)
                "policy.guide"):
            continue
        with app.test_request_context():
            url = app.url_for(rule.endpoint, **args_for(p, rule)) if rule.arguments else rule.rule
        out.append((url, EXPECTED["GET", rule.endpoint]))
    extra = [f"/workspace/compare?a={p.run_id}&b={p.second}", f"/workspace/awards?run={p.run_id}&code={p.own}",
             f"/bank?code={p.own}", f"/bank?code={p.other}", "/workspace/declarations?status=all",
             f"/workspace/policy/drafts/{p.draft_id}/clauses/IND-1.1", f"/workspace/policy/drafts/{p.draft_id}/clauses/RW-5",
             f"/workspace/policy/drafts/{p.draft_id}/clauses/NL-1", f"/workspace/policy/drafts/{p.draft_id}/clauses/DEC-1a",
             f"/runs/{p.run_id}/export/awards.html", "/no-such-page"]
    roles = {"public", "enterprise", "officer", "finance", "bank", "admin"}
    return out + [(u, roles) for u in extra]


def test_no_internal_words_on_any_page(scan_park):
    p = scan_park
    clients = {"public": p.app.test_client()}
    for role, name in USERNAMES.items():
        c = p.app.test_client()
        assert c.post("/login", data={"username": name, "password": PASSWORD}).status_code == 302
        clients[role] = c
    bad, seen = [], 0
    for url, roles in page_urls(p):
        for role in sorted(roles):
            r = clients[role].get(url)
            if r.status_code in (301, 302) or not r.content_type.startswith("text/html"):
                continue
            seen += 1
            found = problems(visible(r.get_data(as_text=True)))
            if found:
                bad.append(f"{url} as {role} ({r.status_code}): {sorted(set(found))[:8]}")
    assert seen > 40
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("text,flagged", [("最终积分 True", True), ("按比例（pro_rata）", True),
                                          ("this is a sentence", True), ("依据《新乡高新区企业创新积分制》", False),
                                          ("政策 xinxiang-2022", True), ("条件：when.contracts_in_year", True),
                                          ("见 rules/uses/services.yaml", True), ("积分 None", True)])
def test_the_scan_itself(text, flagged):
    assert bool(problems(text)) == flagged


@pytest.mark.parametrize("text,words", [
    ("甲: stage growth != expected startup", f"甲：发展阶段为{STAGES['growth']}，应为{STAGES['startup']}"),
    ("甲: excluded False != expected True", "甲：是否排除为否，应为是"),
    ("甲: DEC-1a did not fire", "甲：DEC-1a 未触发（应触发）"),
    ("甲: RW-5 granted 100 != expected 200", "甲：RW-5 拨付金额为 100 元，应为 200 元"),
    ("甲: final_score 12.3 != expected 12.4", "甲：最终积分为 12.3，应为 12.4")])
def test_case_failures_in_chinese(text, words):
    from service.labels import case_problem
    assert case_problem(text) == words and not problems(case_problem(text))


@pytest.mark.parametrize("title,old,new,expected", [
    ("认定（含重新认定）的高新技术企业，最高奖励10万元", 100000, 200000, "认定（含重新认定）的高新技术企业，最高奖励20万元"),
    ("成长期企业注册满9年、不足14年不升档，最终得分乘以0.9", 0.9, 0.85, "成长期企业注册满9年、不足14年不升档，最终得分乘以0.85"),
    ("经认定登记的技术合同，按交易额1%奖励", 0.01, 0.015, "经认定登记的技术合同，按交易额1.5%奖励"),
    ("当年环境信用等级为警示，扣5分", 5, 3, "当年环境信用等级为警示，扣3分"),
    ("某条款，5个或5家", 5, 3, "某条款，5个或5家")])           # named twice: left as written
def test_a_clause_title_follows_its_number(title, old, new, expected):
    from service.policies import title_following
    assert title_following(title, old, new) == expected


def test_clause_form_labels_in_words(scan_park):
    p = scan_park
    c = p.app.test_client()
    assert c.post("/login", data={"username": "officer", "password": PASSWORD}).status_code == 302
    html = c.get(f"/workspace/policy/drafts/{p.draft_id}/clauses/RW-5").get_data(as_text=True)
    labels = re.findall(r'<td class="form-label">([^<]+)</td>', html)
    assert "条件：当年登记的技术合同数 ≥" in labels and "效果：每项合同上限（元）" in labels, labels
    # saving a new cap rewrites the number the title quotes
    r = c.post(f"/workspace/policy/drafts/{p.draft_id}/clauses/RW-5", data={"v:effect.per_contract_cap": "200000"})
    assert r.status_code == 302
    html = c.get(f"/workspace/policy/drafts/{p.draft_id}").get_data(as_text=True)
    assert "每项合同最高20万元" in html and "每项合同最高10万元" not in html
