"""People who sign in: administrators, resellers, distributors and customers.

A user's role decides what it may see (:mod:`billing.access`).  E-mail addresses are
stored lower-case, so look users up with :func:`get_user_by_email`.
"""

from __future__ import annotations

from babel import Locale, UnknownLocaleError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing import clock, validation
from billing.errors import NotFound, UserError
from billing.models import Base, Customer, Distributor, Reseller, Role, User
from billing.passwords import hash_password
from billing.periods import validate_time_zone

MIN_PASSWORD_LENGTH = 8
#: argon2 hashes anything, but a megabyte "password" is a denial-of-service attempt.
MAX_PASSWORD_LENGTH = 1024


def validate_password(password: str, field: str = "password") -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(
            "PASSWORD_TOO_SHORT",
            f"the password needs at least {MIN_PASSWORD_LENGTH} characters",
            field,
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(
            "PASSWORD_TOO_LONG",
            f"the password may have at most {MAX_PASSWORD_LENGTH} characters",
            field,
        )
    return password


def validate_language(language: str | None, field: str = "language") -> str | None:
    """A language Babel knows, as its tag (``"en"``, ``"pt-BR"``); None stays None."""
    tag = validation.text(language, field, 16)
    if tag is None:
        return None
    try:
        locale = Locale.parse(tag.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise UserError(
            "INVALID_LANGUAGE", f"{language!r} is not a known language", field
        ) from None
    return "-".join(part for part in (locale.language, locale.territory) if part)


#: The party each role acts for; its link is what scopes the user, so it is required.
_REQUIRED_LINK = {
    Role.RESELLER: "resellerId",
    Role.CUSTOMER: "customerId",
    Role.DISTRIBUTOR: "distributorId",
}


async def _check_links(
    session: AsyncSession, role: Role, links: dict[str, tuple[type[Base], int | None]]
) -> None:
    """Every given link must exist, and the role's own link must be given."""
    for field, (model, row_id) in links.items():
        if row_id is None:
            if _REQUIRED_LINK.get(role) == field:
                raise UserError("REQUIRED", f"a {role.value.lower()} user needs {field}", field)
        elif await session.get(model, row_id) is None:
            raise NotFound(model.__name__.lower(), field)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    """Look a user up the way they were stored: e-mail addresses are kept lower-case."""
    return await session.scalar(select(User).where(User.email == email.strip().lower()))


async def create_user(
    session: AsyncSession,
    email: str,
    password: str,
    role: Role,
    reseller_id: int | None = None,
    customer_id: int | None = None,
    distributor_id: int | None = None,
) -> User:
    """Add a user with an argon2 password hash; the e-mail address must be free."""
    address = validation.email(email, "email", required=True)
    assert address is not None
    validate_password(password)
    await _check_links(
        session,
        role,
        {
            "resellerId": (Reseller, reseller_id),
            "customerId": (Customer, customer_id),
            "distributorId": (Distributor, distributor_id),
        },
    )
    taken = UserError("EMAIL_TAKEN", f"there is already a user {address}", "email")
    if await get_user_by_email(session, address) is not None:
        raise taken
    user = User(
        email=address,
        password_hash=hash_password(password),
        role=role,
        reseller_id=reseller_id,
        customer_id=customer_id,
        distributor_id=distributor_id,
        created_at=await clock.now(session),
    )
    try:
        async with session.begin_nested():  # a concurrent sign-up with the same address
            session.add(user)
    except IntegrityError:
        raise taken from None
    return user


def set_preferences(user: User, time_zone: str | None, language: str | None) -> None:
    """The portal's time zone and language for ``user`` (None: UTC, the browser's language);
    checked before anything is set."""
    zone = None if time_zone is None else validate_time_zone(time_zone)
    user.language = validate_language(language)
    user.time_zone = zone
