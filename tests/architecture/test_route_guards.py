"""Fail closed: every route is either on the public list or guarded with one permission, and
every role gets 401/403 from every route it must not use. A new route without a guard, or
with a permission a role should not have, fails here."""

from __future__ import annotations

import re
import uuid

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from server.identity.guards import PERMISSION_KEY, authorize
from server.identity.permissions import ROLE_PERMISSIONS, Permission, Role
from tests.actors import Actor, World

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    # No session or device key: a Prometheus scraper presents its own bearer token, which the
    # route checks itself (tests/metrics); 404 when no token is configured.
    ("GET", "/metrics"),
    ("GET", "/schema"),
    ("GET", "/schema/openapi.json"),
    ("GET", "/schema/{path:str}"),  # Litestar's catch-all for its render plugins
    ("POST", "/v1/enrolments"),
    ("POST", "/v1/enrolments/confirm"),
    ("POST", "/v1/sessions"),
}


OPERATIVE, INVESTIGATOR, OFFICER, ADMIN = Role
EVERYONE = frozenset(Role)
# Who may use each authenticated route, written out by hand: this is the policy the permission
# table must implement, so a role granted too much (or too little) fails here.
EXPECTED: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/v1/me"): EVERYONE,
    ("DELETE", "/v1/sessions/current"): EVERYONE,
    ("PUT", "/v1/me/duress-password"): frozenset({OPERATIVE}),
    ("POST", "/v1/devices/{device_id:uuid}/revoke"): EVERYONE,
    ("POST", "/v1/invites"): frozenset({INVESTIGATOR, ADMIN}),
    ("GET", "/v1/accounts"): frozenset({INVESTIGATOR, ADMIN}),
    ("POST", "/v1/accounts/{account_id:uuid}/suspend"): frozenset({ADMIN}),
    ("POST", "/v1/accounts/{account_id:uuid}/reactivate"): frozenset({ADMIN}),
    ("POST", "/v1/accounts/{account_id:uuid}/unlock"): frozenset({ADMIN}),
    ("POST", "/v1/accounts/{account_id:uuid}/reset"): frozenset({ADMIN}),
    ("GET", "/v1/keys"): EVERYONE,
    ("PUT", "/v1/keys"): frozenset({INVESTIGATOR}),
    ("GET", "/v1/events"): EVERYONE,
    ("POST", "/v1/reports"): frozenset({OPERATIVE}),
    ("GET", "/v1/reports"): frozenset({OPERATIVE, INVESTIGATOR}),
    ("GET", "/v1/reports/{report_id:uuid}"): frozenset({OPERATIVE, INVESTIGATOR}),
    ("PATCH", "/v1/reports/{report_id:uuid}"): frozenset({INVESTIGATOR}),
    ("POST", "/v1/reports/{report_id:uuid}/messages"): frozenset({OPERATIVE, INVESTIGATOR}),
    ("GET", "/v1/reports/{report_id:uuid}/messages"): frozenset({OPERATIVE, INVESTIGATOR}),
    ("GET", "/v1/inbox"): frozenset({OPERATIVE, INVESTIGATOR}),
    ("POST", "/v1/messages/{message_id:uuid}/read"): frozenset({OPERATIVE, INVESTIGATOR}),
    ("GET", "/v1/audit"): frozenset({INVESTIGATOR, ADMIN}),
    ("GET", "/v1/audit/verify"): frozenset({INVESTIGATOR, ADMIN}),
    # Vetting is the investigators' two-person job; an admin can neither propose nor approve.
    ("POST", "/v1/officers"): frozenset({INVESTIGATOR}),
    ("GET", "/v1/officers"): frozenset({INVESTIGATOR}),
    ("POST", "/v1/officers/{officer_id:uuid}/approve"): frozenset({INVESTIGATOR}),
    ("POST", "/v1/officers/{officer_id:uuid}/suspend"): frozenset({INVESTIGATOR}),
    ("POST", "/v1/officers/{officer_id:uuid}/revoke"): frozenset({INVESTIGATOR}),
    ("POST", "/v1/leads"): frozenset({INVESTIGATOR}),
    ("GET", "/v1/leads/{lead_id:uuid}"): frozenset({INVESTIGATOR}),
    ("POST", "/v1/leads/{lead_id:uuid}/shares"): frozenset({INVESTIGATOR}),
    ("POST", "/v1/leads/{lead_id:uuid}/close"): frozenset({INVESTIGATOR}),
    ("GET", "/v1/leads/{lead_id:uuid}/access-log"): frozenset({INVESTIGATOR}),
    ("POST", "/v1/leads/{lead_id:uuid}/outcome"): frozenset({OFFICER}),
    ("POST", "/v1/shares/{share_id:uuid}/approve"): frozenset({INVESTIGATOR}),
    ("DELETE", "/v1/shares/{share_id:uuid}"): frozenset({INVESTIGATOR}),
    ("GET", "/v1/shares/{share_id:uuid}"): frozenset({OFFICER}),
    ("POST", "/v1/shares/{share_id:uuid}/ack"): frozenset({OFFICER}),
    ("GET", "/v1/assignments"): frozenset({OFFICER}),
    ("GET", "/v1/analysis/exposure"): frozenset({INVESTIGATOR}),
    ("GET", "/v1/metrics/programme"): frozenset({INVESTIGATOR}),
    # Evidence: uploaders (operatives, and investigators for their own material); downloads for
    # investigators and the owning operative; the custody log for investigators only.
    ("POST", "/v1/uploads"): frozenset({OPERATIVE, INVESTIGATOR}),
    ("PATCH", "/v1/uploads/{attachment_id:uuid}"): frozenset({OPERATIVE, INVESTIGATOR}),
    ("DELETE", "/v1/uploads/{attachment_id:uuid}"): frozenset({OPERATIVE, INVESTIGATOR}),
    ("GET", "/v1/attachments/{attachment_id:uuid}"): frozenset({OPERATIVE, INVESTIGATOR}),
    ("GET", "/v1/attachments/{attachment_id:uuid}/custody"): frozenset({INVESTIGATOR}),
}


STREAMS = {("GET", "/v1/events")}


def routes(app: Litestar) -> list[tuple[str, str, Permission | None, bool]]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                if method in {"HEAD", "OPTIONS"}:
                    continue
                guarded = authorize in handler.resolve_guards()
                permission = handler.opt.get(PERMISSION_KEY)
                found.append((str(method), route.path, permission, guarded))
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


async def test_every_route_is_public_or_guarded_with_a_permission(world: World) -> None:
    listed = routes(world.app)
    assert {(m, p) for m, p, _, _ in listed} >= PUBLIC
    for method, path, permission, guarded in listed:
        if (method, path) in PUBLIC:
            assert not guarded, f"{method} {path} is public but guarded"
            continue
        assert guarded, f"{method} {path} is neither public nor guarded"
        assert isinstance(permission, Permission), f"{method} {path} declares no permission"


def test_the_permission_table_grants_exactly_the_written_policy(world: World) -> None:
    granted = {
        (method, path): frozenset(r for r in Role if permission in ROLE_PERMISSIONS[r])
        for method, path, permission, _ in routes(world.app)
        if (method, path) not in PUBLIC
    }
    assert granted == EXPECTED


async def test_role_by_route_matrix(world: World) -> None:
    investigator = await world.first_investigator()
    people: dict[Role, Actor] = {INVESTIGATOR: investigator}
    for role in (OPERATIVE, OFFICER, ADMIN):
        people[role] = await world.invited(investigator, role.value)
    anonymous = world.client(investigator.device)

    # Logging out ends the session the other calls use, so it goes last.
    logout = ("DELETE", "/v1/sessions/current")
    for method, path in sorted(EXPECTED, key=lambda route: route == logout):
        allowed = EXPECTED[(method, path)]
        target = concrete(path)
        response = await anonymous._http.request(method, target)
        assert response.status_code == 401, f"anonymous {method} {path}"
        for role, person in people.items():
            if role in allowed and (method, path) in STREAMS:
                continue  # an allowed stream would stay open; its own tests cover it
            response = await person.client.call(method, target, person.token(), json={})
            if role in allowed:
                assert response.status_code not in {401, 403}, f"{role} {method} {path}"
            else:
                assert response.status_code == 403, f"{role} {method} {path}"


@pytest.mark.parametrize("role", list(Role))
def test_every_role_has_an_entry_in_the_permission_table(role: Role) -> None:
    assert Permission.SESSION_OWN in ROLE_PERMISSIONS[role]
