"""HTTP access to a Tipline server, written from the protocol, not from the server's code.

Every authenticated call carries `Authorization: DPoP <token>` and a fresh DPoP proof signed by
the device key (RFC 9449). Errors arrive as RFC 9457 problems and become `ApiError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import httpx
import msgspec

from clients.reference_client.device import DeviceKeyPair, make_proof

DEFAULT_TIMEOUT_S = 15.0

T = TypeVar("T")


class Problem(msgspec.Struct, frozen=True):
    type: str
    title: str
    status: int
    detail: str = ""
    request_id: str | None = None


class ApiError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}")
        self.problem = problem


class Readiness(msgspec.Struct, frozen=True):
    status: str


class InvitePayload(msgspec.Struct, frozen=True):
    server_url: str
    code: str
    root_public_key: str | None
    root_key_fingerprint: str | None


class Account(msgspec.Struct, frozen=True):
    id: UUID
    handle: str
    role: str
    status: str
    created_at: datetime


class Enrolment(msgspec.Struct, frozen=True):
    account_id: UUID
    handle: str
    role: str
    otpauth_uri: str


class Session(msgspec.Struct, frozen=True):
    access_token: str
    token_type: str
    device_id: UUID
    expires_at: datetime
    idle_timeout_s: int
    account: Account


def raise_for_problem(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        problem = msgspec.json.decode(response.content, type=Problem)
    except (msgspec.ValidationError, msgspec.DecodeError):
        problem = Problem(
            type="about:blank", title=response.reason_phrase, status=response.status_code
        )
    raise ApiError(problem)


def decode(response: httpx.Response, type_: type[T]) -> T:
    raise_for_problem(response)
    return msgspec.json.decode(response.content, type=type_)


class TiplineClient:
    """One server, one device key; `clock` is what DPoP proofs are dated by."""

    def __init__(
        self,
        server_url: str,
        device: DeviceKeyPair,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.device = device
        self.clock = clock
        self._http = httpx.AsyncClient(base_url=self.server_url, timeout=timeout_s)

    async def __aenter__(self) -> TiplineClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._http.aclose()

    def proof(self, method: str, path: str, access_token: str | None = None) -> str:
        return make_proof(
            self.device, method, self.server_url + path, access_token=access_token, now=self.clock()
        )

    async def readyz(self) -> Readiness:
        return decode(await self._http.get("/readyz"), Readiness)

    async def enrol(self, invite_code: str, password: str, age_recipient: str) -> Enrolment:
        body = {
            "invite_code": invite_code,
            "password": password,
            "device_key": self.device.public_jwk(),
            "age_recipient": age_recipient,
        }
        response = await self._http.post(
            "/v1/enrolments", json=body, headers={"DPoP": self.proof("POST", "/v1/enrolments")}
        )
        return decode(response, Enrolment)

    async def confirm_enrolment(self, account_id: UUID, totp_code: str) -> Account:
        path = "/v1/enrolments/confirm"
        response = await self._http.post(
            path,
            json={"account_id": str(account_id), "totp_code": totp_code},
            headers={"DPoP": self.proof("POST", path)},
        )
        return decode(response, Account)

    async def login_response(self, handle: str, password: str, totp_code: str) -> httpx.Response:
        body = {"handle": handle, "password": password, "totp_code": totp_code}
        return await self._http.post(
            "/v1/sessions", json=body, headers={"DPoP": self.proof("POST", "/v1/sessions")}
        )

    async def login(self, handle: str, password: str, totp_code: str) -> Session:
        return decode(await self.login_response(handle, password, totp_code), Session)

    async def call(
        self, method: str, path: str, session: Session | str, *, json: object = None
    ) -> httpx.Response:
        """An authenticated request: the token plus a fresh proof for exactly this request."""
        token = session if isinstance(session, str) else session.access_token
        headers = {
            "Authorization": f"DPoP {token}",
            "DPoP": self.proof(method, path.split("?", 1)[0], access_token=token),
        }
        return await self._http.request(method, path, json=json, headers=headers)

    async def me(self, session: Session | str) -> Account:
        return decode(await self.call("GET", "/v1/me", session), Account)

    async def logout(self, session: Session | str) -> None:
        raise_for_problem(await self.call("DELETE", "/v1/sessions/current", session))

    async def invite(self, session: Session, role: str, handle: str) -> InvitePayload:
        response = await self.call(
            "POST", "/v1/invites", session, json={"role": role, "handle": handle}
        )
        raise_for_problem(response)
        return msgspec.convert(response.json()["payload"], InvitePayload)
