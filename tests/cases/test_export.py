"""Evidence exports: the ZIP's contents, `verify` proving it untouched, every kind of tampering
refused, and the command line (`watchfloor evidence export` / `verify`) as a real process."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from watchfloor.cases.export import build_export, export_case, verify_export
from watchfloor.cases.service import Cases
from watchfloor.model import Role, User, utcnow
from watchfloor.store import open_store

ANA = User("ana", Role.analyst, "x")
CLI = [sys.executable, "-m", "watchfloor"]


def make_case(store, floor) -> int:
    store.add_user(ANA)
    watch = floor.watch("Floods")
    a = floor.alert(watch, "Flood <b>at</b> the weir", raw=b'{"raw": "first \\u00e9"}')
    b = floor.alert(watch, "Second post about the weir", raw=bytes(range(256)))
    cases = Cases(store)
    case, _ = cases.open(ANA, "Weir", alert_ids=[a.id, b.id], reason="Two reports of one flood")
    cases.note(ANA, case.id, "Gauge **rising**. <script>alert(1)</script>")
    cases.add_task(ANA, case.id, "Call the duty officer", assignee="ana")
    return case.id


def rewrite(data: bytes, change) -> bytes:
    """A copy of the ZIP with ``change(name, content) -> content | None`` applied (None drops a file)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            content = change(info.filename, src.read(info.filename))
            if content is not None:
                dst.writestr(info.filename, content)
    return out.getvalue()


def test_an_export_holds_everything_and_verifies(store, floor) -> None:
    case_id = make_case(store, floor)
    exported = export_case(store, case_id, exported_by="sue", now=utcnow())
    assert exported.filename.startswith(f"case-{case_id}-evidence-") and exported.filename.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(exported.data)) as zf:
        names = set(zf.namelist())
        assert names == {
            "manifest.json", "case.json", "report.html", "HOW-TO-VERIFY.txt", "evidence/0001.raw", "evidence/0002.raw",
        }
        manifest_bytes = zf.read("manifest.json")
        manifest = json.loads(manifest_bytes)
        doc = json.loads(zf.read("case.json"))
        report = zf.read("report.html").decode()
        assert zf.read("evidence/0002.raw") == bytes(range(256))
    assert hashlib.sha256(manifest_bytes).hexdigest() == exported.manifest_sha256
    assert {f["path"] for f in manifest["files"]} == names - {"manifest.json"}
    assert doc["case"]["title"] == "Weir" and len(doc["alerts"]) == 2 and doc["tasks"][0]["assignee"] == "ana"
    assert [e["sha256"] for e in doc["evidence"]] == [
        hashlib.sha256(b'{"raw": "first \\u00e9"}').hexdigest(), hashlib.sha256(bytes(range(256))).hexdigest()
    ]
    assert all(e["author_pseudonym"].startswith("p:") for e in doc["evidence"])
    assert "Flood &lt;b&gt;at&lt;/b&gt; the weir" in report and "<script" not in report
    assert "<strong>rising</strong>" in report
    result = verify_export(exported.data)
    assert result.ok, result.problems
    assert (result.files, result.evidence, result.case_id) == (5, 2, case_id)
    # the export is on record, and on the case's timeline
    [record] = store.find_exports(exported.manifest_sha256)
    assert record.case_id == case_id and record.exported_by == "sue"
    assert store.case_file(case_id).timeline[-1].kind == "exported"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda n, c: c + b"x" if n == "evidence/0001.raw" else c, "evidence/0001.raw: changed"),
        (lambda n, c: c.replace(b"Weir", b"Wier") if n == "report.html" else c, "report.html: changed"),
        (lambda n, c: None if n == "evidence/0002.raw" else c, "evidence/0002.raw: listed in the manifest but missing"),
        (lambda n, c: c.replace(b"Weir", b"Dam") if n == "case.json" else c, "case.json: changed"),
    ],
    ids=["evidence-bytes", "report", "missing-file", "case-json"],
)
def test_tampering_is_found(store, floor, change, problem) -> None:
    exported = build_export(store.case_file(make_case(store, floor)), exported_at=utcnow(), exported_by="sue")
    result = verify_export(rewrite(exported.data, change))
    assert not result.ok
    assert any(p.startswith(problem) for p in result.problems), result.problems


def test_a_consistent_forgery_fails_the_capture_hash_or_the_record(store, floor) -> None:
    exported = build_export(store.case_file(make_case(store, floor)), exported_at=utcnow(), exported_by="sue")
    forged_bytes = b'{"raw": "something else"}'

    def forge(name: str, content: bytes) -> bytes:
        return forged_bytes if name == "evidence/0001.raw" else content

    step1 = rewrite(exported.data, forge)
    with zipfile.ZipFile(io.BytesIO(step1)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    for f in manifest["files"]:  # the forger fixes the manifest too...
        if f["path"] == "evidence/0001.raw":
            f["sha256"], f["size"] = hashlib.sha256(forged_bytes).hexdigest(), len(forged_bytes)
    step2 = rewrite(step1, lambda n, c: json.dumps(manifest).encode() if n == "manifest.json" else c)
    result = verify_export(step2)
    assert not result.ok  # ...but the evidence no longer matches its capture hash in case.json
    assert any("differs from the bytes preserved" in p for p in result.problems)
    assert result.manifest_sha256 != exported.manifest_sha256  # and the fingerprint changed


def test_extra_files_and_non_exports_are_refused(store, floor, tmp_path: Path) -> None:
    exported = build_export(store.case_file(make_case(store, floor)), exported_at=utcnow(), exported_by="sue")
    out = io.BytesIO(exported.data)
    with zipfile.ZipFile(out, "a") as zf:
        zf.writestr("evidence/0003.raw", b"planted")
    result = verify_export(out.getvalue())
    assert result.problems == ["evidence/0003.raw: not listed in the manifest (added after the export)"]
    assert not verify_export(b"not a zip").ok
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("hello.txt", "hi")
    assert verify_export(plain).problems == ["no manifest.json: this is not a watchfloor evidence export"]


def test_the_command_line_exports_and_verifies(tmp_path: Path, floor_home) -> None:
    home, case_id = floor_home
    env = {**os.environ, "WATCHFLOOR_HOME": str(home), "COLUMNS": "200"}
    out = tmp_path / "exports"
    out.mkdir()
    run = subprocess.run([*CLI, "evidence", "export", str(case_id), "--out", str(out)], env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    [zip_path] = out.iterdir()
    assert "fingerprint" in run.stdout
    ok = subprocess.run([*CLI, "evidence", "verify", str(zip_path)], env=env, capture_output=True, text=True,
                        check=False)
    assert ok.returncode == 0, ok.stderr
    assert "2 evidence file(s) match their capture hashes" in ok.stdout
    assert "recorded by this deployment" in ok.stdout
    zip_path.write_bytes(rewrite(zip_path.read_bytes(), lambda n, c: c + b"!" if n == "evidence/0002.raw" else c))
    bad = subprocess.run([*CLI, "evidence", "verify", str(zip_path)], env=env, capture_output=True, text=True,
                         check=False)
    assert bad.returncode == 1
    assert "evidence/0002.raw: changed" in bad.stderr and "NOT intact" in bad.stderr


@pytest.fixture
def floor_home(tmp_path: Path, request):
    """A WATCHFLOOR_HOME whose store holds one case with two evidence records."""
    home = tmp_path / "var"
    home.mkdir()
    s = open_store(f"sqlite:///{home / 'watchfloor.db'}")
    try:
        floor = request.getfixturevalue("floor").__class__(s)
        yield home, make_case(s, floor)
    finally:
        s.close()


def test_exporting_an_unknown_case_is_refused(store) -> None:
    from watchfloor.triage.errors import FloorError

    with pytest.raises(FloorError, match="no case with id 424242") as refused:
        export_case(store, 424242, exported_by="sue", now=utcnow())
    assert refused.value.status == 404
