"""HTTP access to a Tipline server. Errors arrive as RFC 9457 problems and become ApiError."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

DEFAULT_TIMEOUT_S = 15.0


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


def _raise_for_problem(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        problem = msgspec.json.decode(response.content, type=Problem)
    except (msgspec.ValidationError, msgspec.DecodeError):
        problem = Problem(
            type="about:blank", title=response.reason_phrase, status=response.status_code
        )
    raise ApiError(problem)


class TiplineClient:
    def __init__(self, server_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._http = httpx.Client(base_url=server_url, timeout=timeout_s)

    def __enter__(self) -> TiplineClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.close()

    def readyz(self) -> Readiness:
        response = self._http.get("/readyz")
        _raise_for_problem(response)
        return msgspec.json.decode(response.content, type=Readiness)
