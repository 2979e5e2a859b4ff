"""Seals committed audit events into the hash chain and signs the new head.

Sealing is separate from `record` so appends never queue on a shared chain head: each action
inserts its event concurrently, and one sealer (across all replicas, by an advisory lock) links
them afterwards. The window in which an unsealed event could be removed unnoticed is the
sealer's interval; SEC-LOG-03 asks for appends to be serialised, and they are, here.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server import db
from server.audit import queries, service
from server.tasks import Periodic

DEFAULT_BATCH = 1000


async def seal_pending(
    pool: db.Pool, *, batch: int = DEFAULT_BATCH, signing_key: Ed25519PrivateKey | None
) -> int:
    """Seals up to `batch` events in one transaction; returns how many it sealed."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    async with db.transaction(pool, role=service.AUDITOR_ROLE) as conn:
        # Taken before the head is read: a second sealer waits here, then (READ COMMITTED)
        # reads the head the first one committed, so positions can never fork.
        await queries.take_seal_lock(conn)
        head = await queries.head(conn)
        position, previous = (head.position, head.chain_hash) if head else (0, service.ZERO_HASH)
        # Read before the search: every transaction below it has ended, so the search sees all
        # of their committed events (0012_audit_seal_horizon.sql).
        horizon = await queries.snapshot_horizon(conn)
        since = await queries.seal_horizon(conn)
        events = await queries.unsealed_events(conn, since=since, limit=batch)
        if len(events) < batch:
            await queries.advance_seal_horizon(conn, horizon)
        if not events:
            return 0
        links = []
        for event in events:
            position += 1
            entry = service.entry_hash(event)
            previous = service.next_chain_hash(previous, entry)
            links.append(
                queries.ChainLink(
                    position=position, event_id=event.id, entry_hash=entry, chain_hash=previous
                )
            )
        await queries.append_chain(conn, links)
        if signing_key is not None:
            await queries.append_checkpoint(
                conn,
                position=position,
                chain_hash=previous,
                signature=signing_key.sign(service.checkpoint_message(position, previous)),
            )
        return len(links)


def load_signing_key(pem: bytes) -> Ed25519PrivateKey:
    """The sealer's Ed25519 key from an unencrypted PKCS#8 PEM."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the audit signing key must be an Ed25519 private key")
    return key


class Sealer:
    """Runs `seal_pending` every `interval_s` seconds in the background (app lifespan)."""

    def __init__(
        self,
        pool: db.Pool,
        *,
        interval_s: float,
        signing_key: Ed25519PrivateKey | None,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self._pool = pool
        self._signing_key = signing_key
        self._batch = batch
        # Unsealed events are exactly the window in which a deletion goes unnoticed, so the
        # sealer outlives any failed pass.
        self._periodic = Periodic("audit-sealer", interval_s, self._seal_all)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _seal_all(self) -> None:
        # Drain a backlog in batches, each its own short transaction.
        while (
            await seal_pending(self._pool, batch=self._batch, signing_key=self._signing_key)
            == self._batch
            and not self._periodic.stopping
        ):
            pass
