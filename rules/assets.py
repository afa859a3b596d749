"""Where the project's files other than Python are: the source tree's top-level folders
(templates/, static/, migrations/, tests/cases/, tests/cases-uses/, docs/), or, in an
installed wheel, the copies the build puts in rules/_assets/ (setup.py)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = Path(__file__).resolve().parent / "_assets"
# what the wheel carries: source folder -> its place under rules/_assets
FOLDERS = ("templates", "static", "migrations", "tests/cases", "tests/cases-uses", "docs")


def path(name: str) -> Path:
    """The folder `name` (one of FOLDERS): the wheel's copy when installed, else the source tree's."""
    return BUNDLED / name if BUNDLED.is_dir() else ROOT / name
