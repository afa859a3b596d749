"""The pages in real headless Chromium (Debian's chromium, driven by Playwright): log in as
each role, open each page, check the figures against the API, the refusals, an import with
bad cells, a run watched to the end, that every chart draws and nothing logs an error.
A screenshot of every page goes to test-output/screenshots/."""
from __future__ import annotations

import csv
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from tests.conftest import GOLDEN, PASSWORD, Park, make_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def need_chromium():
    if CHROMIUM is None:
        if os.environ.get("INNOPOINTS_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed: make test installs it (scripts/ensure-chromium)")
        pytest.skip("no chromium")


def serving(park):
    """Serve the park's app on a free port (park.base) until the generator is closed."""
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, park.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    park.base = f"http://127.0.0.1:{server.server_port}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield park
    server.shutdown()
    thread.join()
    park.app.extensions["db_engine"].dispose()


def chromium():
    """A headless Chromium (Playwright) until the generator is closed."""
    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server on a free port over a database with the golden park, users of every role, a
    published run with a budget and a second run to compare."""
    need_chromium()
    tmp = tmp_path_factory.mktemp("site")
    app = make_app(f"sqlite:///{tmp / 'site.db'}")
    park = Park(app)
    park.import_golden()
    park.run_id = park.run(budget=28000000)
    park.post(f"/api/runs/{park.run_id}/publish", "officer")
    for scope, n in (("overall", 10), ("startup", 5), ("growth", 5), ("expansion", 5), ("mature", 5)):
        park.post(f"/api/runs/{park.run_id}/honours", "officer", json={"scope": scope, "top_n": n})
    park.second = park.run(budget=15000000)
    app.config["RUNS_INLINE"] = False          # runs started from the pages go to a process of their own
    yield from serving(park)


@pytest.fixture(scope="module")
def browser(site):
    yield from chromium()


class Tab:
    """One browser context (its own cookies) and page; every console error is kept."""

    def __init__(self, browser, site, viewport=None):
        self.site = site
        self.ctx = browser.new_context(viewport=viewport or {"width": 1280, "height": 900}, accept_downloads=True)
        self.ctx.set_default_timeout(90_000)        # a what-if or a publish on a busy two-core machine
        self.page = self.ctx.new_page()
        self.errors = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path, shot=None, status=200):
        before = len(self.errors)
        resp = self.page.goto(self.site.base + path)
        assert resp.status == status, (path, resp.status)
        if status != 200:       # the browser logs the refused page itself as an error: that one is expected
            self.errors[before:] = [e for e in self.errors[before:] if f"status of {status}" not in e]
        if shot:
            self.page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
        return resp

    def login(self, username):
        self.open("/login")
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()
        assert "退出" in self.page.inner_text("header"), self.page.content()[:500]

    def charts_drawn(self, expected):
        state = self.page.evaluate("window.innopointsCharts")
        assert state["failed"] == [] and state["drawn"] == expected, state
        # every chart has a canvas with pixels on it
        sizes = self.page.eval_on_selector_all("div.chart canvas", "cs => cs.map(c => [c.width, c.height])")
        assert len(sizes) >= expected and all(w > 100 and h > 100 for w, h in sizes), sizes
        series = self.page.evaluate("""Array.from(document.querySelectorAll('div.chart')).map(
            el => echarts.getInstanceByDom(el).getOption().series[0].data.length)""")
        assert all(n > 0 for n in series), series

    def text(self, selector):
        return self.page.inner_text(selector).strip()

    def number(self, selector):
        """A figure as the page writes it (1,234) read back as an int."""
        return int(self.text(selector).replace(",", ""))

    def close(self):
        assert self.errors == [], self.errors
        self.ctx.close()


@pytest.fixture
def tab(browser, site):
    tabs = []

    def make(**kw):
        t = Tab(browser, site, **kw)
        tabs.append(t)
        return t
    yield make
    for t in tabs:
        t.close()


def test_public_dashboard(tab, site):
    t = tab()
    t.open("/", shot="public-dashboard")
    agg = site.get("/api/aggregates").get_json()
    assert t.number("#n-evaluated") == agg["enterprises"] and t.text("#n-evaluated") == f"{agg['enterprises']:,}"
    assert t.number("#n-excluded") == agg["excluded"]
    assert t.text("#mean-score") == f"{agg['mean_score']:.2f}"
    t.charts_drawn(4)
    lists = site.get("/api/honours").get_json()["lists"]
    assert len(lists) == 5
    for h in lists:
        cells = t.page.eval_on_selector_all(f"table.ranking[data-scope={h['scope']}] tbody tr",
                                            "trs => trs.map(tr => tr.children[1].innerText)")
        assert cells == [r["name"] for r in h["entries"]]
    assert "新开〔2022〕110号" in t.text("main")
    # readable on a phone: nothing wider than the screen but the scrolling tables
    m = tab(viewport={"width": 375, "height": 800})
    m.open("/", shot="public-dashboard-phone")
    assert m.page.evaluate("document.documentElement.scrollWidth") <= 375
    m.charts_drawn(4)


def test_enterprise_profile_and_declaration(tab, site):
    t = tab()
    t.login("ent")
    t.open(f"/enterprises/{site.own}", shot="enterprise-profile")
    api = site.get(f"/api/enterprises/{site.own}", "enterprise").get_json()
    assert t.text("#final-score") == f"{api['final_score']:.4f}"
    assert t.number("#rank-in-stage") == api["rank_in_stage"] and t.text("#stage") == api["stage_zh"]
    t.charts_drawn(1)
    rows = t.page.eval_on_selector_all("#indicators tbody tr", "trs => trs.map(tr => [tr.dataset.clause, tr.children[3].innerText, tr.children[4].innerText])")
    assert [r[0] for r in rows] == [i["clause"] for i in api["indicators"]]
    assert [r[1] for r in rows] == [f"{i['points']:.2f}" for i in api["indicators"]]
    assert [r[2] for r in rows] == [f"{i['points_median']:.2f}" for i in api["indicators"]]
    assert t.page.locator("#explanation tbody tr").count() == len(api["explanation"])
    t.page.fill("#declare-form input[name=year]", "2022")
    t.page.select_option("#declare-form select[name=field]", "graduates_hired")
    t.page.fill("#declare-form input[name=value]", "12")
    t.page.fill("#declare-form input[name=reason]", "漏报")
    t.page.click("#declare-form button")
    t.page.wait_for_load_state()
    assert "申报已提交" in t.text("main") and "待审核" in t.text("#declaration-list")
    t.page.screenshot(path=str(SHOTS / "enterprise-declared.png"), full_page=True)
    # another enterprise's profile and the officer pages are refused
    t.open(f"/enterprises/{site.other}", shot="enterprise-forbidden", status=403)
    t.open("/workspace/imports", status=403)
    t.open("/workspace/awards", status=403)
    m = tab(viewport={"width": 375, "height": 800})
    m.login("ent")
    m.open(f"/enterprises/{site.own}", shot="enterprise-profile-phone")
    assert m.page.evaluate("document.documentElement.scrollWidth") <= 375


def test_officer_workspace(tab, site, tmp_path):
    t = tab()
    t.open("/workspace/enterprises")                  # not logged in: to the login page
    assert "/login" in t.page.url
    t.login("officer")
    t.open("/workspace/enterprises?stage=growth&min_score=40&sort=final_score&order=desc", shot="officer-enterprises")
    api = site.get("/api/enterprises?stage=growth&min_score=40&sort=final_score&order=desc", "officer").get_json()
    assert t.number("#total") == api["total"]
    shown = t.page.eval_on_selector_all("#results tbody tr", "trs => trs.map(tr => [tr.dataset.code, tr.querySelector('.final').innerText])")
    assert shown == [[r["credit_code"], f"{r['final_score']:.4f}"] for r in api["items"]]
    with t.page.expect_download() as dl:
        t.page.click("text=XLSX")
    assert dl.value.suggested_filename.endswith(".xlsx")
    t.open(f"/enterprises/{site.other}", shot="officer-enterprise-record")
    assert t.page.locator("#records tbody tr").count() > 50
    # an import with bad cells shows every one
    with open(GOLDEN / "records.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0]["rd_intensity"] = "150"
    rows[3]["credit_code"] = rows[3]["credit_code"][:-1] + ("A" if rows[3]["credit_code"][-1] != "A" else "B")
    bad = tmp_path / "bad.csv"
    with open(bad, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    t.open("/workspace/imports")
    t.page.set_input_files("#import-form input[type=file]", str(bad))
    t.page.click("#import-form button")
    t.page.wait_for_load_state()
    t.page.screenshot(path=str(SHOTS / "officer-import-bad-cells.png"), full_page=True)
    cells = t.page.eval_on_selector_all("#bad-cells tbody tr", "trs => trs.map(tr => [tr.children[0].innerText, tr.children[2].innerText])")
    assert ["2", "150"] in cells and any(c[0] == "5" for c in cells)
    assert "未导入任何数据" in t.text("main")
    t.errors = [e for e in t.errors if "status of 422" not in e]    # the page's own status for a rejected file
    # the declaration made by the enterprise (or a new one) is reviewed
    d = site.post("/api/declarations", "enterprise", json={"year": 2022, "field": "standards", "value": "2",
                                                             "reason": "补报"}).get_json()
    t.open("/workspace/declarations", shot="officer-declarations")
    row = t.page.locator(f"#queue tr[data-id='{d['id']}']")
    row.locator("input[name=reason]").fill("核实")
    row.locator("button[value=approve]").click()
    t.page.wait_for_load_state()
    assert site.get("/api/declarations?status=approved", "officer").get_json()[-1]["id"] == d["id"]
    # start a run and watch it to the end
    t.open("/workspace/runs", shot="officer-runs")
    t.page.fill("#run-form input[name=budget]", "20000000")
    t.page.click("#run-form button")
    t.page.wait_for_selector("#status[data-status=done]", timeout=60_000)
    t.page.screenshot(path=str(SHOTS / "officer-run-done.png"), full_page=True)
    run_id = int(re.search(r"/runs/(\d+)", t.page.url).group(1))
    assert site.get(f"/api/runs/{run_id}", "officer").get_json()["status"] == "done"
    assert t.number("#enterprises") == site.get(f"/api/runs/{run_id}", "officer").get_json()["enterprises"]
    t.open(f"/workspace/compare?a={site.run_id}&b={run_id}", shot="officer-compare")
    diff = site.get(f"/api/runs/{site.run_id}/diff/{run_id}", "officer").get_json()
    assert t.page.locator("#diff-awards tbody tr").count() == max(1, min(500, len(diff["awards"])))


def test_finance_award_list(tab, site, tmp_path):
    """The award list as the finance bureau uses it (issue 14, item 2): figures against the
    API, in 元 with separators; filter, sort, page; the XLSX opened by openpyxl (title row,
    totals row equal to the page's, number formats); the printable list with its signature
    block and page numbers in the PDF the browser prints."""
    import openpyxl
    t = tab()
    t.login("finance")
    t.open(f"/workspace/awards?run={site.run_id}", shot="finance-awards")
    api = site.get(f"/api/awards?run={site.run_id}", "finance").get_json()
    assert t.text("#granted-yuan") == f"{api['totals']['granted_yuan']:,}"
    assert t.text("#budget") == f"{api['totals']['budget_yuan']:,}"
    assert "按比例分配" in t.text("#budget-text")
    for item in api["totals"]["per_clause"]:
        cells = t.page.locator(f"#per-item tr[data-clause='{item['clause']}'] td").all_inner_texts()
        assert cells[0] == item["title"] and cells[1] == item["clause"]         # the item's name beside its id
        assert cells[-1] == f"{item['granted_yuan']:,}" and cells[-2] == f"{item['eligible_yuan']:,}"
    assert t.number("#line-count") == len(api["items"])
    assert t.page.locator("#award-lines tbody tr").count() == min(50, len(api["items"]))
    assert t.number("#lines-granted") == api["totals"]["granted_yuan"]
    t.charts_drawn(1)
    axis = t.page.evaluate("echarts.getInstanceByDom(document.querySelector('div.chart')).getOption().yAxis[0].data")
    assert all(a and not a.startswith("RW-") for a in axis), axis       # item names on the chart's axis
    # filter by an item: the lines and their total are that item's
    item = api["totals"]["per_clause"][0]
    t.page.select_option("#award-filters select[name=clause]", item["clause"])
    t.page.select_option("#award-filters select[name=sort]", "granted_yuan")
    t.page.select_option("#award-filters select[name=order]", "desc")
    t.page.click("#award-filters button")
    t.page.wait_for_load_state()
    t.page.screenshot(path=str(SHOTS / "finance-awards-filtered.png"), full_page=True)
    assert t.number("#line-count") == item["lines"] and t.number("#lines-granted") == item["granted_yuan"]
    shown = t.page.eval_on_selector_all("#award-lines tbody tr", "trs => trs.map(tr => tr.dataset.clause)")
    assert set(shown) == {item["clause"]}
    granted = [int(x.replace(",", "")) for x in t.page.locator("#award-lines td.granted").all_inner_texts()]
    assert granted == sorted(granted, reverse=True)
    # the whole list: paging
    t.open(f"/workspace/awards?run={site.run_id}")
    if len(api["items"]) > 50:
        first = t.page.eval_on_selector_all("#award-lines tbody tr", "trs => trs.map(tr => tr.dataset.code + tr.dataset.clause)")
        t.page.click("#next-page")
        t.page.wait_for_load_state()
        second = t.page.eval_on_selector_all("#award-lines tbody tr", "trs => trs.map(tr => tr.dataset.code + tr.dataset.clause)")
        assert second and not set(first) & set(second)
    code = api["items"][0]["credit_code"]
    t.page.fill("#lookup-form input[name=code]", code)
    t.page.click("#lookup-form button")
    t.page.wait_for_load_state()
    t.page.screenshot(path=str(SHOTS / "finance-eligibility.png"), full_page=True)
    elig = site.get(f"/api/enterprises/{code}/eligibility?run={site.run_id}", "finance").get_json()["items"]
    shown = t.page.eval_on_selector_all("#eligibility tbody tr", "trs => trs.map(tr => tr.children[3].innerText)")
    assert shown == [f"{i['granted_yuan']:,}" for i in elig]
    with t.page.expect_download() as dl:
        t.page.click("#xlsx-link")
    assert dl.value.suggested_filename == f"award-list-2022-batch{site.run_id}.xlsx"
    path = tmp_path / "list.xlsx"
    dl.value.save_as(path)
    ws = openpyxl.load_workbook(path)["奖励名单"]
    assert "2022年度" in ws["A1"].value and "新开〔2022〕110号" in ws["A2"].value
    last = ws.max_row
    assert ws.cell(last, 1).value == "合计" and ws.cell(last, 9).value == api["totals"]["granted_yuan"]
    assert ws.cell(4, 9).number_format == "#,##0" and ws.freeze_panes == "A4"
    t.open(f"/workspace/awards/print?run={site.run_id}", shot="finance-print")
    assert "经办人" in t.text("#signatures") and "审核人" in t.text("#signatures")
    assert t.text("#print-granted") == f"{api['totals']['granted_yuan']:,}"
    pdf = t.page.pdf(format="A4", landscape=True)
    (SHOTS.parent / "award-list-print.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000
    t.open("/workspace/imports", status=403)


@pytest.mark.parametrize("user, allowed, refused", [("bank", ["/"], ["/workspace/enterprises", "/results"]),
                                                    ("admin", ["/workspace/imports", "/results"], [])])
def test_other_roles(tab, site, user, allowed, refused):
    t = tab()
    t.login(user)
    for path in allowed:
        t.open(path, shot=f"{user}-{path.strip('/').replace('/', '-') or 'home'}")
    for path in refused:
        t.open(path, status=403)
        assert "无权访问" in t.text("main")


def test_policy_authoring_checks_as_you_type(tab, site):
    t = tab()
    t.login("officer")
    t.open("/workspace/policy/", shot="policy-versions")
    t.page.fill("#new-draft input[name=name]", "browser-draft")
    t.page.click("#new-draft button")
    t.page.wait_for_load_state()
    draft_url = t.page.url
    assert "/workspace/policy/drafts/" in draft_url
    t.page.screenshot(path=str(SHOTS / "policy-draft.png"), full_page=True)
    assert "衰减降档系数表" in t.text("#source")          # the policy text beside the clauses
    t.page.click("a:text-is('DEC-1a')")
    t.page.wait_for_load_state()
    field = t.page.locator("input[data-path='effect.factor']")
    field.fill("1.5")
    t.page.wait_for_selector("#live[data-state=bad]")
    assert "超出范围" in t.text("#live-problems")
    t.page.screenshot(path=str(SHOTS / "policy-clause-invalid.png"), full_page=True)
    field.fill("0.95")
    t.page.wait_for_selector("#live[data-state=ok]")
    assert t.text("#live-problems") == ""
    t.page.click("#clause-form button[type=submit]")
    t.page.wait_for_load_state()
    t.page.click("#do-whatif")
    t.page.wait_for_load_state()
    t.page.screenshot(path=str(SHOTS / "policy-whatif.png"), full_page=True)
    draft_id = int(draft_url.rstrip("/").rsplit("/", 1)[1])
    api = site.post(f"/api/policies/drafts/{draft_id}/whatif", "officer", json={"year": 2022}).get_json()
    assert t.number("#wi-changed") == api["summary"]["enterprises_changed"]
    t.page.click("#do-publish")
    t.page.wait_for_load_state()
    assert "用例未通过" in t.text("main") and t.page.locator("#failures tbody tr").count() >= 1
    assert site.get("/api/policy").get_json()["name"] == "xinxiang-2022"       # not published


def test_uses_pages(tab, site):
    t = tab()
    t.login("officer")
    t.open("/workspace/seed-pool", shot="officer-seed-pool-empty")
    t.page.click("#pool-form button")
    t.page.wait_for_load_state()
    t.page.screenshot(path=str(SHOTS / "officer-seed-pool.png"), full_page=True)
    pool = site.get("/api/seed-pool?year=2022", "officer").get_json()
    assert t.number("#pool-size") == len(pool["entries"]) == t.page.locator("#pool tbody tr").count()
    t.open(f"/workspace/services?run={site.run_id}&stage=growth", shot="officer-services")
    api = site.get(f"/api/services?run={site.run_id}&stage=growth", "officer").get_json()["items"]
    assert t.page.locator("#services tbody tr").count() == min(2000, len(api))
    t.open("/workspace/report?year=2022", shot="monitoring-report")
    m = site.get("/api/reports/monitoring?year=2022", "officer").get_json()
    assert t.number("#r-enterprises") == m["enterprises"] and t.number("#r-excluded") == m["excluded"]
    assert t.text("#r-granted") == f"{m['awards']['granted_yuan']:,}"
    t.charts_drawn(4)
    with t.page.expect_download() as dl:
        t.page.click("#pdf-link")
    assert dl.value.suggested_filename == "monitoring-2022.pdf"
    b = tab()
    b.login("bank")
    b.open(f"/bank?code={site.other}", shot="bank-refused")
    assert "未同意" in b.text("#refused")
    site.client.put("/api/me/consent", headers=site.h("enterprise"), json={"consent": True})
    b.open(f"/bank?code={site.own}", shot="bank-reference")
    ref = site.get(f"/api/credit/{site.own}", "bank").get_json()
    assert b.text("#grade") == ref["grade"] and b.text("#band") == ref["rank_band"]
    b.charts_drawn(1)
    e = tab()
    e.login("ent")
    e.open(f"/enterprises/{site.own}", shot="enterprise-lookups")
    assert e.page.locator("#lookups tbody tr").count() >= 2 and "已提供" in e.text("#lookups")
    assert e.page.locator("#services tbody tr").count() >= 1


# ---- issue 14: phones, chart boxes, every page at 1366 and 390 px, the roles' new pieces --------------

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 900}
# every text box of every chart (title, labels, axis names), from the renderer's own display list
CHART_BOXES = """Array.from(document.querySelectorAll('div.chart')).map(el => {
  const ch = echarts.getInstanceByDom(el);
  const title = (ch.getOption().title || [{}])[0].text || '';
  const boxes = [];
  ch.getZr().storage.getDisplayList(true).forEach(d => {
    if ((d.type !== 'text' && d.type !== 'tspan') || d.ignore || d.invisible || !d.style || d.style.text == null || String(d.style.text) === '') return;
    const r = d.getBoundingRect().clone();
    const m = d.getComputedTransform();
    if (m) r.applyTransform(m);
    boxes.push({text: String(d.style.text), x: r.x, y: r.y, w: r.width, h: r.height});
  });
  return {id: el.dataset.chart, w: ch.getWidth(), h: ch.getHeight(), title: title, boxes: boxes};
})"""


def chart_problems(page) -> list[str]:
    """Text boxes over a chart's title, and labels cut off at the chart's edges."""
    out = []
    for c in page.evaluate(CHART_BOXES):
        titles = [b for b in c["boxes"] if b["text"] == c["title"]]
        assert titles, (c["id"], "title not drawn", c["title"])
        t = titles[0]
        for b in c["boxes"]:
            if b is t or b["text"] == c["title"]:
                continue
            overlap_x = min(t["x"] + t["w"], b["x"] + b["w"]) - max(t["x"], b["x"])
            overlap_y = min(t["y"] + t["h"], b["y"] + b["h"]) - max(t["y"], b["y"])
            if overlap_x > 1 and overlap_y > 1:
                out.append(f"{c['id']}: {b['text']!r} over the title")
            if b["x"] < -1 or b["y"] < -1 or b["x"] + b["w"] > c["w"] + 1 or b["y"] + b["h"] > c["h"] + 1:
                out.append(f"{c['id']}: {b['text']!r} cut off ({b['x']:.0f},{b['y']:.0f},{b['w']:.0f}x{b['h']:.0f} "
                           f"in {c['w']}x{c['h']})")
    return out


def no_overflow(tab_):
    """The page body is no wider than the screen (tables scroll inside their own box)."""
    widths = tab_.page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[2] and widths[1] <= widths[2], widths


@pytest.mark.parametrize("viewport", [DESK, PHONE], ids=["1366", "390"])
def test_charts_leave_their_titles_alone_and_keep_labels_inside(tab, site, viewport):
    pages = [(None, "/", 4), ("ent", f"/enterprises/{site.own}", 1), ("finance", f"/workspace/awards?run={site.run_id}", 1),
             ("officer", "/workspace/report?year=2022", 4)]
    bad = []
    for user, path, n in pages:
        t = tab(viewport=viewport)
        if user:
            t.login(user)
        t.open(path)
        t.charts_drawn(n)
        bad += [f"{path} @{viewport['width']}: {p}" for p in chart_problems(t.page)]
    assert not bad, "\n".join(bad)


def test_phones_profile_dashboard_and_lists(tab, site):
    """At 390 px: the enterprise profile, the public dashboard, the award list, the search list,
    the audit log, the users, the bank page: no horizontal overflow of the page body."""
    for user, path, shot in [(None, "/", "phone-dashboard"), ("ent", f"/enterprises/{site.own}", "phone-profile"),
                             ("finance", f"/workspace/awards?run={site.run_id}", "phone-awards"),
                             ("finance", "/workspace/enterprises", "phone-enterprises"),
                             ("officer", "/workspace/audit", "phone-audit"), ("admin", "/workspace/users", "phone-users"),
                             ("bank", f"/bank?code={site.own}", "phone-bank"), ("officer", "/workspace/runs", "phone-runs")]:
        t = tab(viewport=PHONE)
        if user:
            t.login(user)
        t.open(path, shot=shot)
        no_overflow(t)
    # the award lines are cards on a phone: every cell says which column it is
    t = tab(viewport=PHONE)
    t.login("finance")
    t.open(f"/workspace/awards?run={site.run_id}")
    assert t.page.evaluate("getComputedStyle(document.querySelector('#award-lines thead')).display") == "none"
    label = t.page.evaluate("getComputedStyle(document.querySelector('#award-lines td.granted'), '::before').content")
    assert "拨付" in label


PAGES = {None: ["/", "/login", "/no-such-page"],
         "ent": ["/enterprises/{own}"],
         "officer": ["/results", "/workspace/enterprises", "/workspace/imports", "/workspace/declarations",
                     "/workspace/runs", "/workspace/runs/{run}", "/workspace/compare", "/workspace/awards?run={run}",
                     "/workspace/awards/print?run={run}", "/workspace/seed-pool", "/workspace/services",
                     "/workspace/report?year=2022", "/workspace/audit", "/workspace/policy/", "/enterprises/{other}"],
         "finance": ["/workspace/awards?run={run}", "/workspace/runs", "/workspace/compare"],
         "bank": ["/bank", "/bank?code={own}"],
         "admin": ["/workspace/users", "/workspace/audit"]}


@pytest.mark.parametrize("viewport", [DESK, PHONE], ids=["1366", "390"])
def test_screenshot_of_every_page(tab, site, viewport):
    """Every page each role reaches, at 1366 and 390 px, into test-output/screenshots/ (the
    body never wider than the screen; a missing page answers in Chinese)."""
    for user, paths in PAGES.items():
        t = tab(viewport=viewport)
        if user:
            t.login(user)
        for path in paths:
            url = path.format(own=site.own, other=site.other, run=site.run_id)
            name = f"{viewport['width']}-{user or 'public'}-" + (re.sub(r"[^A-Za-z0-9]+", "-", url).strip("-") or "home")
            t.open(url, shot=name, status=404 if "no-such" in url else 200)
            no_overflow(t)
            assert not re.search(r"\bTrue\b|\bFalse\b|pro_rata|xinxiang-2022", t.text("body")), url


def test_roles_new_pieces_in_the_browser(tab, site):
    # the enterprise switches its consent on its page; the bank then finds it listed
    e = tab()
    e.login("ent")
    e.open(f"/enterprises/{site.own}#credit")
    before = e.text("#consent")
    e.page.click("#consent-form button")
    e.page.wait_for_load_state()
    assert e.text("#consent") != before
    if e.text("#consent") != "同意":
        e.page.click("#consent-form button")
        e.page.wait_for_load_state()
    assert e.text("#consent") == "同意"
    e.page.screenshot(path=str(SHOTS / "enterprise-consent.png"), full_page=True)
    b = tab()
    b.login("bank")
    b.open("/bank", shot="bank-consenting")
    assert site.own in b.page.eval_on_selector_all("#consenting tbody tr", "trs => trs.map(tr => tr.dataset.code)")
    b.page.fill("#bank-form input[name=code]", " " + site.own[:9] + "-" + site.own[9:].lower() + " ")
    b.page.click("#bank-form button")
    b.page.wait_for_load_state()
    assert b.text("#grade") and site.own in b.text("#cleaned")
    # the administrator adds a user from the page; the new user logs in
    a = tab()
    a.login("admin")
    a.open("/workspace/users")
    a.page.fill("#add-user input[name=username]", "browser-clerk")
    a.page.select_option("#add-user select[name=role]", "finance")
    a.page.fill("#add-user input[name=password]", "Browser-clerk-2025")
    a.page.click("#add-user button")
    a.page.wait_for_load_state()
    assert "已新增用户 browser-clerk" in a.text("main")
    a.open("/workspace/audit?action=user.add", shot="admin-audit-search")
    assert "browser-clerk" in a.text("#audit")
    n = tab()
    n.open("/login")
    n.page.fill("#username", "browser-clerk")
    n.page.fill("#password", "Browser-clerk-2025")
    n.page.click("button[type=submit]")
    n.page.wait_for_load_state()
    assert "奖励名单" in n.text("header") and "计算批次" in n.text("header")     # the finance menu


# ---- issue 17: department extracts, provenance, 公示 (these change the data: they run last) ------

def _wait_run(site, run_id, timeout=120):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = site.get(f"/api/runs/{run_id}", "officer").get_json()
        if run["status"] in ("done", "failed"):
            assert run["status"] == "done", run
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish")


def test_department_import_and_a_figure_followed_to_its_file(tab, site, tmp_path):
    from service import db
    from service.auth import create_user
    with site.app.app_context():
        s = db.session()
        create_user(s, "tax-dept", PASSWORD, "department", display_name="区税务局 报送员", source="tax")
        s.commit()
    t = tab()
    t.login("tax-dept")
    t.open("/workspace/imports", shot="department-import")
    assert "税务局" in t.text("h1") and "营业收入" in t.text("main")
    assert t.page.get_attribute("#source-template", "href").endswith("source=tax")
    tax = tmp_path / "tax.csv"
    tax.write_text(f"统一社会信用代码,评价年度,营业收入（万元）,研发费用加计扣除所得税减免额（万元）\n{site.own},2022,,777\n",
                   encoding="utf-8")
    t.page.set_input_files("#import-form input[type=file]", str(tax))
    t.page.click("#import-form button")
    t.page.wait_for_load_state()
    assert "已导入 1 行" in t.text("main"), t.text("main")
    env = tmp_path / "env.csv"
    env.write_text(f"credit_code,year,env_credit_rating\n{site.own},2022,good\n", encoding="utf-8")
    t.page.set_input_files("#import-form input[type=file]", str(env))
    t.page.click("#import-form button")
    t.page.wait_for_load_state()
    assert "由生态环境局报送" in t.text("#bad-cells"), t.text("main")
    t.errors[:] = [x for x in t.errors if "status of 422" not in x]      # the refused file's page is a 422
    t.open("/workspace/conflicts", status=403)
    # the officer runs again; the profile's figure leads to the tax bureau's file
    r = site.post("/api/runs", "officer", json={"year": 2022, "budget": 28000000})
    run = _wait_run(site, r.get_json()["id"])
    api = site.get(f"/api/enterprises/{site.own}?run={run['id']}", "officer").get_json()
    ind = next(i for i in api["indicators"] if i["field"] == "rd_tax_deduction")
    assert ind["value"] == 777 and ind["provenance"]["source_zh"] == "税务局"
    assert ind["provenance"]["import_filename"] == "tax.csv" and ind["provenance"]["user"] == "tax-dept"
    o = tab()
    o.login("officer")
    o.open(f"/enterprises/{site.own}?run={run['id']}", shot="officer-profile-provenance")
    link = o.page.locator(f"#indicators tr[data-clause='{ind['clause']}'] a.source-link")
    assert link.inner_text() == "税务局"
    link.click()
    assert o.page.url.endswith("#prov-rd_tax_deduction")
    row = o.page.locator("#prov-rd_tax_deduction")
    assert "777" in row.inner_text() and "导入" in row.inner_text()
    row.locator("a.import-link").click()
    o.page.wait_for_load_state()
    assert o.text("#import-filename") == "tax.csv" and "tax-dept" in o.text("#import-user")
    cited = o.page.locator("#cited")
    assert cited.get_attribute("data-field") == "rd_tax_deduction" and "777" in cited.inner_text()
    o.page.screenshot(path=str(SHOTS / "officer-import-provenance.png"), full_page=True)
    # the unchanged revenue kept the golden import as its source (an empty cell reports nothing)
    prov = site.get(f"/api/enterprises/{site.own}/provenance?year=2022", "officer").get_json()["records"]["2022"]
    assert prov["revenue"]["import_filename"] == "records.csv" and prov["rd_tax_deduction"]["source_zh"] == "税务局"


def test_publicity_objection_resolution_and_final_list(tab, site, tmp_path):
    import datetime as dt
    import time
    today = dt.date.today()
    o = tab()
    o.login("officer")
    o.open("/workspace/publicity", shot="officer-publicity")
    newest = site.get("/api/runs", "officer").get_json()
    published = max(r["id"] for r in (newest["items"] if isinstance(newest, dict) else newest) if r.get("published_at"))
    o.page.select_option("#publicity-form select[name=run]", str(published))
    o.page.fill("#publicity-form input[name=starts_on]", (today - dt.timedelta(days=1)).isoformat())
    o.page.fill("#publicity-form input[name=ends_on]", (today + dt.timedelta(days=6)).isoformat())
    o.page.click("#publicity-form button")
    o.page.wait_for_load_state()
    assert "已开启公示" in o.text("main") and o.text("#publicity-state") == "公示中"
    pid = int(o.page.url.rstrip("/").rsplit("/", 1)[1])
    # the public sees the lists under 公示 with their dates
    pub = tab()
    pub.open("/publicity", shot="public-publicity")
    sec = pub.page.locator(f"#publicity-{pid}")
    assert "公示中" in sec.inner_text()
    assert sec.locator(".starts").inner_text() == (today - dt.timedelta(days=1)).isoformat()
    assert sec.locator(".ends").inner_text() == (today + dt.timedelta(days=6)).isoformat()
    api = site.get(f"/api/publicity/{pid}").get_json()
    assert sec.locator("table.publicity-awards tbody tr").count() == len(api["awards"]) > 0
    # the enterprise objects, with evidence
    e = tab()
    e.login("ent")
    e.open("/publicity")
    evidence = tmp_path / "完税证明.pdf"
    evidence.write_bytes(b"%PDF-1.4\n% evidence\n")
    form = e.page.locator(f"#publicity-{pid} form.objection-form")
    form.locator("input[name=item]").fill("营业收入有误")
    form.locator("textarea[name=reason]").fill("税务局数据未含第四季度收入")
    form.locator("input[type=file]").set_input_files(str(evidence))
    form.locator("button").click()
    e.page.wait_for_load_state()
    assert "异议已提交" in e.text("main")
    assert "待处理" in e.text(f"#publicity-{pid} table.my-objections")
    e.page.screenshot(path=str(SHOTS / "enterprise-objection.png"), full_page=True)
    # the officer sees it with its evidence, upholds it: a correction and a new run
    o.open(f"/workspace/publicity/{pid}")
    obj = o.page.locator("section.objection").first
    assert "营业收入有误" in obj.inner_text()
    href = obj.locator("a.evidence").get_attribute("href")
    assert site.get(href, "officer").data == evidence.read_bytes()
    obj.locator(".uphold-form select[name=field]").select_option("revenue")
    obj.locator(".uphold-form input[name=value]").fill("88888")
    obj.locator(".uphold-form input[name=reason]").fill("核实完税证明，异议成立")
    obj.locator(".uphold-form button").click()
    o.page.wait_for_load_state()
    assert "异议成立" in o.text("main")
    deadline = time.time() + 120
    while o.page.locator("#pending-runs").count() and time.time() < deadline:
        time.sleep(1)
        o.open(f"/workspace/publicity/{pid}")
    assert o.page.locator("#pending-runs").count() == 0
    o.page.reload()
    assert int(o.text("#publicity-run")) > published
    assert o.page.locator("table.objection-diff tbody tr").count() >= 1
    o.page.screenshot(path=str(SHOTS / "officer-objection-resolved.png"), full_page=True)
    # finalising during the period is refused; after it, the list is final
    o.page.click("#finalise-form button")
    o.page.wait_for_load_state()
    assert "尚未结束" in o.text("main")
    site.app.config["TODAY"] = (today + dt.timedelta(days=7)).isoformat()
    try:
        o.open(f"/workspace/publicity/{pid}")
        o.page.click("#finalise-form button")
        o.page.wait_for_load_state()
        assert "名单已定稿" in o.text("main") and "已定稿" in o.text("#final-statement")
        pub.open("/publicity", shot="public-publicity-final")
        sec = pub.page.locator(f"#publicity-{pid}")
        text = sec.locator(".statement").inner_text()
        assert (today - dt.timedelta(days=1)).isoformat() in text and (today + dt.timedelta(days=6)).isoformat() in text
        assert "收到异议 1 件" in text and "异议成立 1 件" in text and "核实完税证明" in text
        e.open("/publicity")
        assert "异议成立" in e.text(f"#publicity-{pid} table.my-objections")
    finally:
        site.app.config["TODAY"] = None
    actions = {a["action"] for a in site.get("/api/audit", "officer").get_json()}
    assert {"publicity.open", "objection.file", "objection.uphold", "publicity.run", "publicity.finalise"} <= actions
