"""Idempotency keys for money-moving mutations.

The first call with a key records a hash of its arguments and the id of what it made; a
replay with the same arguments gets that same object back, and the same key with different
arguments is a :class:`UserError`.  The record is written in the same transaction as the
effect, so a crash leaves neither.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.errors import UserError
from billing.models import IdempotencyRecord

MAX_KEY_LENGTH = 200


def request_hash(arguments: dict[str, Any]) -> str:
    canonical = json.dumps(arguments, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _validate(key: str) -> str:
    key = (key or "").strip()
    if not key:
        raise UserError(
            "IDEMPOTENCY_KEY_REQUIRED", "an idempotency key is required", "idempotencyKey"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise UserError("TOO_LONG", f"at most {MAX_KEY_LENGTH} characters", "idempotencyKey")
    return key


def require_for_money(key: str | None, amount: int | None, field: str) -> None:
    """An optional key becomes required once the call moves money (an opening balance)."""
    if amount and not (key or "").strip():
        raise UserError(
            "IDEMPOTENCY_KEY_REQUIRED",
            f"{field} moves money: send an idempotencyKey with it",
            "idempotencyKey",
        )


async def replay(
    session: AsyncSession, scope: str, key: str, operation: str, arguments: dict[str, Any]
) -> int | None:
    """The id recorded for ``key`` if this exact request ran before, ``None`` if it is new.

    ``scope`` separates callers (one partner's keys never collide with another's) and
    ``operation`` separates mutations.
    """
    key = _validate(key)
    record = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        )
    )
    if record is None:
        return None
    if record.result_kind != operation or record.request_hash != request_hash(arguments):
        raise UserError(
            "IDEMPOTENCY_KEY_REUSED",
            "this idempotency key was already used with different arguments",
            "idempotencyKey",
        )
    return record.result_id


async def remember(
    session: AsyncSession,
    scope: str,
    key: str,
    operation: str,
    arguments: dict[str, Any],
    result_id: int | None,
    at: datetime,
) -> None:
    """Record the outcome; a concurrent duplicate fails on the unique constraint and rolls back."""
    session.add(
        IdempotencyRecord(
            scope=scope,
            key=_validate(key),
            result_kind=operation,
            request_hash=request_hash(arguments),
            result_id=result_id,
            created_at=at,
        )
    )
    await session.flush()
