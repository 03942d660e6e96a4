"""`watchfloor watch test` and `watch lint`: what a query's parts mean, where they are found,
and warnings about parts that match too much."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from watchfloor.cli import app
from watchfloor.query import parse
from watchfloor.query.lint import lint

runner = CliRunner()


def warnings(query: str) -> list[str]:
    return [f"{f.source}: {f.message}" for f in lint(parse(query), query).findings]


def test_every_part_is_explained_and_negated_parts_are_marked():
    report = lint(parse('("bomb threat" OR evacuat* NEAR/5 school) NOT drill lang:en'))
    assert [(p.source, p.kind, p.negated) for p in report.parts] == [
        ('"bomb threat"', "phrase", False),
        ("evacuat* NEAR/5 school", "near", False),
        ("drill", "term", True),
        ("lang:en", "filter", False),
    ]
    assert "at most 5 words between them, in either order" in report.parts[1].meaning
    assert not report.findings and not report.account_targeted


def test_broad_parts_are_warned_about():
    assert warnings("the OR flood") == ["the: a very common word: on its own it matches a large share of posts"]
    assert warnings("ev* flood") == ["ev*: a wildcard after 3 letters or fewer matches very many words"]
    assert warnings("x flood") == ["x: a very short word: it matches many unrelated posts"]
    assert warnings("火 flood")[0].startswith("火: one Chinese, Japanese, Korean or Thai character")
    assert warnings("flood NEAR/40 river") == ["flood NEAR/40 river: NEAR/40 is so wide it is almost an AND"]
    assert warnings("/fire .*/")[0].startswith("/fire .*/: '.*' in a regex can span many words")
    assert warnings("flood lang:en lang:fr")[0].endswith("use OR between languages")
    assert warnings("flood or river")[-1] == "or: 'or' in lower case is a word to look for; write OR for the operator"
    assert warnings("{nasa} flood") == ["{nasa}: {...} asks for this exact case, but the word has no capitals"]
    assert warnings("flood river") == []


def test_account_targeted_filters_are_flagged():
    report = lint(parse("flood author:p:0123456789abcdef"))
    assert report.account_targeted
    assert "needs a recorded authorization approved by a second person" in report.findings[0].message


def test_watch_test_shows_the_verdict_and_where_each_part_is():
    result = runner.invoke(
        app,
        ["watch", "test", '"bomb threat" NOT drill lang:en', "--text", "A bomb threat!", "--lang", "en", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["matches"] is True
    assert [(p["part"], p["found"], p["text"]) for p in data["parts"]] == [
        ('"bomb threat"', True, ["bomb threat"]),
        ("drill", False, []),
        ("lang:en", True, []),
    ]
    assert data["explanation"]["hits"][0]["spans"] == [[2, 13]]


def test_watch_test_exits_1_without_a_match_and_2_for_a_bad_query():
    assert runner.invoke(app, ["watch", "test", "flood", "--text", "dry"]).exit_code == 1
    bad = runner.invoke(app, ["watch", "test", "flood AND", "--text", "dry"])
    assert bad.exit_code == 2


def test_watch_lint_exits_1_with_warnings():
    quiet = runner.invoke(app, ["watch", "lint", "flood river", "--json"])
    assert quiet.exit_code == 0
    assert json.loads(quiet.output)["warnings"] == []
    noisy = runner.invoke(app, ["watch", "lint", "the OR flood"])
    assert noisy.exit_code == 1
    assert "very common word" in noisy.output
