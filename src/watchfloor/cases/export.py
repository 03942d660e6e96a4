"""Evidence exports: one ZIP per case that proves itself untouched.

Inside the ZIP::

    manifest.json          every other file with its SHA-256 and size (the export's fingerprint
                           is the SHA-256 of this file; the store records it)
    case.json              the case: alerts, evidence records, notes, tasks, timeline
    report.html            the same, readable in any browser (no scripts, nothing loaded)
    evidence/0001.raw ...  each preserved post's bytes exactly as received
    HOW-TO-VERIFY.txt      how to check all of this without watchfloor

:func:`verify_export` re-hashes every file against the manifest, refuses files the
manifest does not list, and checks every evidence file against the SHA-256 taken when the
post was preserved. ``watchfloor evidence verify`` also looks the fingerprint up in the
deployment's record of exports.

Authors appear as pseudonyms only. The raw bytes are what the platform sent (sources
drop personal fields they do not need before storing them); they are never shown in the
report, only hashed and included.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from watchfloor import __version__
from watchfloor.cases.markdown import render_markdown
from watchfloor.model import CaseFile, Evidence, EvidenceExport
from watchfloor.store import Store
from watchfloor.triage.errors import FloorError

FORMAT = "watchfloor-evidence/1"
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class ExportedCase:
    data: bytes
    filename: str
    manifest_sha256: str


@dataclass(slots=True)
class VerifyReport:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    manifest_sha256: str | None = None
    case_id: int | None = None
    exported_at: str | None = None
    exported_by: str | None = None
    files: int = 0
    evidence: int = 0

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def evidence_path(index: int) -> str:
    return f"evidence/{index:04d}.raw"


def _evidence_record(e: Evidence, path: str) -> dict[str, Any]:
    return {
        "id": e.id,
        "file": path,
        "sha256": e.sha256,
        "size": len(e.raw),
        "alert_id": e.alert_id,
        "platform": e.platform,
        "native_id": e.native_id,
        "version": e.version,
        "source_url": e.source_url,
        "captured_at": _iso(e.captured_at),
        "preserved_at": _iso(e.preserved_at),
        "preserved_by": e.preserved_by,
        "post_created_at": _iso(e.post_created_at),
        "author_pseudonym": e.author,
        "lang": e.lang,
        "text": e.text,
    }


def case_document(cf: CaseFile, *, exported_at: datetime, exported_by: str) -> dict[str, Any]:
    """The case as the JSON inside an export."""
    c = cf.case
    return {
        "format": FORMAT,
        "exported_at": _iso(exported_at),
        "exported_by": exported_by,
        "tool": f"watchfloor {__version__}",
        "case": {
            "id": c.id,
            "title": c.title,
            "status": c.status.value,
            "owner": c.owner,
            "created_by": c.created_by,
            "created_at": _iso(c.created_at),
            "updated_at": _iso(c.updated_at),
        },
        "alerts": [
            {
                "id": ca.view.alert.id,
                "watch_id": ca.view.alert.watch_id,
                "watch": ca.view.watch_name,
                "severity": ca.view.severity.value,
                "score": ca.view.alert.score,
                "status": ca.view.alert.status.value,
                "created_at": _iso(ca.view.alert.created_at),
                "due_at": _iso(ca.view.alert.due_at),
                "explanation": ca.view.alert.explanation.to_dict(),
                "post": {
                    "platform": ca.view.alert.post.platform,
                    "native_id": ca.view.alert.post.native_id,
                    "version": ca.view.alert.post.version,
                    "deleted_upstream": ca.view.post is None,
                },
                "added_by": ca.added_by,
                "added_at": _iso(ca.added_at),
                "reason": ca.reason,
            }
            for ca in cf.alerts
        ],
        "evidence": [_evidence_record(e, evidence_path(i)) for i, e in enumerate(cf.evidence, start=1)],
        "notes": [
            {"id": n.id, "author": n.author, "created_at": _iso(n.created_at), "markdown": n.body} for n in cf.notes
        ],
        "tasks": [
            {
                "id": t.id,
                "title": t.title,
                "status": t.status.value,
                "assignee": t.assignee,
                "due_at": _iso(t.due_at),
                "created_by": t.created_by,
                "created_at": _iso(t.created_at),
                "done_at": _iso(t.done_at),
                "done_by": t.done_by,
            }
            for t in cf.tasks
        ],
        "timeline": [{"at": _iso(e.at), "actor": e.actor, "kind": e.kind, "detail": e.detail} for e in cf.timeline],
    }


_REPORT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Case {{ doc.case.id }}: {{ doc.case.title }} · evidence report</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; color: #111; background: #fff;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: .3rem .5rem; text-align: left; vertical-align: top; }
code, .mono { font-family: ui-monospace, monospace; font-size: .88em; overflow-wrap: anywhere; }
blockquote { margin: .5rem 0; padding: .5rem 1rem; border-left: 4px solid #555; background: #f3f3f3;
             white-space: pre-wrap; }
.muted { color: #555; }
</style></head><body>
<h1>Case {{ doc.case.id }}: {{ doc.case.title }}</h1>
<p>Status <strong>{{ doc.case.status }}</strong> · owner {{ doc.case.owner }}
· opened {{ doc.case.created_at }} by {{ doc.case.created_by }}</p>
<p class="muted">Exported {{ doc.exported_at }} by {{ doc.exported_by }} with {{ doc.tool }}.
Authors are shown as pseudonyms only.
Check this export with <code>watchfloor evidence verify</code> or by hand (HOW-TO-VERIFY.txt).</p>

<h2>Evidence ({{ doc.evidence|length }})</h2>
{% for e in doc.evidence %}
<h3>{{ loop.index }}. {{ e.platform }} post, version {{ e.version }}</h3>
<table>
<tr><th scope="row">File</th><td class="mono">{{ e.file }} ({{ e.size }} bytes)</td></tr>
<tr><th scope="row">SHA-256</th><td class="mono">{{ e.sha256 }}</td></tr>
<tr><th scope="row">Captured</th><td>{{ e.captured_at }}</td></tr>
<tr><th scope="row">Preserved</th><td>{{ e.preserved_at }} by {{ e.preserved_by }}</td></tr>
<tr><th scope="row">Posted</th><td>{{ e.post_created_at or "—" }}</td></tr>
<tr><th scope="row">Platform id</th><td class="mono">{{ e.native_id }}</td></tr>
<tr><th scope="row">Source URL</th><td class="mono">{{ e.source_url or "—" }}</td></tr>
<tr><th scope="row">Author</th><td class="mono">{{ e.author_pseudonym }} (pseudonym)</td></tr>
<tr><th scope="row">Language</th><td>{{ e.lang or "—" }}</td></tr>
<tr><th scope="row">From alert</th><td>{{ e.alert_id or "—" }}</td></tr>
</table>
<blockquote>{{ e.text }}</blockquote>
{% else %}<p>No evidence preserved.</p>{% endfor %}

<h2>Alerts ({{ doc.alerts|length }})</h2>
<table><thead><tr><th>Alert</th><th>Watch</th><th>Severity</th><th>Score</th><th>Matched</th>
<th>Raised</th><th>Added</th><th>Reason</th></tr></thead><tbody>
{% for a in doc.alerts %}<tr><td>{{ a.id }}</td><td>{{ a.watch }}</td><td>{{ a.severity }}</td>
<td>{{ "%.2f"|format(a.score) }}</td>
<td>{% for h in a.explanation.hits %}<code>{{ h.term }}</code>{{ ", " if not loop.last }}{% endfor %}</td>
<td>{{ a.created_at }}</td><td>{{ a.added_at }} by {{ a.added_by }}</td><td>{{ a.reason }}</td></tr>
{% endfor %}</tbody></table>

<h2>Notes ({{ doc.notes|length }})</h2>
{% for n in notes %}<h3>{{ n.author }}, {{ n.created_at }}</h3>{{ n.html }}{% else %}<p>No notes.</p>{% endfor %}

<h2>Tasks ({{ doc.tasks|length }})</h2>
<table><thead><tr><th>Task</th><th>Status</th><th>Assignee</th><th>Due</th><th>Done</th></tr></thead><tbody>
{% for t in doc.tasks %}<tr><td>{{ t.title }}</td><td>{{ t.status }}</td><td>{{ t.assignee or "—" }}</td>
<td>{{ t.due_at or "—" }}</td><td>{{ (t.done_at ~ " by " ~ t.done_by) if t.done_at else "—" }}</td></tr>
{% else %}<tr><td colspan="5">No tasks.</td></tr>{% endfor %}</tbody></table>

<h2>Timeline</h2>
<table><thead><tr><th>When</th><th>Who</th><th>What</th><th>Detail</th></tr></thead><tbody>
{% for e in doc.timeline %}<tr><td class="mono">{{ e.at }}</td><td>{{ e.actor }}</td>
<td>{{ e.kind|replace("_", " ") }}</td><td>{{ e.detail }}</td></tr>{% endfor %}
</tbody></table>
</body></html>
"""

_HOW_TO = """How to check this evidence export without watchfloor
=====================================================

1. manifest.json lists every other file in this ZIP with its SHA-256 and size.
   Recompute them, e.g.:  unzip -d x THIS.zip && cd x && sha256sum -c <(python3 -c \\
   'import json;[print(f["sha256"]+"  "+f["path"]) for f in json.load(open("manifest.json"))["files"]]')
2. The SHA-256 of manifest.json itself is this export's fingerprint. watchfloor records it
   when the export is made; compare it with the deployment's record (the case timeline
   shows it, and `watchfloor evidence verify THIS.zip` looks it up).
3. case.json lists each evidence file with the SHA-256 taken when the post was preserved;
   each evidence/NNNN.raw file must hash to exactly that value.
"""


def _report_html(doc: dict[str, Any]) -> str:
    env = Environment(autoescape=True, undefined=StrictUndefined)
    notes = [
        {"author": n["author"], "created_at": n["created_at"], "html": render_markdown(n["markdown"])}
        for n in doc["notes"]
    ]
    return env.from_string(_REPORT).render(doc=doc, notes=notes)


def build_export(cf: CaseFile, *, exported_at: datetime, exported_by: str) -> ExportedCase:
    """The ZIP for a case file (nothing is recorded: see :func:`export_case`)."""
    doc = case_document(cf, exported_at=exported_at, exported_by=exported_by)
    files: list[tuple[str, bytes]] = [(evidence_path(i), e.raw) for i, e in enumerate(cf.evidence, start=1)]
    files.append(("case.json", json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")))
    files.append(("report.html", _report_html(doc).encode("utf-8")))
    files.append(("HOW-TO-VERIFY.txt", _HOW_TO.encode("utf-8")))
    manifest = {
        "format": FORMAT,
        "case_id": cf.case.id,
        "exported_at": _iso(exported_at),
        "exported_by": exported_by,
        "files": [{"path": path, "sha256": _sha256(data), "size": len(data)} for path, data in files],
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    stamp = exported_at.astimezone(UTC)
    date_time = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in [(MANIFEST, manifest_bytes), *files]:
            info = zipfile.ZipInfo(path, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    filename = f"case-{cf.case.id}-evidence-{stamp:%Y%m%dT%H%M%SZ}.zip"
    return ExportedCase(data=buffer.getvalue(), filename=filename, manifest_sha256=_sha256(manifest_bytes))


def export_case(store: Store, case_id: int, *, exported_by: str, now: datetime) -> ExportedCase:
    """Build a case's export and record it (fingerprint, who, when) in the store and the timeline."""
    cf = store.case_file(case_id)
    if cf is None:
        raise FloorError(404, f"no case with id {case_id}")
    exported = build_export(cf, exported_at=now, exported_by=exported_by)
    store.record_export(
        EvidenceExport(
            case_id=case_id,
            exported_at=now,
            exported_by=exported_by,
            manifest_sha256=exported.manifest_sha256,
            filename=exported.filename,
        )
    )
    return exported


def verify_export(source: Path | bytes) -> VerifyReport:
    """Check an export: every file against the manifest, every evidence file against its capture hash."""
    report = VerifyReport()
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (OSError, zipfile.BadZipFile) as exc:
        report.fail(f"not a readable ZIP file: {exc}")
        return report
    with zf:
        names = zf.namelist()
        if len(names) != len(set(names)):
            report.fail("the ZIP holds two files with the same name")
        if MANIFEST not in names:
            report.fail("no manifest.json: this is not a watchfloor evidence export")
            return report
        manifest_bytes = zf.read(MANIFEST)
        report.manifest_sha256 = _sha256(manifest_bytes)
        try:
            manifest = json.loads(manifest_bytes)
            listed = {f["path"]: f for f in manifest["files"]}
        except (ValueError, KeyError, TypeError) as exc:
            report.fail(f"manifest.json cannot be read: {exc}")
            return report
        if manifest.get("format") != FORMAT:
            report.fail(f"unknown export format {manifest.get('format')!r}")
            return report
        report.case_id = manifest.get("case_id")
        report.exported_at = manifest.get("exported_at")
        report.exported_by = manifest.get("exported_by")
        contents: dict[str, bytes] = {}
        for path, entry in listed.items():
            if path not in names:
                report.fail(f"{path}: listed in the manifest but missing")
                continue
            data = zf.read(path)
            contents[path] = data
            if len(data) != entry.get("size") or _sha256(data) != entry.get("sha256"):
                report.fail(f"{path}: changed (its SHA-256 or size differs from the manifest)")
        for extra in sorted(set(names) - set(listed) - {MANIFEST}):
            report.fail(f"{extra}: not listed in the manifest (added after the export)")
        report.files = len(listed)
        try:
            doc = json.loads(contents.get("case.json", b""))
            evidence = doc["evidence"]
        except (ValueError, KeyError, TypeError):
            report.fail("case.json is missing or cannot be read")
            return report
        for record in evidence:
            path = record.get("file")
            if path not in contents:
                report.fail(f"evidence {record.get('id')}: its file {path!r} is missing")
            elif _sha256(contents[path]) != record.get("sha256"):
                report.fail(f"{path}: differs from the bytes preserved (SHA-256 at capture {record.get('sha256')})")
        report.evidence = len(evidence)
    return report
