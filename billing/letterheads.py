"""Letterheads: who an invoice is from — name, address, tax id, contact, how to pay.

Each owner of customers (the provider, and each reseller) has at most one letterhead
(:class:`billing.models.Letterhead`), printed at the head of its customers' invoice PDFs and
shown in its portal's header.  Until an owner sets one it has a letterhead all the same:
its name alone (``settings.provider_name`` for the provider, the reseller's name for a
reseller), at revision 0.

Every change raises the letterhead's ``revision``; a kept PDF notes the revision it shows,
so setting a letterhead makes its owner's PDFs stale and wakes the render job
(:mod:`billing.invoice_pdfs`), which draws them again with the new details.  A save that
changes nothing keeps the revision, so it re-renders nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

# ``invoice_pdfs`` as a module: it reads letterheads through this one in turn.
from billing import clock, invoice_pdfs, ledger, validation
from billing.access import Viewer, require_staff
from billing.errors import NotFound, UserError
from billing.models import Customer, Distributor, Letterhead, Reseller, Role
from settings import Settings

NAME_LENGTH = 200
ADDRESS_LENGTH = 500
#: Lines of the address, as printed under the name.
ADDRESS_LINES = 5
TAX_ID_LENGTH = 50
WEBSITE_LENGTH = 200
PAYMENT_INSTRUCTIONS_LENGTH = 1000
#: Lines of the payment instructions (each may wrap on the PDF).
PAYMENT_INSTRUCTIONS_LINES = 10

#: ``example.com``, ``www.example.com/billing`` or the same with ``http(s)://``.
_WEBSITE_RE = re.compile(r"^(https?://)?[^\s/@:]+\.[^\s/@:]+(:\d+)?(/\S*)?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LetterheadInput:
    """Everything an owner sets; a detail left None is not printed."""

    name: str
    address: str | None = None
    tax_id: str | None = None
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    payment_instructions: str | None = None


@dataclass(frozen=True, slots=True)
class LetterheadDetails:
    """An owner's letterhead as it is printed and shown; ``reseller_id`` None is the provider.

    ``revision`` 0 and ``updated_at`` None: the owner has set none (its name alone).
    """

    reseller_id: int | None
    name: str
    address: str | None = None
    tax_id: str | None = None
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    payment_instructions: str | None = None
    revision: int = 0
    updated_at: datetime | None = None

    @classmethod
    def of(cls, reseller_id: int | None, row: Letterhead) -> LetterheadDetails:
        return cls(
            reseller_id=reseller_id,
            name=row.name,
            address=row.address,
            tax_id=row.tax_id,
            email=row.email,
            phone=row.phone,
            website=row.website,
            payment_instructions=row.payment_instructions,
            revision=row.revision,
            updated_at=row.updated_at,
        )


def owner_key(reseller_id: int | None) -> str:
    """The letterhead's key: the same as its owner's invoices' ``owner_key``."""
    return ledger.system_owner_key(reseller_id)


def owner_of_key(key: str) -> int | None:
    """The reseller (None: the provider) an ``owner_key`` names."""
    return None if key == owner_key(None) else int(key.split(":", 1)[1])


async def letterheads_of(
    session: AsyncSession, reseller_ids: Iterable[int | None]
) -> dict[int | None, LetterheadDetails]:
    """The letterheads of the owners ``reseller_ids`` (None: the provider), in two queries.

    Resellers that do not exist are left out.
    """
    wanted = set(reseller_ids)
    if not wanted:
        return {}
    rows = await session.scalars(
        select(Letterhead).where(Letterhead.owner_key.in_([owner_key(r) for r in wanted]))
    )
    found = {
        (reseller_id := owner_of_key(row.owner_key)): LetterheadDetails.of(reseller_id, row)
        for row in rows
    }
    unset = wanted - found.keys()
    if None in unset:
        settings: Settings = session.info["settings"]
        found[None] = LetterheadDetails(None, settings.provider_name)
    unset_resellers = [r for r in unset if r is not None]
    if unset_resellers:
        names = await session.execute(
            select(Reseller.id, Reseller.name).where(Reseller.id.in_(unset_resellers))
        )
        for reseller_id, name in names:
            found[reseller_id] = LetterheadDetails(reseller_id, name)
    return found


async def billing_owner(session: AsyncSession, viewer: Viewer) -> int | None:
    """The reseller (None: the provider) whose letterhead heads the viewer's invoices.

    Staff and partner keys belong to their reseller; a customer and a distributor to the
    reseller that owns them.
    """
    if viewer.role == Role.CUSTOMER and viewer.customer_id is not None:
        return await session.scalar(
            select(Customer.reseller_id).where(Customer.id == viewer.customer_id)
        )
    if viewer.role == Role.DISTRIBUTOR and viewer.distributor_id is not None:
        return await session.scalar(
            select(Distributor.reseller_id).where(Distributor.id == viewer.distributor_id)
        )
    return viewer.reseller_id


def _is_provider_staff(viewer: Viewer) -> bool:
    return viewer.is_staff and viewer.reseller_id is None


async def owner_in_scope(
    session: AsyncSession, viewer: Viewer, reseller_id: int | None
) -> int | None:
    """``reseller_id`` if the viewer may reach that owner's letterhead (or other per-owner
    settings, such as its Bitcoin wallet), else NOT_FOUND.

    None asks for the viewer's own owner.  The provider's staff reach every reseller;
    everyone else only the owner that bills them: another reseller answers exactly as a
    reseller that does not exist.
    """
    own = await billing_owner(session, viewer)
    if reseller_id is None or reseller_id == own:
        return own
    if not _is_provider_staff(viewer) or await session.get(Reseller, reseller_id) is None:
        raise NotFound("reseller", "resellerId")
    return reseller_id


async def get_letterhead(
    session: AsyncSession, viewer: Viewer, reseller_id: int | None = None
) -> LetterheadDetails:
    """The letterhead of reseller ``reseller_id`` or, when None, of whoever bills the viewer."""
    owner = await owner_in_scope(session, viewer, reseller_id)
    return (await letterheads_of(session, [owner]))[owner]


# --- setting one ----------------------------------------------------------------------------


def _one_line(value: str | None, field: str, max_length: int, required: bool = False) -> str | None:
    """Stripped, with any run of whitespace (a pasted line break) as one space."""
    if value is not None:
        value = " ".join(value.split())
    return validation.text(value, field, max_length, required=required)


def _lines(value: str | None, field: str, max_length: int, max_lines: int) -> str | None:
    """Lines stripped, blank lines dropped at the ends and runs of them kept as one."""
    if value is None:
        return None
    kept: list[str] = []
    for line in value.splitlines():
        line = " ".join(line.split())
        if line or (kept and kept[-1]):
            kept.append(line)
    text = validation.text("\n".join(kept), field, max_length)
    if text is not None and len(text.splitlines()) > max_lines:
        raise UserError("TOO_MANY_LINES", f"{field} has more than {max_lines} lines", field)
    return text


def _website(value: str | None) -> str | None:
    value = _one_line(value, "website", WEBSITE_LENGTH)
    if value is not None and not _WEBSITE_RE.match(value):
        raise UserError("INVALID_WEBSITE", f"{value!r} is not a web address", "website")
    return value


def validated(data: LetterheadInput) -> LetterheadInput:
    """``data`` tidied and checked; a UserError names the first field at fault."""
    name = _one_line(data.name, "name", NAME_LENGTH, required=True)
    assert name is not None
    return LetterheadInput(
        name=name,
        address=_lines(data.address, "address", ADDRESS_LENGTH, ADDRESS_LINES),
        tax_id=_one_line(data.tax_id, "taxId", TAX_ID_LENGTH),
        email=validation.email(data.email),
        phone=validation.phone(data.phone),
        website=_website(data.website),
        payment_instructions=_lines(
            data.payment_instructions,
            "paymentInstructions",
            PAYMENT_INSTRUCTIONS_LENGTH,
            PAYMENT_INSTRUCTIONS_LINES,
        ),
    )


def _values(data: LetterheadInput) -> dict[str, str | None]:
    return {
        "name": data.name,
        "address": data.address,
        "tax_id": data.tax_id,
        "email": data.email,
        "phone": data.phone,
        "website": data.website,
        "payment_instructions": data.payment_instructions,
    }


async def set_letterhead(
    session: AsyncSession, viewer: Viewer, data: LetterheadInput, reseller_id: int | None = None
) -> LetterheadDetails:
    """Set the letterhead of reseller ``reseller_id`` or, when None, of the viewer's own owner.

    Administrators only: the provider's may set the provider's and any reseller's, a
    reseller's only its own (another reseller answers NOT_FOUND).  Every detail is replaced;
    one left out is no longer printed.  The owner's kept PDFs are drawn again.
    """
    require_staff(viewer, write=True)
    owner = await owner_in_scope(session, viewer, reseller_id)
    values = _values(validated(data))
    key = owner_key(owner)
    current = await session.get(Letterhead, key, populate_existing=True)
    if current is not None and all(getattr(current, k) == v for k, v in values.items()):
        return LetterheadDetails.of(owner, current)
    now = await clock.now(session)
    insert = (
        postgresql_insert
        if session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
        else sqlite_insert
    )(Letterhead)
    # An upsert, so two administrators saving at once both land, one revision each.
    await session.execute(
        insert.values(owner_key=key, revision=1, updated_at=now, **values).on_conflict_do_update(
            index_elements=[Letterhead.owner_key],
            set_={**values, "updated_at": now, "revision": Letterhead.revision + 1},
        )
    )
    row = await session.get(Letterhead, key, populate_existing=True)
    assert row is not None
    await invoice_pdfs.schedule_pdf_rendering(session, now)
    return LetterheadDetails.of(owner, row)
