"""``KASSA_FAKE_PROCESSORS``: the payment systems' fakes served beside kassa under ``/fakes``
for the demo, never outside development."""

from __future__ import annotations

from pathlib import Path

import httpx

from app import create_app
from billing.db import Database
from processors.fakes import mount
from settings import Settings, from_env, start_problems


def test_production_refuses_the_fakes() -> None:
    production = from_env(
        {
            "KASSA_ENV": "production",
            "KASSA_SECRET_KEY": "s" * 40,
            "KASSA_ENCRYPTION_KEY": "e" * 40,
            "KASSA_PUBLIC_URL": "https://billing.example.com",
            "KASSA_FAKE_PROCESSORS": "1",
        }
    )
    assert any("KASSA_FAKE_PROCESSORS" in problem for problem in start_problems(production))
    assert not start_problems(production.with_(fake_processors=False))


async def test_every_fake_is_mounted_when_asked_for(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    mount.save_deliveries(tmp_path, {"stripe": "http://127.0.0.1:1/callbacks/1"})
    on = create_app(settings.with_(fake_processors=True, fake_state_dir=str(tmp_path)), db)
    off = create_app(settings, db)
    transport = httpx.ASGITransport(on)
    async with httpx.AsyncClient(transport=transport, base_url="http://kassa") as client:
        stripe_js = await client.get("/fakes/stripe/v3/")
        accept_js = await client.get("/fakes/authorize-net/v1/Accept.js")
        # Accept.js posts to the gateway under the same mount.
        assert '"http://kassa/fakes/authorize-net/xml/v1/request.api"' in accept_js.text
        for name in mount.FAKES:
            assert (await client.get(f"/fakes/{name}/nothing-here")).status_code == 404
    assert stripe_js.status_code == 200 and "window.Stripe" in stripe_js.text
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(off), base_url="http://kassa"
    ) as client:
        assert (await client.get("/fakes/stripe/v3/")).status_code == 404


def test_the_fakes_keep_their_state_beside_the_sqlite_database() -> None:
    beside = from_env({"KASSA_DATABASE_URL": "sqlite:////srv/demo/kassa.db"})
    assert beside.fake_state_dir == "/srv/demo/fakes"
    chosen = {"KASSA_DATABASE_URL": "sqlite:////srv/demo/kassa.db", "KASSA_FAKE_STATE_DIR": "/x"}
    assert from_env(chosen).fake_state_dir == "/x"
    assert from_env({"KASSA_DATABASE_URL": "postgresql://u@h/db"}).fake_state_dir == "var/fakes"
