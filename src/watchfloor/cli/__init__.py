"""The ``watchfloor`` command line (typer + rich). One module per command group."""

from __future__ import annotations

import typer

from watchfloor.cli import alerts, demo, evidence, importer, init, run, source, status, user, watch
from watchfloor.cli import audit as audit_cli
from watchfloor.cli import authorize as authorize_cli
from watchfloor.cli import ingest as ingest_cli
from watchfloor.cli import keys as keys_cli
from watchfloor.cli import network as network_cli
from watchfloor.cli import policy as policy_cli
from watchfloor.cli import report as report_cli
from watchfloor.cli import retention as retention_cli
from watchfloor.cli import signals as signals_cli
from watchfloor.cli import web as web_cli
from watchfloor.cli import worker as worker_cli

app = typer.Typer(
    name="watchfloor",
    help="Self-hosted 24/7 monitoring of public social media, with accountability built in.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("init")(init.init)
app.command("run")(run.run)
app.command("ingest")(ingest_cli.ingest)  # scale-out: sources -> bus (docs/deploy.md)
app.command("worker")(worker_cli.worker)  # scale-out: bus -> match -> store
app.command("web")(web_cli.web)  # scale-out: the web UI alone
app.command("alerts")(alerts.alerts)
app.command("status")(status.status)
app.command("import")(importer.import_file)
app.add_typer(watch.app, name="watch")
app.add_typer(policy_cli.app, name="policy")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(authorize_cli.app, name="authorize")
app.command("unmask")(authorize_cli.unmask)
app.add_typer(keys_cli.app, name="keys")
app.add_typer(retention_cli.app, name="retention")
app.add_typer(report_cli.app, name="report")
app.add_typer(user.app, name="user")
app.add_typer(demo.app, name="demo")
app.add_typer(evidence.app, name="evidence")
app.add_typer(source.app, name="source")
app.add_typer(signals_cli.app, name="signals")
app.add_typer(network_cli.app, name="network")


def main() -> None:
    app()
