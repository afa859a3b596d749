"""Issue 16, item 4: the wheel installs. `pip wheel .` (not editable), installed into a fresh
virtual environment, evaluates the golden example exactly and serves a page: the templates,
the stylesheet, the migrations and the clause cases travel in the wheel (setup.py copies them
into rules/_assets)."""
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.conftest import GOLDEN

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    # built from a copy of the source tree, so that no earlier build/ or egg-info leaks in
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", ".wheels", "build", "*.egg-info",
                                                             "instance", "test-output", "__pycache__", "node_modules"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True, text=True)
    wheel = next((tmp / "dist").glob("innopoints-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, text=True)
    # the dependencies (pandas, durable-rules …) are the ones this venv has: their folder is put
    # on the path of the fresh venv after its own site-packages (a .pth line adds the folder
    # only; the editable install of the source tree there is not activated)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps-of-the-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return {"wheel": wheel, "python": py, "work": tmp / "work"}


def run(installed, code, **kw):
    work = installed["work"]
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(installed["python"]), "-c", textwrap.dedent(code)], cwd=work, env=env,
                          capture_output=True, text=True, **kw)


def test_the_wheel_holds_the_pages_the_migrations_and_the_cases(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    for needed in ("rules/_assets/templates/base.html", "rules/_assets/static/css/app.css",
                   "rules/_assets/migrations/env.py", "rules/_assets/tests/cases/stage.yaml",
                   "rules/policies/xinxiang-2022/data.yaml", "rules/policies/xinxiang-2022/source-zh.md",
                   "service/shape.py"):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "templates/")) for n in names)


def test_the_installed_wheel_evaluates_the_golden_example(installed):
    out = installed["work"] / "out"
    r = run(installed, f"""
        import rules, service
        assert "site-packages" in rules.__file__ and "site-packages" in service.__file__, rules.__file__
        from service.cli import cli
        cli(["evaluate", "--records", "{GOLDEN / 'records.csv'}", "--contracts", "{GOLDEN / 'contracts.csv'}",
             "--year", "2022", "--out", "{out}"])
        """)
    assert r.returncode == 0, r.stdout + r.stderr
    cmp = subprocess.run([sys.executable, str(GOLDEN / "compare_outputs.py"), str(out), str(GOLDEN / "expected-no-budget")],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    assert (out / "awards.html").exists() and "奖励" in (out / "awards.html").read_text(encoding="utf-8")


def test_the_installed_wheel_serves_a_page(installed):
    r = run(installed, f"""
        from service import create_app
        app = create_app({{"TESTING": True, "SECRET_KEY": "x" * 40,
                          "DATABASE_URL": "sqlite:///{installed['work'] / 'w.db'}"}},
                         instance_path="{installed['work'] / 'instance'}")
        c = app.test_client()
        page = c.get("/login")
        assert page.status_code == 200, page.status_code
        text = page.get_data(as_text=True)
        assert "登录" in text and "<html" in text
        assert c.get("/static/css/app.css").status_code == 200
        print("ok")
        """)
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr
