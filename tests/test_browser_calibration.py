"""The calibration pages in headless Chromium (issue 15), on a demo park: the run's
diagnostics page names the flagged indicators and draws its charts; on a draft that scores
IND-1.1 by plain min–max, the tuning view names IND-1.1 and a method that improves it (read
from the page, checked against the API); the profile shows 提升空间 on a 390 px phone."""
from __future__ import annotations

import pytest

from tests.conftest import Park, make_app
from tests.test_browser import SHOTS, Tab, chromium, need_chromium, serving

YEAR = 2025


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory):
    need_chromium()
    from service.demo import generate, write_csv
    tmp = tmp_path_factory.mktemp("calib-site")
    records, contracts = generate(800, YEAR, seed=2022, history=3)
    write_csv(records, tmp / "records.csv")
    write_csv(contracts, tmp / "contracts.csv")
    app = make_app(f"sqlite:///{tmp / 'site.db'}")
    park = Park(app)
    assert park.upload(tmp / "records.csv", "records").status_code == 201
    assert park.upload(tmp / "contracts.csv", "contracts").status_code == 201
    park.run_id = park.run(year=YEAR)
    park.post(f"/api/runs/{park.run_id}/publish", "officer")
    park.own_demo = park.get(f"/api/enterprises?run={park.run_id}&excluded=false&per_page=1&sort=rank_overall&order=desc",
                             "officer").get_json()["items"][0]["credit_code"]
    draft = park.post("/api/policies/drafts", "officer", json={"name": "minmax-1-1"}).get_json()
    r = park.client.patch(f"/api/policies/drafts/{draft['id']}/clauses/IND-1.1", headers=park.h("officer"),
                          json={"changes": {"method": "minmax"}})
    assert r.status_code == 200, r.get_json()
    park.draft_id = draft["id"]
    yield from serving(park)


@pytest.fixture(scope="module")
def browser(demo_site):
    yield from chromium()


@pytest.fixture
def tab(browser, demo_site):
    tabs = []

    def make(**kw):
        t = Tab(browser, demo_site, **kw)
        tabs.append(t)
        return t
    yield make
    for t in tabs:
        t.close()


def test_run_diagnostics_page(tab, demo_site):
    site = demo_site
    t = tab()
    t.login("officer")
    t.open(f"/workspace/runs/{site.run_id}")
    t.page.click("#diagnostics-link")
    t.page.wait_for_load_state()
    t.page.screenshot(path=str(SHOTS / "calibration-run.png"), full_page=True)
    api = site.get(f"/api/runs/{site.run_id}/diagnostics", "officer").get_json()
    stages = t.page.locator("section.diag-stage")
    assert stages.count() == len(api["stages"])
    for n, st in enumerate(api["stages"]):
        sec = stages.nth(n)
        assert sec.locator("h2").inner_text().startswith(st["stage_zh"])
        assert sec.locator("td.skewness").inner_text() == f"{st['skewness']:,.4f}"
        verdicts = sec.locator("ul.verdict li")
        assert [verdicts.nth(i).get_attribute("data-met") == "yes" for i in range(3)] == \
               [v["met"] for v in st["verdict"].values()]
    flagged = {i["clause"] for st in api["stages"] for i in st["indicators"] if i["flags"]}
    assert flagged, "the demo park flags at least one indicator"
    page_flagged = t.page.locator("tr.flagged").all_inner_texts()
    assert {x.split()[0] for x in page_flagged} == flagged
    t.charts_drawn(3 * len(api["stages"]))
    with t.page.expect_download() as dl:
        t.page.click("#xlsx-link")
    assert dl.value.suggested_filename.endswith(".xlsx")


def test_tuning_view_names_a_flagged_indicator_and_a_method_that_improves_it(tab, demo_site):
    site = demo_site
    t = tab()
    t.login("officer")
    t.open(f"/workspace/policy/drafts/{site.draft_id}")
    t.page.select_option("#diagnose-form select[name=year]", str(YEAR))
    t.page.click("#do-draft-diagnose")
    t.page.wait_for_load_state()
    t.page.screenshot(path=str(SHOTS / "calibration-draft-tuning.png"), full_page=True)
    tuned = t.page.locator("#tuning section.tuned[data-clause='IND-1.1']")
    assert tuned.count() >= 1
    first = tuned.first
    assert "基尼" in first.locator("p.flags").inner_text()
    improving = first.locator("tr.improves td.method").all_inner_texts()
    assert "百分位" in improving
    api = site.post(f"/api/policies/drafts/{site.draft_id}/diagnostics", "officer", json={"year": YEAR}).get_json()
    api_tuned = next(x for x in api["after"]["tuning"] if x["clause"] == "IND-1.1")
    assert improving == [o["method_zh"] for o in api_tuned["options"] if o["improves"]]
    assert t.page.locator("#before-after tbody tr").count() == len(api["after"]["stages"])
    t.charts_drawn(3 * len(api["after"]["stages"]))


def test_potential_on_the_profile_on_a_phone(tab, demo_site):
    site = demo_site
    t = tab(viewport={"width": 390, "height": 844})
    t.login("officer")
    code = site.own_demo
    t.open(f"/enterprises/{code}", shot="profile-potential-phone")
    api = site.get(f"/api/enterprises/{code}/potential?run={site.run_id}", "officer").get_json()
    rows = t.page.locator("#potential-1 tbody tr")
    assert rows.count() == len(api["by_target"]["median"]) > 0
    best = api["by_target"]["median"][0]
    assert rows.first.get_attribute("data-clause") == best["clause"]
    assert f"{best['final_after']:,.4f}" in rows.first.locator("td.final-after").inner_text()
    assert t.page.evaluate("document.documentElement.scrollWidth") <= 390
    t.open(f"/workspace/runs/{site.run_id}/closest", shot="officer-closest")
    assert t.page.locator("section.closest-list").count() >= 1
