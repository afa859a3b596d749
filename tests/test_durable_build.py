"""durable-rules 2.0.28, patched (scripts/durable-rules), compiles under gcc 14's default errors
on this Python and works: issue 18.

The sources are compiled here with the compiler and flags this Python was built with, plus
-Werror=implicit-function-declaration -Werror=incompatible-pointer-types -Werror=int-conversion
(errors by default from gcc 14), linked into durable_rules_engine, and imported in a fresh
interpreter that runs a tiny ruleset. The sdist is the one scripts/build-durable-wheel caches
(.wheels/sdist/), else pip downloads it; without either the test is skipped.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATCH = ROOT / "scripts" / "durable-rules" / "durable_rules-2.0.28-py313.patch"
SDIST_NAME = "durable_rules-2.0.28.tar.gz"
SDIST_SHA256 = "053b26f5e48d312d4fa27995243f954671be6eece477f150c059c364eb4d7d61"
GCC14_ERRORS = ["-Werror=implicit-function-declaration", "-Werror=incompatible-pointer-types",
                "-Werror=int-conversion"]
# what the package's setup.py compiles, and with which flags of its own
LIB_SOURCES = [f"src/rules/{name}.c" for name in ("json", "rete", "state", "events", "regex")]
EXT_SOURCE = "src/rulespy/rules.c"
SETUP_FLAGS = ["-std=c99", "-D_GNU_SOURCE"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    cache = Path(os.environ.get("DURABLE_WHEEL_CACHE", ROOT / ".wheels"))
    cached = cache / "sdist" / SDIST_NAME
    if cached.is_file():
        path = cached
    else:
        dl = tmp_path_factory.mktemp("sdist")
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                            "-d", str(dl), "durable_rules==2.0.28"], capture_output=True, text=True, timeout=300)
        path = dl / SDIST_NAME
        if r.returncode or not path.is_file():
            pytest.skip(f"{SDIST_NAME} is neither cached in {cache / 'sdist'} (scripts/build-durable-wheel puts it "
                        f"there) nor downloadable (no network?): {r.stderr.strip().splitlines()[-1:]}")
    assert _sha256(path) == SDIST_SHA256, f"{path} is not the PyPI sdist of durable_rules 2.0.28"
    return path


def _unpack(sdist: Path, dest: Path, patched: bool) -> Path:
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):  # 3.11.4+; without it 3.12-3.13 warn
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)
    src = dest / "durable_rules-2.0.28"
    if patched:
        if shutil.which("patch"):
            cmd = ["patch", "--quiet", "--forward", "-p1", "-i", str(PATCH)]
        else:
            cmd = ["git", "apply", "-p1", str(PATCH)]
        r = subprocess.run(cmd, cwd=src, capture_output=True, text=True)
        assert r.returncode == 0, f"the patch does not apply: {r.stdout}{r.stderr}"
    return src


def _compile_command(src: Path, source: str, obj: Path) -> list[str]:
    cfg = sysconfig.get_config_var
    return [*shlex.split(cfg("CC")), *shlex.split(cfg("CFLAGS") or ""), *shlex.split(cfg("CCSHARED") or ""),
            *SETUP_FLAGS, *GCC14_ERRORS, f"-I{src / 'src' / 'rules'}", f"-I{sysconfig.get_paths()['include']}",
            "-c", str(src / source), "-o", str(obj)]


def _compile(src: Path, source: str, obj: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_compile_command(src, source, obj), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def patched_build(sdist, tmp_path_factory) -> Path:
    """The patched sources compiled with the gcc 14 errors; a directory holding durable_rules_engine and durable."""
    work = tmp_path_factory.mktemp("durable-build")
    src = _unpack(sdist, work, patched=True)
    objs = []
    for source in LIB_SOURCES + [EXT_SOURCE]:
        obj = work / (Path(source).stem + ("_ext" if source == EXT_SOURCE else "") + ".o")
        r = _compile(src, source, obj)
        assert r.returncode == 0, f"{source} does not compile with {' '.join(GCC14_ERRORS)}:\n{r.stderr}"
        objs.append(str(obj))
    out = work / "site"
    out.mkdir()
    ext = out / ("durable_rules_engine" + sysconfig.get_config_var("EXT_SUFFIX"))
    r = subprocess.run([*shlex.split(sysconfig.get_config_var("LDSHARED")), *objs, "-o", str(ext)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"linking durable_rules_engine failed:\n{r.stderr}"
    shutil.copytree(src / "libpy" / "durable", out / "durable")
    return out


RULESET = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import durable_rules_engine, durable
    from durable.engine import MessageNotHandledException
    from durable.lang import ruleset, when_all, m, post, get_host
    for module in (durable_rules_engine, durable):
        assert module.__file__.startswith(sys.argv[1]), module.__file__

    fired, stored = [], []
    with ruleset("tiny"):
        @when_all(m.amount > 10)
        def big(c):
            fired.append(c.m.amount)
            c.assert_fact({"seen": c.m.amount})

        @when_all(+m.seen)
        def seen(c):
            fired.append(("seen", c.m.seen))

    host = get_host()
    host.get_ruleset("tiny")

    def store(ruleset, sid, mid, message_type, content):
        stored.append(ruleset)
        return 0

    # the engine calls this back through PyObject_CallObject, the call the patch changes
    host.set_store_message_callback(store)
    post("tiny", {"amount": 50})
    try:
        post("tiny", {"amount": 5})
    except MessageNotHandledException:
        fired.append("not handled")
    assert fired == [50, ("seen", 50), "not handled"], fired
    assert stored and set(stored) == {"tiny"}, stored
    print("ok")
""")


def test_patched_sources_compile_with_gcc14_errors_and_a_ruleset_fires(patched_build):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", RULESET, str(patched_build)], capture_output=True, text=True,
                       timeout=120, cwd=patched_build, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


@pytest.mark.skipif(sys.version_info < (3, 13), reason="PyEval_CallObject exists (deprecated) before CPython 3.13")
def test_unpatched_rules_c_is_rejected_on_313(sdist, tmp_path):
    """The flags bite: the released rules.c calls PyEval_CallObject, gone from 3.13's C API."""
    src = _unpack(sdist, tmp_path, patched=False)
    r = _compile(src, EXT_SOURCE, tmp_path / "rules.o")
    assert r.returncode != 0 and "PyEval_CallObject" in r.stderr, r.stderr


def test_patch_names_its_origin_and_licence():
    text = PATCH.read_text()
    header = text.split("\n--- a/", 1)[0]
    assert "jruizgit/rules pull request #403" in header and "MIT" in header
    assert {line.split()[1] for line in text.splitlines() if line.startswith("+++ ")} == {
        "b/setup.py", "b/src/rulespy/rules.c"}
