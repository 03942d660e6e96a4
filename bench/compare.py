"""The closed loop of this checkout against another commit's, interleaved, in one run.

    .venv/bin/python bench/compare.py --base 48cdc77                # all collections
    .venv/bin/python bench/compare.py --base main~3 --posts-only --runs 5

For a change that should make the pipeline faster (or not slower): the same benchmark
harness (this checkout's ``bench/pipeline.py --closed-only``) runs the library of
``--base`` (a ``git worktree`` of it, removed afterwards) and of this checkout, one run
of each in turn, each in a fresh process, so that both see the same moments of a noisy
machine. Prints every run, the medians, their ratio and the ratio of each pair. The base
must be recent enough for the harness to drive it (the match helper and its figures).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import load_average, machine, median

ROOT = Path(__file__).resolve().parent.parent


def closed_loop(src: Path, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """One closed-loop run of the library in ``src`` (fresh process); its figures."""
    command = [sys.executable, str(ROOT / "bench" / "pipeline.py"), "--closed-only", "--repeats", "1"]
    command += ["--events", str(args.events), "--json", str(out)]
    if args.posts_only:
        command.append("--posts-only")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT / "bench")])}
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text(encoding="utf-8"))["closed_loop"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the commit to compare against (any git revision)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each, interleaved (default 3)")
    parser.add_argument("--events", type=int, default=300_000, help="events per run (default 300,000)")
    parser.add_argument("--posts-only", action="store_true", help="the default Jetstream subscription's events only")
    args = parser.parse_args()

    print(f"closed loop, this checkout against {args.base} — {machine()}, load average {load_average():.1f}")
    print(f"{args.events:,} events{' (posts only)' if args.posts_only else ''}, {args.runs} runs each, interleaved")
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.base], check=True)
        try:
            runs: dict[str, list[float]] = {"base": [], "this": []}
            for n in range(args.runs):
                for label, src in (("base", tree / "src"), ("this", ROOT / "src")):
                    figures = closed_loop(src, args, Path(folder) / f"{label}-{n}.json")
                    runs[label].append(figures["posts_per_s"])
                    print(f"  run {n + 1} {label}: {figures['posts_per_s']:,.0f} posts/s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    base, this = median(runs["base"]), median(runs["this"])
    pairs = ", ".join(f"{b / a:.2f}" for a, b in zip(runs["base"], runs["this"], strict=True))
    print(f"\nmedians: {args.base} {base:,.0f} posts/s, this checkout {this:,.0f} posts/s")
    print(f"this / base: {this / base:.2f}x (run by run: {pairs})")


if __name__ == "__main__":
    main()
