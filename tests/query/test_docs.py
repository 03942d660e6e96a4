"""docs/watch-language.md stays true: its example tables and error texts are checked here."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watchfloor.model import Post
from watchfloor.query import QuerySyntaxError, compile_query, parse
from watchfloor.query.reference import reference_matches

DOC = Path(__file__).resolve().parents[2] / "docs" / "watch-language.md"
TEXT = DOC.read_text(encoding="utf-8")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def table_rows(header: str) -> list[list[str]]:
    """The cells of every row of every table whose header line is ``header``."""
    rows: list[list[str]] = []
    lines = TEXT.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != header:
            continue
        for row in lines[i + 2 :]:
            if not row.startswith("|"):
                break
            rows.append([cell.strip() for cell in row.strip().strip("|").split(" | ")])
    return rows


def code(cell: str) -> str:
    assert cell.startswith("`") and cell.endswith("`"), cell
    return cell[1:-1].replace("\\|", "|")  # a | inside a table cell is written \|


def make_post(text: str, lang: str | None = "en", **fields: object) -> Post:
    return Post(
        **{  # type: ignore[arg-type]
            "platform": "bluesky",
            "native_id": "1",
            "version": "v1",
            "created_at": NOW,
            "received_at": NOW,
            "text": text,
            "author": "p:0000000000000000",
            "lang": lang,
            **fields,
        }
    )


def post_fields(cell: str) -> dict[str, object]:
    """``lang=pt-BR; link=https://...; hashtag=Flood; author=p:...`` as Post fields ("–": none)."""
    fields: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in cell.replace("–", "").split(";"))):
        key, _, value = item.partition("=")
        if key == "lang":
            fields["lang"] = value
        elif key in ("link", "hashtag", "mention"):
            plural = {"link": "links", "hashtag": "hashtags", "mention": "mentions"}[key]
            fields[plural] = (*fields.get(plural, ()), value)  # type: ignore[misc]
        elif key == "author":
            fields["author"] = value
        else:
            raise AssertionError(f"unknown post field {key!r} in the doc")
    return fields


MATCH_ROWS = [(code(q), text, {}, m) for q, text, m in table_rows("| Query | Post text | Matches? |")] + [
    (code(q), text, post_fields(post), m) for q, text, post, m in table_rows("| Query | Post text | Post | Matches? |")
]
MEANING_ROWS = [(code(a), code(b)) for a, b in table_rows("| You write | It means |")]
ERROR_BLOCKS = [
    block
    for block in re.findall(r"```text\n(.*?)\n```", TEXT, flags=re.DOTALL)
    if block.splitlines()[-1].strip() == "^"
]


def test_the_doc_has_examples_to_check():
    assert len(MATCH_ROWS) >= 80
    assert len(MEANING_ROWS) >= 8
    assert len(ERROR_BLOCKS) >= 14


def test_the_kinds_table_lists_every_kind_an_alert_can_show():
    kinds = {code(kind) for kind, _ in table_rows("| kind | part |")}
    assert kinds == {"term", "prefix", "wildcard", "phrase", "regex", "near", "filter"}


@pytest.mark.parametrize(("query", "text", "fields", "expected"), MATCH_ROWS)
def test_match_tables(query: str, text: str, fields: dict[str, object], expected: str):
    assert expected in ("yes", "no")
    post = make_post(text, **fields)  # type: ignore[arg-type]
    assert compile_query(query).matches(post) is (expected == "yes")
    assert reference_matches(parse(query), post) is (expected == "yes")


@pytest.mark.parametrize(("written", "meaning"), MEANING_ROWS)
def test_precedence_table(written: str, meaning: str):
    assert parse(written) == parse(meaning)


@pytest.mark.parametrize("block", ERROR_BLOCKS)
def test_error_texts(block: str):
    query = block.splitlines()[1][2:]
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    assert str(caught.value) == block


def test_the_refused_examples_are_refused():
    section = TEXT.split("## Every query needs a word")[1].split("\n## ")[0]
    bullets = [line.split(" (")[0] for line in section.splitlines() if line.startswith("- ")]
    refused = [query for bullet in bullets for query in re.findall(r"`([^`]+)`", bullet)]
    assert len(refused) >= 5
    for query in refused:
        with pytest.raises(QuerySyntaxError):
            parse(query)


def test_the_opening_example_and_the_operator_table_parse():
    parse(re.search(r"```text\n(.*?)\n```", TEXT, flags=re.DOTALL).group(1))
    for operator, _meaning in table_rows("| Operator | Meaning |"):
        parse(code(operator))


def test_the_explanation_example():
    query = compile_query('"bomb threat" OR (evacuat* school) NOT drill')
    text = "Bomb threat at the school, evacuation under way"
    explanation = query.explain(make_post(text))
    assert explanation is not None
    assert [(h.term, h.kind, [text[s:e] for s, e in h.spans]) for h in explanation.hits] == [
        ('"bomb threat"', "phrase", ["Bomb threat"]),
        ("evacuat*", "prefix", ["evacuation"]),
        ("school", "term", ["school"]),
    ]
