"""The policy's shape as the service sees it: the data dictionary, stages and categories of
the policy package in force (the newest published version, `policies.active`).

Pages, the API, imports and exports ask here, never a Python table: a package with other
fields, stages or categories changes what they show without a code change."""
from __future__ import annotations

from .db import session


def policy(s=None):
    """The loaded policy version (rules.policy.PolicyVersion) the service uses now; read once
    per request (a publish switches it between requests, never within one)."""
    from flask import g, has_app_context

    from . import policies
    if not has_app_context() and s is None:        # no database at hand (use-rule cases): the bundled package
        from rules.policy import load_policy
        return load_policy()
    if has_app_context() and "policy_in_force" in g:
        return g.policy_in_force
    pv = policies.loaded(policies.active(s or session()))
    if has_app_context():
        g.policy_in_force = pv
    return pv


def data(s=None):
    """The data dictionary (rules.fields.Dictionary) of the policy in force."""
    return policy(s).data


def stages(s=None) -> dict:
    """Stage key -> Chinese name, lowest level first."""
    return dict(data(s).stages)


def stage_name(key, s=None) -> str:
    return data(s).stages.get(key, key or "")


def categories(s=None) -> dict:
    """Category key -> Chinese title (indicators.yaml)."""
    pv = policy(s)
    return {k: pv.category_title(k) for k in pv.categories()}


def record_fields(s=None) -> list:
    """Identity columns and the package's fields, in the order the templates show them."""
    return data(s).record_fields


def field_labels(s=None) -> dict:
    return {f.key: f.label for f in record_fields(s)}


def import_dictionary(s=None):
    """The dictionary an import is checked against: the policy in force's, plus the fields
    that open drafts declare and it does not (each checked by its draft's declaration), so
    that the data of a field being added to the policy can be imported and what-if tested
    before the draft is published."""
    import copy

    from sqlalchemy import select

    from . import policies
    from .models import PolicyDraft
    s = s or session()
    base = data(s)
    extra = {}
    for d in s.scalars(select(PolicyDraft).where(PolicyDraft.published_version_id.is_(None))):
        try:
            pv = policies.load_files(policies.files_of(d))
        except Exception:  # noqa: BLE001 - a draft that does not load declares nothing yet
            continue
        for f in pv.data.fields:
            if base.field(f.key) is None and f.key not in extra:
                extra[f.key] = f
    if not extra:
        return base
    out = copy.copy(base)
    out.fields = list(base.fields) + list(extra.values())
    return out
