"""Shared fixtures: the bundled policy, the golden example, a CLI runner, the Flask app."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rules.policy import load_policy, resolve
from service import create_app

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"


@pytest.fixture(scope="session")
def policy():
    return load_policy()


@pytest.fixture
def policy_copy(tmp_path):
    """A writable copy of the bundled policy folder, for tests that edit clause files."""
    dst = tmp_path / "policy"
    shutil.copytree(resolve(None), dst)
    return dst


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def golden():
    return GOLDEN


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "RESULTS_DIR": str(tmp_path / "results")})


@pytest.fixture
def client(app):
    return app.test_client()
