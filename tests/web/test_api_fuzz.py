"""schemathesis against the real app's OpenAPI schema, over real HTTP on loopback.

Every operation of /openapi.json is called with hypothesis-generated path and query
parameters, headers and bodies — valid ones, and (negative mode, coverage phase) ones that
break the schema on purpose — by an API token of three accounts:

- ``supervisor``: every permission a supervisor can grant (the widest write access: triage,
  cases, approvals, unmask, notification rules);
- ``admin``: every permission an admin can grant (the auditor's pages, the floor's reads);
- ``auditor``: the low-privilege run (most operations are refused, and must be refused cleanly).

A run passes only if no answer is a server error and every answer is one the schema
declares: its status code, content type, headers and body shape. The store is seeded with
watches, alerts, a case and authorizations, so small ids reach real objects.

Reproducible by default (a fixed seed, a bounded number of examples); a deeper campaign by
hand, with a new seed each run (a failure prints the seed to run it again; docs/testing.md)::

    WATCHFLOOR_FUZZ_EXAMPLES=500 WATCHFLOOR_FUZZ_SEED=random .venv/bin/pytest -q tests/web/test_api_fuzz.py
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from watchfloor.cases.service import Cases
from watchfloor.config import Settings
from watchfloor.governance.passwords import hash_password
from watchfloor.model import AuthorizationKind, Role, User, utcnow
from watchfloor.store import Store, open_store
from watchfloor.web.app import create_app
from watchfloor.web.tokens import create_token, grantable_scopes

EXAMPLES = int(os.environ.get("WATCHFLOOR_FUZZ_EXAMPLES", "15"))
_SEED = os.environ.get("WATCHFLOOR_FUZZ_SEED", "20261125")
SEED = random.SystemRandom().getrandbits(64) if _SEED == "random" else int(_SEED)
PURPOSE = "public-safety"

CHECKS = {
    "not_a_server_error": {"enabled": True},
    "status_code_conformance": {"enabled": True},
    "content_type_conformance": {"enabled": True},
    "response_headers_conformance": {"enabled": True},
    "response_schema_conformance": {"enabled": True},
    "negative_data_rejection": {"enabled": True},
    # schema-valid input may be refused by a rule (400: "the title is empty", no such account),
    # never as invalid (422): that would mean the schema and the server disagree
    "positive_data_acceptance": {"enabled": True, "expected-statuses": ["2xx", "400", "401", "403", "404", "409"]},
    "missing_required_header": {"enabled": True},
    "ignored_auth": {"enabled": True},
    "unsupported_method": {"enabled": True},
    "use_after_free": {"enabled": False},
    "ensure_resource_availability": {"enabled": False},
}


def fuzz_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"mode": "all", "max-examples": EXAMPLES, "database": "none"},
            "checks": CHECKS,
            "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
                       "stateful": {"enabled": False}},
            "request-timeout": 30,
        }
    )  # fmt: skip


def _seed(app: FastAPI, store: Store, make_watch: Callable[..., Any], make_alert: Callable[..., Any]) -> None:
    """Watches (approved and pending), alerts, an open case holding two of them, and an
    approved unmask authorization for that case — so the small ids the fuzzer tries exist."""
    people = {
        "ana": Role.analyst,
        "sam": Role.supervisor,
        "sue": Role.supervisor,
        "adam": Role.admin,
        "aud": Role.auditor,
    }
    secret = hash_password("correct horse battery staple")
    for name, role in people.items():
        store.add_user(User(username=name, role=role, password_hash=secret))
    watch = make_watch()
    make_watch("second", query="flood* NEAR/3 river", severity="medium")
    alerts = [make_alert(watch, native_id=f"at://did:plc:fuzz/app.bsky.feed.post/{n}") for n in range(4)]
    gov = app.state.gov
    cases = Cases(store, clock=utcnow)
    ana = store.get_user("ana")
    assert ana is not None
    case, _ = cases.open(ana, "Fuzzing case", alert_ids=[a.id for a in alerts[:2]], reason="seeded for fuzzing")
    auth = gov.authorizations.request(
        kind=AuthorizationKind.unmask, by="ana", purpose=PURPOSE, pseudonyms=["p:0a1b2c3d4e5f6071"],
        expires_at=utcnow() + timedelta(days=3), legal_basis="seeded", case_id=str(case.id),
    )  # fmt: skip
    gov.authorizations.approve(auth.id, by="sam", note="seeded")
    gov.authorizations.request(
        kind=AuthorizationKind.unmask, by="ana", purpose=PURPOSE, pseudonyms=["p:0a1b2c3d4e5f6072"],
        expires_at=utcnow() + timedelta(days=3), legal_basis="seeded", case_id=str(case.id),
    )  # fmt: skip


ACCOUNTS = {"supervisor": "sam", "admin": "adam", "auditor": "aud"}
pytestmark = pytest.mark.slow  # about a minute per account


def _schema_of_the_app() -> dict[str, Any]:
    """The OpenAPI schema the app serves, from an app over a throwaway store (collection
    needs the schema before any fixture runs; the live app below builds the same one)."""
    with tempfile.TemporaryDirectory() as home:
        store = open_store(f"sqlite:///{home}/schema.db")
        try:
            return create_app(Settings(home=Path(home), db_url=store.url), store).openapi()
        finally:
            store.close()


schema = schemathesis.openapi.from_dict(_schema_of_the_app(), config=fuzz_config())


@pytest.fixture(params=sorted(ACCOUNTS))
def bearer(request: pytest.FixtureRequest, app: FastAPI, store: Store, make_watch: Any, make_alert: Any) -> str:
    """The Authorization header of an API token with every scope the account can grant."""
    print(f"to run this again: WATCHFLOOR_FUZZ_SEED={SEED} WATCHFLOOR_FUZZ_EXAMPLES={EXAMPLES}")  # shown on failure
    _seed(app, store, make_watch, make_alert)
    user = store.get_user(ACCOUNTS[request.param])
    assert user is not None
    token, _ = create_token(
        store, user, name="fuzz", scopes=[p.value for p in grantable_scopes(user)], days=1, now=utcnow()
    )
    return f"Bearer {token}"


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one live server per operation and account
def test_every_operation_answers_as_its_schema_says(case: Any, live: Any, bearer: str) -> None:
    case.call_and_validate(base_url=live.base_url, headers={"Authorization": bearer})


def test_the_fuzzed_schema_is_the_one_served_and_says_how_to_authenticate(client: Any) -> None:
    served = client.get("/openapi.json").json()
    assert served == schema.raw_schema
    assert set(served["components"]["securitySchemes"]) == {"apiToken", "sessionCookie"}
    operations = [(path, op) for path, item in served["paths"].items() for op in item.values()]
    api = [(path, op) for path, op in operations if path.startswith("/api/")]
    assert len(api) >= 50
    for path, op in api:
        assert op["security"] == [{"apiToken": []}, {"sessionCookie": []}], path
        for status in ("401", "403", "503"):
            assert op["responses"][status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorOut"
            }, (path, status)
        invalid = op["responses"].get("422")
        assert invalid is None or "ErrorOut" in invalid["content"]["application/json"]["schema"]["$ref"], path
    assert "HTTPValidationError" not in served["components"]["schemas"]  # errors are {"error": ...}, always
