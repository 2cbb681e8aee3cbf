"""Servo table: the default layout, the command <-> ticks maps, and validation errors."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from emo_core.errors import ConfigError, InputError
from emo_core.resources import config_path
from emo_core.schema import COMMAND_NAMES
from emo_core.servo.table import CHANNEL_NAMES, ServoTable


@pytest.fixture()
def raw() -> dict:
    return yaml.safe_load(config_path("servos.yaml").read_text())


def test_default_layout(table: ServoTable) -> None:
    groups = [s.group for s in table.servos]
    assert len(table) == 26
    assert {g: groups.count(g) for g in set(groups)} == {
        "neck": 3, "gaze": 4, "eyelids": 4, "eyebrows": 4, "mouth": 10, "jaw": 1}
    facial = [s for s in table.servos if s.command in COMMAND_NAMES]
    assert len(facial) == 19
    # Every command drives a left/right pair, a midline lip servo, or the jaw.
    for command in COMMAND_NAMES:
        followers = [table.servos[i] for i in table.followers(command)]
        assert 1 <= len(followers) <= 2, command
        if len(followers) == 2:
            assert {f.inverted for f in followers} == {True, False}, command
    assert len({s.id for s in table.servos}) == 26


def test_commands_round_trip_through_ticks(table: ServoTable) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        commands = rng.random(11)
        ticks = table.commands_to_ticks(commands)
        assert np.all(ticks >= table.min_ticks) and np.all(ticks <= table.max_ticks)
        assert np.allclose(table.ticks_to_commands(ticks), commands, atol=1.5 / 400)


def test_inverted_pair_moves_symmetrically(table: ServoTable) -> None:
    left, right = (table.servos[i] for i in table.followers("brow_inner"))
    ticks = table.commands_to_ticks({"brow_inner": 1.0})
    assert ticks[table.index(left.name)] == left.max
    assert ticks[table.index(right.name)] == right.min        # mirrored: max - 1.0 * span
    ticks = table.commands_to_ticks({"brow_inner": 0.0})
    assert ticks[table.index(right.name)] == right.max


def test_home_is_the_calm_face(table: ServoTable) -> None:
    calm = table.home_commands()
    assert calm.shape == (11,)
    assert np.array_equal(table.commands_to_ticks(calm), table.home_ticks) or \
        np.abs(table.commands_to_ticks(calm) - table.home_ticks).max() <= 2


def test_unnamed_servos_stay_home(table: ServoTable) -> None:
    ticks = table.commands_to_ticks({"jaw_open": 1.0})
    jaw = table.index("jaw")
    assert ticks[jaw] == table.servos[jaw].max
    others = np.arange(26) != jaw
    assert np.array_equal(ticks[others], table.home_ticks[others])


def test_ticks_to_commands_averages_a_disagreeing_pair(table: ServoTable) -> None:
    ticks = table.home_ticks.copy()
    left, right = table.followers("eyelid_upper")
    ticks[left] = table.servos[left].to_ticks(1.0)
    ticks[right] = table.servos[right].to_ticks(0.0)
    assert table.ticks_to_commands(ticks)[COMMAND_NAMES.index("eyelid_upper")] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("bad", [
    {"brow_inner": float("nan")}, {"jaw_open": float("inf")}, {"nose": 0.5}, {"jaw_open": "wide"},
    np.array([0.5] * 10 + [np.nan]), np.zeros(7),
])
def test_resolve_rejects_bad_commands(table: ServoTable, bad) -> None:
    with pytest.raises(InputError):
        table.resolve(bad)


def test_resolve_accepts_channels_and_servo_names(table: ServoTable) -> None:
    norm, mask = table.resolve({"gaze_yaw": 0.2, "neck_roll": 0.9})
    assert mask.sum() == 3
    norm, mask = table.resolve(np.full(len(CHANNEL_NAMES), 0.5))
    assert mask.sum() == 26


def _with(raw: dict, index: int, **changes) -> dict:
    data = copy.deepcopy(raw)
    data["servos"][index].update(changes)
    return data


@pytest.mark.parametrize("change, message", [
    (lambda r: _with(r, 1, id=1), "duplicate id 1"),
    (lambda r: _with(r, 1, name="neck_roll"), "duplicate servo name"),
    (lambda r: _with(r, 3, max=5000), "outside the XL330-M288 range"),
    (lambda r: _with(r, 3, min=-3), "outside the XL330-M288 range"),
    (lambda r: _with(r, 3, min=2300, max=2200, home=2250), "must be below max"),
    (lambda r: _with(r, 25, home=2600), "home 2600 outside its limits"),
    (lambda r: _with(r, 25, command="jaw_opne"), "unknown command 'jaw_opne'"),
    (lambda r: _with(r, 25, model="XM999"), "unknown servo model"),
    (lambda r: _with(r, 25, invertd=True), "unknown key(s) invertd"),
    (lambda r: _with(r, 25, id=300), "id must be 0..252"),
    (lambda r: _with(r, 25, max_velocity=0), "max_velocity"),
    (lambda r: _with(r, 25, command=None), "no servo follows command(s) jaw_open"),
    (lambda r: _with(r, 8, home=2196), "rest at different normalized homes"),
    (lambda r: {"servos": []}, "non-empty 'servos' list"),
])
def test_validation_errors_are_clear(raw: dict, change, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ServoTable.from_dict(change(raw), source="servos.yaml")


def test_validation_names_the_servo(raw: dict) -> None:
    with pytest.raises(ConfigError) as info:
        ServoTable.from_dict(_with(raw, 25, home=2600), source="servos.yaml")
    assert "servos.yaml: servo 'jaw' (id 26)" in str(info.value)


def test_partial_bench_table(raw: dict) -> None:
    data = {"partial": True, "servos": raw["servos"][-1:]}
    assert ServoTable.from_dict(data).names == ("jaw",)


def test_yaml_errors(tmp_path) -> None:
    bad = tmp_path / "servos.yaml"
    bad.write_text("servos: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        ServoTable.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        ServoTable.load(tmp_path / "missing.yaml")
