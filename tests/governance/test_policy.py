"""The policy is data: the shipped default loads, an override merges into it by the
documented rules, every mistake is reported, and `watchfloor policy check|show` say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from watchfloor.governance.policy import GuardAction, PolicyError, check_policy_file, load_policy
from watchfloor.model import Role, Severity

CLI = [sys.executable, "-m", "watchfloor"]


def test_the_shipped_default() -> None:
    policy = load_policy(None)
    assert "demonstration" in policy.purposes and policy.purposes["public-safety"].max_watch_days == 90
    categories = {c.key: c for c in policy.protected}
    assert set(categories) == {
        "protest",
        "religion",
        "press",
        "unions",
        "political_organising",
        "immigration_status",
        "ethnicity",
    }
    assert categories["protest"].action == GuardAction.review
    assert categories["immigration_status"].action == GuardAction.refuse
    assert policy.retention.dismissed_alert_days == 30 and policy.retention.upstream_delete_hours == 24
    assert policy.sla_max_minutes[Severity.urgent] == 30
    assert set(policy.roles) == {r.value for r in Role}
    assert len(policy.digest) == 64 and policy.digest == load_policy(None).digest


def test_an_override_merges_but_cannot_narrow_the_guard(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(
        """
[policy]
name = "County emergency desk"
[purposes.flood-response]
description = "Flood warnings for the county."
max_watch_days = 14
[purposes.newsroom-verification]
enabled = false
[retention]
dismissed_alert_days = 7
[protected.religion]
action = "refuse"
terms = ["chapel*"]
[protected.health]
label = "Health"
action = "refuse"
terms = ["diagnos*", "hiv"]
""",
        encoding="utf-8",
    )
    policy = load_policy(tmp_path)
    assert policy.name == "County emergency desk" and len(policy.sources) == 2
    assert policy.purposes["flood-response"].max_watch_days == 14
    assert not policy.purposes["newsroom-verification"].enabled
    with pytest.raises(PolicyError, match="not in the policy"):
        policy.purpose("newsroom-verification")
    assert policy.retention.dismissed_alert_days == 7 and policy.retention.case_closed_days == 365
    religion = next(c for c in policy.protected if c.key == "religion")
    assert "chapel*" in religion.terms and "mosque*" in religion.terms  # added, not replaced
    assert any(c.key == "health" for c in policy.protected)
    assert policy.digest != load_policy(None).digest


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[retention]\ndismissed_alert_dayz = 3\n", "unknown key 'dismissed_alert_dayz'"),
        ("[retention]\ndismissed_alert_days = 0\n", "retention.dismissed_alert_days must be a whole number"),
        ('[protected.press]\naction = "allow"\n', 'protected.press.action must be "refuse" or "review"'),
        ('[purposes.Bad]\ndescription = "x"\nmax_watch_days = 3\n', "a purpose key is lower-case"),
        ('[purposes.x]\ndescription = ""\nmax_watch_days = 3\n', "purposes.x.description must be a non-empty"),
        ("protected = false\n", "cannot be removed"),
        ('[sla.max_minutes]\nurgent = "soon"\n', "sla.max_minutes.urgent must be a whole number"),
        ("nonsense = [\n", "policy.toml"),
    ],
)
def test_every_mistake_is_reported(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        check_policy_file(path)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_policy_check_and_show_on_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "WATCHFLOOR_HOME": str(tmp_path), "COLUMNS": "200", "NO_COLOR": "1"}
    bad = tmp_path / "bad.toml"
    bad.write_text("[retention]\ndead_letter_days = -1\nfoo = 1\n", encoding="utf-8")
    proc = subprocess.run([*CLI, "policy", "check", str(bad)], env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "2 problem(s)" in proc.stderr and "foo" in proc.stderr
    good = tmp_path / "policy.toml"
    good.write_text("[retention]\ndead_letter_days = 3\n", encoding="utf-8")
    proc = subprocess.run([*CLI, "policy", "check", str(good)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "OK" in proc.stdout
    shown = subprocess.run([*CLI, "policy", "show", "--json"], env=env, capture_output=True, text=True)
    data = json.loads(shown.stdout)
    assert data["retention"]["dead_letter_days"] == 3 and data["sources"][-1] == str(good)
