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
    ("GET", "/schema"),
    ("GET", "/schema/openapi.json"),
    ("GET", "/schema/{path:str}"),  # Litestar's catch-all for its render plugins
    ("POST", "/v1/enrolments"),
    ("POST", "/v1/enrolments/confirm"),
    ("POST", "/v1/sessions"),
}


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


async def test_role_by_route_matrix(world: World) -> None:
    investigator = await world.first_investigator()
    people: dict[Role, Actor] = {Role.INVESTIGATOR: investigator}
    for role in (Role.OPERATIVE, Role.OFFICER, Role.ADMIN):
        people[role] = await world.invited(investigator, role.value)
    anonymous = world.client(investigator.device)

    checked = 0
    for method, path, permission, _ in routes(world.app):
        if (method, path) in PUBLIC:
            continue
        assert permission is not None
        target = concrete(path)
        response = await anonymous._http.request(method, target)
        assert response.status_code == 401, f"anonymous {method} {path}"
        for role, person in people.items():
            if permission in ROLE_PERMISSIONS[role]:
                continue
            response = await person.client.call(method, target, person.token(), json={})
            assert response.status_code == 403, f"{role} {method} {path}"
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("role", list(Role))
def test_every_role_has_an_entry_in_the_permission_table(role: Role) -> None:
    assert Permission.SESSION_OWN in ROLE_PERMISSIONS[role]
