"""Pages. At this stage one: the evaluated year's results, grouped by stage."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from flask import Blueprint, abort, current_app, render_template, send_from_directory

from rules.fields import STAGES

bp = Blueprint("pages", __name__)


def load_results(results_dir):
    """The scores of a written evaluation (scores.csv + manifest.json), or None."""
    d = Path(results_dir)
    if not (d / "scores.csv").exists():
        return None
    scores = pd.read_csv(d / "scores.csv", dtype=str, keep_default_na=False)
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    return scores, manifest


@bp.route("/")
def index():
    """Results by stage: ranked enterprises of each stage, then the excluded ones."""
    loaded = load_results(current_app.config["RESULTS_DIR"])
    if loaded is None:
        return render_template("pages/no_results.html", results_dir=current_app.config["RESULTS_DIR"]), 404
    scores, manifest = loaded
    ranked = scores[scores["excluded"] == "false"].copy()
    ranked["rank_num"] = ranked["rank_in_stage"].astype(int)
    groups = [(key, STAGES[key], ranked[ranked["stage"] == key].sort_values(["rank_num", "credit_code"]))
              for key in STAGES]
    excluded = scores[scores["excluded"] == "true"]
    return render_template("pages/results.html", groups=groups, excluded=excluded, manifest=manifest)


EXPORTS = {"scores.csv": "text/csv", "awards.csv": "text/csv", "awards.html": "text/html"}


@bp.route("/export/<name>")
def export(name):
    """The evaluated year's files as written (scores, awards, the printable award list)."""
    if name not in EXPORTS or not (Path(current_app.config["RESULTS_DIR"]) / name).exists():
        abort(404)
    return send_from_directory(Path(current_app.config["RESULTS_DIR"]).resolve(), name, mimetype=EXPORTS[name],
                               as_attachment=name.endswith(".csv"))
