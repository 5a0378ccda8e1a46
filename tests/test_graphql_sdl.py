"""The committed SDL (``schema/schema.graphql``) is the schema the code builds."""

from __future__ import annotations

from pathlib import Path

from schema import SDL_PATH, export_sdl, schema


def test_committed_sdl_matches_the_code() -> None:
    assert SDL_PATH.read_text(encoding="utf-8") == str(schema) + "\n", (
        "schema/schema.graphql is out of date: run `python -m schema` and commit it"
    )


def test_export_writes_the_sdl(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    export_sdl(target)
    assert target.read_text(encoding="utf-8") == str(schema) + "\n"


def test_enum_values_are_screaming_case_and_money_is_never_a_float() -> None:
    sdl = str(schema)
    assert "Float" not in sdl
    assert "type Money {\n  amount: String!\n  currency: String!\n}" in sdl
    for line in sdl.splitlines():
        if line.startswith("enum "):
            block = sdl.split(line, 1)[1].split("}", 1)[0]
            values = [
                v.strip()
                for v in block.strip().splitlines()
                if v.strip() and not v.strip().startswith('"')
            ]
            assert all(v == v.upper() for v in values), (line, values)
