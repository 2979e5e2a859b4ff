"""`tipline-client`: a thin command line over the client library."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import httpx

from clients.reference_client.api import ApiError, TiplineClient


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tipline-client", description="Tipline reference client")
    parser.add_argument(
        "--server",
        default=os.environ.get("TIPLINE_SERVER", "http://127.0.0.1:8000"),
        help="server URL (TIPLINE_SERVER)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("readyz", help="ask whether the server and its database are ready")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with TiplineClient(args.server) as client:
            readiness = client.readyz()
    except ApiError as exc:
        print(f"tipline-client: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"tipline-client: cannot reach {args.server}: {type(exc).__name__}", file=sys.stderr)
        return 1
    print(readiness.status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
