"""Notes are markdown rendered safely: no raw HTML, no scripts, no images, safe links only."""

from __future__ import annotations

from watchfloor.cases.markdown import render_markdown


def test_markdown_is_rendered() -> None:
    html = str(render_markdown("# Gauge\n\n**rising** fast, see [the map](https://maps.example/x)\n\n- one\n- two"))
    assert "<h1>Gauge</h1>" in html and "<strong>rising</strong>" in html and "<li>one</li>" in html
    assert '<a href="https://maps.example/x" rel="noopener noreferrer nofollow">the map</a>' in html


def test_nothing_active_survives() -> None:
    html = str(
        render_markdown(
            '<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1)) '
            "![pixel](https://tracker.example/p.gif) <a href='https://e.example' onclick='x()'>a</a>"
        )
    )
    assert "<script" not in html and "<img" not in html  # raw HTML is text, images are dropped
    assert 'href="javascript' not in html and "tracker.example" not in html
    assert "onclick='x()'>" not in html  # no attribute survives as markup
    assert "&lt;script&gt;" in html  # shown as text, not run
