"""Motor babbling: constraint function, sampling modes, settle detection, the dataset's atomicity,
resume equivalence (also after a real SIGKILL) and corrupt-chunk reporting, and the CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from emo_core.cli import main
from emo_core.clock import ManualClock
from emo_core.datasets.babbling import INFO, BabblingDataset
from emo_core.errors import ConfigError, InputError, SchemaError
from emo_core.schema import COMMAND_NAMES, LOWER, UPPER
from emo_core.selfmodel.babbler import Babbler
from emo_core.selfmodel.constraints import ConstraintConfig, ConstraintFunction, PairRule, SettleConfig
from emo_core.selfmodel.robot import SettleDetector, TwinRobot, twin_config_hash
from emo_core.selfmodel.sampling import CommandSampler, capture_seed
from emo_core.twin import DigitalTwin

IDX = {n: i for i, n in enumerate(COMMAND_NAMES)}


@pytest.fixture(scope="module")
def twin() -> DigitalTwin:
    return DigitalTwin()


@pytest.fixture(scope="module")
def constraints() -> ConstraintFunction:
    return ConstraintFunction(ConstraintConfig.from_yaml())


def _babble(twin, constraints, out: Path, n: int, mode: str = "upper", seed: int = 0, chunk_size: int = 100,
            flush_every: int = 1, robot=None) -> BabblingDataset:
    babbler = Babbler(robot or TwinRobot(twin, noise_seed=capture_seed(seed, mode)), constraints, mode=mode, seed=seed)
    with babbler.open(out, chunk_size=chunk_size, flush_every=flush_every) as writer:
        babbler.run(writer, n)
    return BabblingDataset.open(out)


# ------------------------------------------------------------------------------ constraint function
def test_constraint_function_rules(constraints: ConstraintFunction, twin: DigitalTwin) -> None:
    calm = twin.calm_commands()
    assert constraints.allows(calm)
    skin = calm.copy()
    skin[IDX["mouth_corner_up"]] = skin[IDX["mouth_corner_down"]] = 0.9      # opposing pulls
    problems = constraints.violations(skin)
    assert problems == ["mouth_corner_up + mouth_corner_down <= 1.4"]
    tear = calm.copy()
    tear[IDX["lip_lower_drop"]], tear[IDX["jaw_open"]] = 0.9, 0.1             # lip down, jaw shut
    assert not constraints.allows(tear)
    bound = calm.copy()
    bound[IDX["jaw_open"]] = 0.99                                             # above the 0.95 bound
    assert "jaw_open" in constraints.violations(bound)[0]
    step = calm.copy()
    step[[IDX["brow_inner"], IDX["brow_outer"]]] = 0.9                      # +0.4: within max_step 0.5
    assert constraints.allows(step, previous=calm)
    back = calm.copy()
    back[[IDX["brow_inner"], IDX["brow_outer"]]] = 0.0                      # -0.9 in one move
    assert constraints.allows(back)
    assert constraints.violations(back, previous=step) == ["jump 0.900 > max_step 0.5"]


def test_jump_limit_path_is_feasible(constraints: ConstraintFunction) -> None:
    sampler = CommandSampler(constraints, DigitalTwin().calm_commands(), "full", seed=3)
    a, b = sampler.sample(0), sampler.sample(1)
    path = constraints.path(a, b)
    assert np.allclose(path[-1], b)
    steps = np.abs(np.diff(np.vstack([a, path]), axis=0)).max(axis=1)
    assert np.all(steps <= constraints.config.max_step + 1e-9)
    assert np.all(constraints.feasible(path))            # convex rules: the straight line stays feasible
    if constraints.jump(a, b) > constraints.config.max_step:
        assert not constraints.allows(b, previous=a) and len(path) > 1


def test_bad_constraint_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown command"):
        ConstraintConfig(pairs=(PairRule("brow_inner", "nose_wiggle", "sum_max", 1.0),))
    with pytest.raises(ConfigError, match="low < high"):
        ConstraintConfig(low=(0.5,) * 11, high=(0.5,) * 11)
    bad = tmp_path / "babbling.yaml"
    bad.write_text("pairs:\n  - {a: brow_inner, b: brow_outer, rule: product_max, limit: 1}\n")
    with pytest.raises(ConfigError, match="product_max"):
        ConstraintConfig.from_yaml(bad)
    calm_breaks = ConstraintFunction(ConstraintConfig(pairs=(PairRule("brow_inner", "brow_outer", "sum_max", 0.2),)))
    with pytest.raises(ConfigError, match="calm pose"):
        CommandSampler(calm_breaks, DigitalTwin().calm_commands(), "upper")


# ---------------------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("mode", ["upper", "lower", "full"])
def test_sampler_modes_feasible_and_deterministic(constraints: ConstraintFunction, mode: str) -> None:
    calm = DigitalTwin().calm_commands()
    sampler = CommandSampler(constraints, calm, mode, seed=5)
    samples = np.stack([sampler.sample(i) for i in range(300)])
    assert np.all(constraints.feasible(samples))
    moving = samples.std(axis=0) > 0.1
    expected = {"upper": np.arange(11) < 4, "lower": np.arange(11) >= 4, "full": np.ones(11, bool)}[mode]
    assert np.array_equal(moving, expected)
    assert np.allclose(samples[:, ~expected], calm[~expected].astype(np.float32))
    again = CommandSampler(constraints, calm, mode, seed=5)
    assert np.array_equal(again.sample(123), samples[123])                   # depends on (seed, mode, i) only
    assert not np.array_equal(CommandSampler(constraints, calm, mode, seed=6).sample(123), samples[123])


def test_reject_policy_bounds_the_jump() -> None:
    cfg = ConstraintConfig.from_yaml()
    cfg = ConstraintConfig(low=cfg.low, high=cfg.high, pairs=cfg.pairs, max_step=0.2, jump_policy="reject")
    constraints = ConstraintFunction(cfg)
    sampler = CommandSampler(constraints, DigitalTwin().calm_commands(), "full", seed=1)
    previous = sampler.sample(0)
    for i in range(1, 100):
        current = sampler.sample(i, previous)
        assert constraints.allows(current, previous)
        previous = current


def test_upper_mode_moves_only_upper_landmarks(tmp_path: Path, constraints: ConstraintFunction) -> None:
    twin = DigitalTwin(noise_std=0.0)
    up = _babble(twin, constraints, tmp_path / "up", 15, mode="upper", flush_every=15).arrays()
    lo = _babble(twin, constraints, tmp_path / "lo", 15, mode="lower", flush_every=15).arrays()
    rest = twin.rest_face()
    assert np.allclose(up.landmarks[:, LOWER], rest[LOWER], atol=1e-6)
    assert np.abs(up.landmarks[:, UPPER] - rest[UPPER]).max() > 0.01
    assert np.allclose(lo.landmarks[:, UPPER], rest[UPPER], atol=1e-6)
    assert np.abs(lo.landmarks[:, LOWER] - rest[LOWER]).max() > 0.01


# -------------------------------------------------------------------------------------------- settle
def test_settle_detector_stable_and_timeout() -> None:
    clock = ManualClock()
    cfg = SettleConfig(tolerance=0.01, settle_time=0.1, poll_interval=0.02, timeout=1.0)
    detector = SettleDetector(cfg, clock, clock.advance)
    # Converges to 0.5 with time constant 0.05 s: settles once changes per poll drop below 0.01.
    assert detector.wait(lambda: np.full(11, 0.5 - 0.5 * np.exp(-clock.t / 0.05)))
    assert 0.1 <= clock.t < 0.5
    start = clock.t
    oscillating = detector.wait(lambda: np.full(11, 0.5 + 0.1 * np.sin(clock.t * 40)))
    assert not oscillating and clock.t - start == pytest.approx(1.0, abs=0.03)


# -------------------------------------------------------------------------------------------- dataset
def test_dataset_layout_and_manifest(tmp_path: Path, twin: DigitalTwin, constraints: ConstraintFunction) -> None:
    data = _babble(twin, constraints, tmp_path / "d", 23, mode="full", chunk_size=10)
    info = json.loads((tmp_path / "d" / INFO).read_text())
    assert info["format"] == "emo-babbling" and info["version"] == 1
    assert info["command_names"] == list(COMMAND_NAMES)
    assert info["landmarks"]["n"] == 113 and info["landmarks"]["space"] == "robot" and info["landmarks"]["dims"] == 2
    assert info["robot"]["config_hash"] == twin_config_hash(twin)
    assert info["mode"] == "full" and info["seed"] == 0 and info["n_samples"] == 23
    assert [c["n"] for c in info["chunks"]] == [10, 10, 3]
    assert sorted(p.name for p in (tmp_path / "d" / "data").iterdir()) == [
        "chunk-000000.npz", "chunk-000001.npz", "chunk-000002.npz"]
    arrays = data.arrays()
    assert np.array_equal(arrays.index, np.arange(23))
    assert arrays.landmarks.shape == (23, 113, 2) and arrays.commands.dtype == np.float32
    assert np.all(constraints.feasible(arrays.commands)) and arrays.settled.all()
    with np.load(tmp_path / "d" / "data" / "chunk-000000.npz", allow_pickle=False) as npz:   # plain arrays
        assert set(npz.files) == {"index", "commands", "present", "landmarks", "settled"}


class _Crash(RuntimeError):
    pass


class _CrashingRobot(TwinRobot):
    """Dies (like a pulled cable) when asked to capture sample ``crash_at``."""

    def __init__(self, twin, crash_at: int, mode: str) -> None:
        super().__init__(twin, noise_seed=capture_seed(0, mode))
        self.crash_at = crash_at

    def capture(self, index: int) -> np.ndarray:
        if index == self.crash_at:
            raise _Crash("camera unplugged")
        return super().capture(index)


@pytest.mark.parametrize("policy", ["interpolate", "reject"])
def test_resume_after_interruption_equals_uninterrupted(tmp_path: Path, twin: DigitalTwin, policy: str) -> None:
    base = ConstraintConfig.from_yaml()
    constraints = ConstraintFunction(ConstraintConfig(low=base.low, high=base.high, pairs=base.pairs,
                                                      max_step=0.3, jump_policy=policy))
    whole = _babble(twin, constraints, tmp_path / "whole", 27, mode="full", chunk_size=10).arrays()
    with pytest.raises(_Crash):
        _babble(twin, constraints, tmp_path / "cut", 27, mode="full", chunk_size=10,
                robot=_CrashingRobot(twin, crash_at=14, mode="full"))
    assert BabblingDataset.open(tmp_path / "cut").n_samples == 14       # every finished sample kept
    resumed = _babble(twin, constraints, tmp_path / "cut", 27, mode="full", chunk_size=10).arrays()
    for key in ("index", "commands", "present", "landmarks", "settled"):
        assert np.array_equal(getattr(resumed, key), getattr(whole, key)), key


def test_resume_after_sigkill(tmp_path: Path, twin: DigitalTwin, constraints: ConstraintFunction) -> None:
    """A real ``kill -9`` mid-run: nothing flushed on exit, the manifest may lag the tail chunk."""
    out = tmp_path / "killed"
    args = ["--sim", "--out", str(out), "--mode", "lower", "--chunk-size", "8", "-q"]
    # The same babbling code as `emo babble`, without importing every CLI module (slow start-up).
    script = "import sys; from emo_core.cli import selfmodel as s; from emo_core.cli import Registry; " \
             "import argparse; p = argparse.ArgumentParser(); s.register(Registry(p)); " \
             "a = p.parse_args(sys.argv[1:]); a.func(a)"
    proc = subprocess.Popen([sys.executable, "-c", script, "babble", "--samples", "100000", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((out / "data").glob("chunk-*.npz"))) < 2:
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    kept = BabblingDataset.open(out).n_samples
    assert kept >= 9
    target = kept + 5
    assert main(["babble", "--samples", str(target), *args]) == 0
    resumed = BabblingDataset.open(out).arrays()
    whole = _babble(twin, constraints, tmp_path / "whole", target, mode="lower", chunk_size=8).arrays()
    assert np.array_equal(resumed.index, np.arange(target))
    assert np.array_equal(resumed.commands, whole.commands)
    assert np.array_equal(resumed.landmarks, whole.landmarks)
    assert not list(out.rglob(".*.tmp"))


def test_unrecorded_chunk_is_adopted(tmp_path: Path, twin: DigitalTwin, constraints: ConstraintFunction) -> None:
    out = tmp_path / "d"
    _babble(twin, constraints, out, 10, mode="upper", chunk_size=5)
    info = json.loads((out / INFO).read_text())
    info["chunks"] = info["chunks"][:1]                      # kill between chunk rename and manifest rename
    (out / INFO).write_text(json.dumps(info))
    assert BabblingDataset.open(out).n_samples == 10


def _lagging_manifest(out: Path, keep: int) -> None:
    """Make the manifest record only the first ``keep`` samples of the tail chunk, as after a kill
    between a tail flush and the next manifest update."""
    from emo_core.datasets.babbling import _samples_sha256, _sha256

    info = json.loads((out / INFO).read_text())
    record = info["chunks"][-1]
    tail = BabblingDataset.open(out).arrays().subset(np.arange(record["first_index"], record["first_index"] + keep))
    record.update(n=keep, sha256=_sha256(tail.to_npz_bytes()), samples_sha256=_samples_sha256(tail),
                  n_unsettled=int((~tail.settled).sum()))
    (out / INFO).write_text(json.dumps(info))


def test_grown_tail_chunk_is_adopted_only_if_its_recorded_samples_are_intact(
        tmp_path: Path, twin: DigitalTwin, constraints: ConstraintFunction) -> None:
    out = tmp_path / "d"
    _babble(twin, constraints, out, 12, mode="upper", chunk_size=8)      # tail chunk: 4 samples
    _lagging_manifest(out, 2)
    assert BabblingDataset.open(out).n_samples == 12                     # grown by 2: adopted
    _lagging_manifest(out, 2)
    tail = out / "data" / "chunk-000001.npz"
    arrays = BabblingDataset.open(out).arrays().subset(np.arange(8, 12))
    arrays.commands[0, 0] += 0.25                                         # a recorded sample changed
    tail.write_bytes(arrays.to_npz_bytes())
    with pytest.raises(SchemaError, match="its first 2 samples are not the ones"):
        BabblingDataset.open(out)


def test_emulated_servo_babbling_is_reproducible_for_a_seed(tmp_path: Path, capsys) -> None:
    """--emulate-servos runs in virtual time with the emulator on its own thread; each cycle waits for
    the emulator to apply its goals, so the same seed gives the same dataset, byte for byte."""
    prints = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert main(["babble", "--sim", "--emulate-servos", "--samples", "12", "--seed", str(seed), "--mode", "upper",
                     "--out", str(tmp_path / name), "-q"]) == 0
        prints.append(BabblingDataset.open(tmp_path / name).fingerprint())
    assert prints[0] == prints[1] != prints[2]


def test_corrupt_chunk_is_named(tmp_path: Path, twin: DigitalTwin, constraints: ConstraintFunction) -> None:
    out = tmp_path / "d"
    _babble(twin, constraints, out, 12, mode="upper", chunk_size=4)
    victim = out / "data" / "chunk-000001.npz"
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(SchemaError, match="chunk-000001.npz"):
        BabblingDataset.open(out)
    victim.write_bytes(bytes(raw[:100]))                      # truncated
    with pytest.raises(SchemaError, match="chunk-000001.npz"):
        BabblingDataset.open(out)
    victim.unlink()
    with pytest.raises(SchemaError, match="chunk-000001.npz"):
        BabblingDataset.open(out)


def test_resume_with_other_settings_is_refused(tmp_path: Path, twin: DigitalTwin,
                                               constraints: ConstraintFunction) -> None:
    out = tmp_path / "d"
    _babble(twin, constraints, out, 3, mode="upper")
    with pytest.raises(InputError, match="mode"):
        _babble(twin, constraints, out, 5, mode="lower")
    with pytest.raises(InputError, match="seed"):
        _babble(twin, constraints, out, 5, mode="upper", seed=9)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        _babble(twin, constraints, tmp_path / "other", 3)


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_babble_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "up"
    assert main(["babble", "--sim", "--samples", "12", "--out", str(out), "--mode", "upper", "--seed", "2", "-q"]) == 0
    assert "12 samples" in capsys.readouterr().out
    assert json.loads((out / INFO).read_text())["n_samples"] == 12
    assert main(["babble", "--sim", "--samples", "12", "--out", str(out), "--mode", "lower", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emo: error:") and "mode" in err and len(err.strip().splitlines()) == 1
    assert main(["babble", "--sim", "--samples", "0", "--out", str(tmp_path / "z")]) == 2
    assert main(["babble", "--samples", "5", "--out", str(tmp_path / "hw")]) == 2
    assert "--port" in capsys.readouterr().err


def test_babbling_through_servo_driver_and_emulator(tmp_path: Path, constraints: ConstraintFunction) -> None:
    """The hardware code path with the wire-level emulator (virtual time) and the twin as the face."""
    from emo_core.selfmodel.hardware import open_emulated_robot

    twin = DigitalTwin(noise_std=0.0)
    robot, close = open_emulated_robot(twin, constraints.config.settle)
    try:
        start = robot.clock.now()
        data = _babble(twin, constraints, tmp_path / "emu", 4, mode="lower", robot=robot).arrays()
        elapsed = robot.clock.now() - start
    finally:
        close()
    assert data.settled.all()
    assert elapsed > 4 * constraints.config.settle.settle_time        # it really waited for the servos
    assert np.abs(data.present - data.commands).max() < 0.01         # tick quantization only
    assert np.allclose(data.commands[:, :4], robot.calm_commands()[:4].astype(np.float32))
    assert np.allclose(data.landmarks, twin.forward(data.present), atol=1e-5)
    info = json.loads((tmp_path / "emu" / INFO).read_text())
    assert info["robot"]["kind"] == "twin+servo-emulator" and info["robot"]["config_hash"] == twin_config_hash(twin)


def test_camera_capture_skips_stale_frames_and_retries() -> None:
    """The hardware capture: drop buffered frames, retry undetected ones, fail clearly."""
    from types import SimpleNamespace

    from emo_core.schema import Face
    from emo_core.selfmodel.hardware import CameraCapture

    class Source:
        def __init__(self, n: int) -> None:
            self.frames = [SimpleNamespace(image=np.full((4, 4, 3), k, np.uint8), stamp=k / 30, index=k)
                           for k in range(n)]

        def read(self):
            return self.frames.pop(0) if self.frames else None

    class Extractor:
        def process(self, image, stamp=0.0, camera=""):
            k = int(image[0, 0, 0])
            if k < 4:                                   # frames 2 and 3 show no face
                return Face.missing(stamp)
            metric = np.zeros((113, 3), np.float32)
            metric[:, 0] = k
            return Face(detected=True, metric=metric, stamp=stamp)

    capture = CameraCapture(Source(8), Extractor(), discard=2, attempts=3)
    points = capture.capture(np.zeros(11), index=0)
    assert points.shape == (113, 2) and points[0, 0] == 4       # frames 0-1 dropped, 2-3 retried
    with pytest.raises(InputError, match="no face detected in 3 front-camera frames for sample 7"):
        CameraCapture(Source(8), Extractor(), discard=0, attempts=3).capture(np.zeros(11), index=7)
    with pytest.raises(InputError, match="stream ended"):
        CameraCapture(Source(1), Extractor(), discard=2).capture(np.zeros(11), index=0)
