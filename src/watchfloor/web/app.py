"""The web application: pages, JSON API and live events over one store.

``create_app`` only wires things together; the store, settings and alert signal belong
to the caller (the embedded runner shares its pipeline's signal, so new alerts reach
open browsers as soon as they are committed). It opens the deployment's governance once
(``app.state.gov``): every request a signed-in person makes is written to its audit log
(web/audit.py), and watches, authorizations and the auditor's pages act through it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from watchfloor import __version__
from watchfloor.config import Settings
from watchfloor.governance.service import Governance
from watchfloor.model import utcnow
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.store import Store
from watchfloor.web import (
    routes_account,
    routes_api,
    routes_auth,
    routes_authorizations,
    routes_network,
    routes_oversight,
    routes_pages,
    routes_watches,
    sse,
)
from watchfloor.web.audit import RequestAudit
from watchfloor.web.errors import install_error_handlers
from watchfloor.web.floor import install_floor
from watchfloor.web.openapi import install_openapi
from watchfloor.web.permissions import template_can
from watchfloor.web.query_params import one_value_each
from watchfloor.web.rendering import build_templates
from watchfloor.web.routes_ops import install_ops
from watchfloor.web.security_headers import SecurityHeaders
from watchfloor.web.throttle import LoginThrottle

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings, store: Store, signal: AlertSignal | None = None) -> FastAPI:
    app = FastAPI(
        title="watchfloor",
        version=__version__,
        summary="Explainable alerts from public social media, with accountability built in.",
        # the interactive docs pages load their scripts from a CDN: off (the schema stays)
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        dependencies=[Depends(one_value_each)],  # /api/: a query parameter given twice is a 422
    )
    app.state.settings = settings
    app.state.store = store
    app.state.signal = signal
    app.state.templates = build_templates()
    app.state.throttle = LoginThrottle()
    app.state.streams_closing = threading.Event()
    app.state.clock = utcnow  # replaceable (tests); sessions, the floor and governance read it
    app.state.gov = Governance.open(settings, store, clock=lambda: app.state.clock())
    install_error_handlers(app)
    app.add_middleware(RequestAudit)  # inside SecurityHeaders: a 503 it sends gets the headers too
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(routes_api.health_router)
    install_ops(app, store)  # /readyz and /metrics, public like /healthz (web/routes_ops.py)
    app.include_router(routes_api.router)
    app.include_router(routes_auth.router)
    app.include_router(routes_pages.router)
    app.include_router(sse.router)
    app.include_router(routes_network.api)  # signals and networks: /api/network, /api/spikes
    app.include_router(routes_network.pages)  # /network, /network.gexf, /trends
    install_floor(app)  # queue, cases, wall, figures, notifications
    # accountability: watches and their approval, authorizations and unmasking, the
    # auditor's pages, one's own account (second factor, API tokens)
    for module in (routes_watches, routes_authorizations, routes_oversight, routes_account):
        app.include_router(module.api)
        app.include_router(module.pages)
    app.state.templates.env.globals["can"] = template_can  # can("perm") or can(viewer, "perm")
    install_openapi(app)  # security schemes and error answers in /openapi.json
    return app
