"""The wheel carries the pages, the stylesheet, the migrations and the clause cases: they live
at the top of the source tree (templates/, static/, migrations/, tests/cases/ …), and the
build copies them into rules/_assets/, where rules/assets.py finds them once installed.
Everything else is in setup.cfg."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

FOLDERS = ("templates", "static", "migrations", "tests/cases", "tests/cases-uses", "docs")


class BuildWithAssets(build_py):
    def run(self):
        super().run()
        root = Path(__file__).resolve().parent
        dst = Path(self.build_lib) / "rules" / "_assets"
        for name in FOLDERS:
            if (root / name).is_dir():
                shutil.copytree(root / name, dst / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "screenshots"))


setup(cmdclass={"build_py": BuildWithAssets})
