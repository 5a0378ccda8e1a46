"""Creating users: e-mail and password rules, unique addresses, role links."""

from __future__ import annotations

import pytest

from billing.db import Database
from billing.errors import UserError
from billing.models import Reseller, Role
from billing.passwords import verify_password
from billing.users import create_user, get_user_by_email
from tests.factories import make_distributor


async def test_create_admin_stores_a_hash_and_a_normalised_address(db: Database) -> None:
    async with db.transaction() as session:
        user = await create_user(session, "  Admin@Example.COM ", "long enough", Role.ADMIN)
    assert user.id is not None
    assert user.email == "admin@example.com"
    assert user.password_hash != "long enough"
    assert verify_password(user.password_hash, "long enough")
    async with db.session() as session:
        found = await get_user_by_email(session, "ADMIN@example.com")
    assert found is not None and found.id == user.id and found.role == Role.ADMIN


@pytest.mark.parametrize("email", ["", "plain", "a@b", "a b@c.de", "@example.com"])
async def test_invalid_email_is_refused(db: Database, email: str) -> None:
    async with db.transaction() as session:
        with pytest.raises(UserError) as err:
            await create_user(session, email, "long enough", Role.ADMIN)
    assert err.value.field == "email"


async def test_password_shorter_than_eight_characters_is_refused(db: Database) -> None:
    async with db.transaction() as session:
        with pytest.raises(UserError) as err:
            await create_user(session, "a@example.com", "1234567", Role.ADMIN)
        assert err.value.code == "PASSWORD_TOO_SHORT"
        assert err.value.field == "password"
        assert (await create_user(session, "a@example.com", "12345678", Role.ADMIN)).id


async def test_email_already_taken_is_refused_whatever_its_case(db: Database) -> None:
    async with db.transaction() as session:
        await create_user(session, "a@example.com", "long enough", Role.ADMIN)
    async with db.transaction() as session:
        with pytest.raises(UserError) as err:
            await create_user(session, "A@Example.com", "other password", Role.ADMIN)
    assert err.value.code == "EMAIL_TAKEN"


async def test_role_needs_the_party_it_acts_for(db: Database) -> None:
    async with db.transaction() as session:
        with pytest.raises(UserError) as err:
            await create_user(session, "r@example.com", "long enough", Role.RESELLER)
        assert (err.value.code, err.value.field) == ("REQUIRED", "resellerId")
        with pytest.raises(UserError) as err:
            await create_user(session, "c@example.com", "long enough", Role.CUSTOMER)
        assert (err.value.code, err.value.field) == ("REQUIRED", "customerId")


async def test_links_must_exist(db: Database) -> None:
    async with db.transaction() as session:
        with pytest.raises(UserError) as err:
            await create_user(
                session, "d@example.com", "long enough", Role.DISTRIBUTOR, distributor_id=999_999
            )
        assert (err.value.code, err.value.field) == ("NOT_FOUND", "distributorId")


async def test_linked_users_are_created(db: Database) -> None:
    async with db.transaction() as session:
        reseller = Reseller(name="Resell Co")
        session.add(reseller)
        await session.flush()
        distributor = await make_distributor(session, reseller_id=reseller.id)
        r = await create_user(
            session, "r@example.com", "long enough", Role.RESELLER, reseller_id=reseller.id
        )
        d = await create_user(
            session,
            "d@example.com",
            "long enough",
            Role.DISTRIBUTOR,
            reseller_id=reseller.id,
            distributor_id=distributor.id,
        )
    assert r.reseller_id == reseller.id
    assert (d.distributor_id, d.reseller_id) == (distributor.id, reseller.id)
