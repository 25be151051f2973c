"""Operator settings: bad flags are refused with the flag's name and the fix."""

from __future__ import annotations

import pytest

from aigis.settings import OperatorSettings


@pytest.mark.parametrize(
    ("settings", "flag"),
    [
        pytest.param(
            OperatorSettings(metrics_address="localhost"),
            "--metrics-address",
            id="address-must-be-ip",
        ),
        pytest.param(OperatorSettings(metrics_port=70000), "--metrics-port", id="port-range"),
        pytest.param(OperatorSettings(health_port=-1), "--health-port", id="negative-port"),
        pytest.param(
            OperatorSettings(metrics_port=9000, health_port=9000),
            "--health-port",
            id="ports-collide",
        ),
        pytest.param(OperatorSettings(log_level="LOUD"), "--log-level", id="log-level"),
        pytest.param(OperatorSettings(log_format="xml"), "--log-format", id="log-format"),
    ],
)
def test_bad_settings_name_the_flag(settings: OperatorSettings, flag: str) -> None:
    assert [p.path for p in settings.problems()] == [flag]


def test_defaults_are_fine() -> None:
    assert OperatorSettings().problems() == []


def test_disabled_servers_do_not_collide() -> None:
    assert OperatorSettings(metrics_port=0, health_port=0).problems() == []
