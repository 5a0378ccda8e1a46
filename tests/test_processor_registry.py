"""The processor registry: processors found by name through the ``kassa.processors`` entry
points, a plug-in that does not load left out (the others still work), what each declares,
the simulator made for a processor account, and ``kassa processors``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from billing import payment_systems
from billing.payment_systems import Capability, MethodKind, Mode, ProcessorConfig
from processors import registry
from processors.simulator import SimulatorProcessor


def _install_distribution(root: Path, name: str, entry_points: dict[str, str]) -> None:
    """A distribution on ``root`` (put on ``sys.path``) declaring these processors, as a
    third party's installed package would."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}")


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package directory on ``sys.path``; the registry forgets what it loaded afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_loaded", {})
    monkeypatch.setattr(registry, "_problems", {})
    return tmp_path


def test_a_third_party_package_adds_a_processor_and_a_broken_one_is_left_out(
    plugins: Path,
) -> None:
    (plugins / "thirdparty_pay.py").write_text(
        "from processors.simulator import SimulatorProcessor\n\n"
        "class ThirdParty(SimulatorProcessor):\n    name = 'thirdparty'\n"
    )
    _install_distribution(
        plugins,
        "thirdparty_pay",
        {"thirdparty": "thirdparty_pay:ThirdParty", "broken": "no_such_module_here:Nothing"},
    )
    names = registry.available()
    assert "thirdparty" in names and "simulator" in names
    assert "broken" not in names
    assert "ModuleNotFoundError" in registry.load_problems()["broken"]
    assert registry.get_processor("thirdparty").name == "thirdparty"
    with pytest.raises(Exception) as caught:
        registry.get_processor("broken")
    assert getattr(caught.value, "code", None) == "UNKNOWN_PROCESSOR"


def test_the_simulator_declares_what_it_can_do() -> None:
    info = registry.describe("simulator")
    assert info is not None
    assert Capability.TOKEN_CHARGE in info.capabilities
    assert Capability.NOTIFICATIONS in info.capabilities
    assert Capability.BANK_ACCOUNT not in info.capabilities
    assert MethodKind.MAESTRO in info.method_kinds and MethodKind.ECHECK not in info.method_kinds
    assert registry.describe("nope") is None
    assert payment_systems.catalog().describe("simulator") == info


def test_a_processor_is_made_for_an_account_with_its_config() -> None:
    config = ProcessorConfig({"webhook_secret": "s3cret"}, Mode.TEST, None, 7)
    processor = payment_systems.catalog().processor_for("simulator", config)
    assert isinstance(processor, SimulatorProcessor)
    assert "s3cret" not in repr(config)


def test_kassa_processors_lists_what_is_installed(plugins: Path) -> None:
    _install_distribution(plugins, "broken_pay", {"broken": "no_such_module_here:Nothing"})
    result = CliRunner().invoke(cli.app, ["processors"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    simulator = next(line for line in lines if line.startswith("simulator:"))
    assert "TOKEN_CHARGE" in simulator and "VISA" in simulator
    assert any(line.startswith("broken: not loaded (ModuleNotFoundError") for line in lines), (
        result.output
    )
