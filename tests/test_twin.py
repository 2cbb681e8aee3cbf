"""Digital twin: the properties the rest of the project relies on (docs/twin.md)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from emo_core.cli import main
from emo_core.errors import ConfigError, EmoError, InputError
from emo_core.resources import config_path
from emo_core.schema import COMMAND_NAMES, N_LANDMARKS, REGIONS, Space
from emo_core.twin import DigitalTwin, load_twin_config, render_face
from emo_core.twin import topology as topo

K = {name: i for i, name in enumerate(COMMAND_NAMES)}
LEFT_CORNER, RIGHT_CORNER = topo.LIP_INNER_CORNERS[1], topo.LIP_INNER_CORNERS[0]


@pytest.fixture(scope="module")
def twin() -> DigitalTwin:
    return DigitalTwin(seed=0)


def face_at(twin: DigitalTwin, **values: float) -> np.ndarray:
    return twin.forward(twin.commands_from_dict(values), noise=False).astype(np.float64)


def random_commands(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, len(COMMAND_NAMES)))


# ------------------------------------------------------------------ shapes, rest, calm
def test_shapes_and_dtype(twin):
    assert twin.forward(random_commands(7)).shape == (7, N_LANDMARKS, 2)
    one = twin.forward(twin.calm_commands())
    assert one.shape == (N_LANDMARKS, 2) and one.dtype == np.float32
    assert twin.forward(np.zeros((0, 11))).shape == (0, N_LANDMARKS, 2)


def test_calm_commands_and_rest_face(twin):
    calm = twin.calm_commands()
    assert calm.shape == (11,) and np.all((calm >= 0) & (calm <= 1))
    assert calm[K["jaw_open"]] == 0.0 and calm[K["brow_inner"]] == 0.5
    rest = twin.rest_face()
    np.testing.assert_array_equal(rest, twin.forward(calm, noise=False))
    # The stored rest face is what the twin produces at calm (the lip seal differs by < 1e-3).
    assert np.abs(rest - twin.config.rest_face).max() < 1e-3
    # Symmetric: mirror pairs reflect onto each other.
    mirrored = rest[twin.config.mirror] * np.array([-1.0, 1.0])
    assert np.abs(rest - mirrored).max() < 1e-5
    # Plausible geometry in the metric frame: eyes above the mouth above the chin, lips closed.
    assert rest[REGIONS["left_eye"], 1].mean() < rest[REGIONS["lips"], 1].mean() < rest[topo.CHIN, 1]
    assert rest[REGIONS["left_eye"], 0].mean() > 0 > rest[REGIONS["right_eye"], 0].mean()
    gap = rest[topo.LIP_LOWER_INNER, 1] - rest[topo.LIP_UPPER_INNER, 1]
    assert np.all(gap < 1e-3)


# ------------------------------------------------------------------ independence of halves
def test_upper_and_lower_halves_are_exactly_independent(twin):
    rng = np.random.default_rng(1)
    base = random_commands(500, seed=2)
    other_lower = base.copy()
    other_lower[:, 4:] = rng.random((500, 7))
    other_upper = base.copy()
    other_upper[:, :4] = rng.random((500, 4))
    f0, f_lo, f_up = (twin.forward(c, noise=False) for c in (base, other_lower, other_upper))
    np.testing.assert_array_equal(f0[:, :52], f_lo[:, :52])    # lower commands never move the upper face
    np.testing.assert_array_equal(f0[:, 52:], f_up[:, 52:])    # upper commands never move the lower face
    assert np.abs(f0[:, 52:] - f_lo[:, 52:]).max() > 0.1
    assert np.abs(f0[:, :52] - f_up[:, :52]).max() > 0.05


def test_every_command_moves_its_own_half(twin):
    rest = twin.rest_face()
    for name in COMMAND_NAMES:
        calm = twin.calm_commands()[K[name]]
        far = 1.0 if calm < 0.5 else 0.0
        moved = np.abs(face_at(twin, **{name: far}) - rest).max(axis=1)
        half = slice(0, 52) if name in COMMAND_NAMES[:4] else slice(52, 113)
        other = slice(52, 113) if half.start == 0 else slice(0, 52)
        assert moved[half].max() > 0.02, name
        assert moved[other].max() == 0.0, name


# ------------------------------------------------------------------ couplings
def test_jaw_opening_lowers_and_stretches_the_lips(twin):
    rest = twin.rest_face().astype(np.float64)
    opened = face_at(twin, jaw_open=1.0)
    lower_inner = opened[topo.LIP_LOWER_INNER, 1] - rest[topo.LIP_LOWER_INNER, 1]
    upper_inner = opened[topo.LIP_UPPER_INNER, 1] - rest[topo.LIP_UPPER_INNER, 1]
    assert lower_inner.min() > 0.2                      # the lower lip rides on the jaw
    assert 0 < upper_inner.max() < 0.1                  # the upper lip is stretched down a little
    assert opened[topo.CHIN, 1] - rest[topo.CHIN, 1] > 0.3
    assert np.all(opened[topo.LIP_INNER_CORNERS, 1] > rest[topo.LIP_INNER_CORNERS, 1])  # corners pulled down
    # Stretching thins the lower lip: outer-to-inner height at the centre shrinks.
    centre_outer, centre_inner = REGIONS["lips"][10], REGIONS["lips"][35]
    height = lambda f: f[centre_outer, 1] - f[centre_inner, 1]  # noqa: E731
    assert height(opened) < 0.85 * height(rest)
    # The jaw contour moves with the chin, most at the chin, hardly at the ears.
    jaw_drop = opened[topo.JAW, 1] - rest[topo.JAW, 1]
    assert jaw_drop[10] == jaw_drop.max() and jaw_drop[0] < 0.05 * jaw_drop[10]


def test_mouth_corners_are_antagonists(twin):
    rest = twin.rest_face().astype(np.float64)
    d = {key: face_at(twin, **vals)[[RIGHT_CORNER, LEFT_CORNER]] - rest[[RIGHT_CORNER, LEFT_CORNER]]
         for key, vals in {"up": {"mouth_corner_up": 1.0}, "down": {"mouth_corner_down": 1.0},
                           "both": {"mouth_corner_up": 1.0, "mouth_corner_down": 1.0}}.items()}
    assert np.all(d["up"][:, 1] < -0.08) and np.all(d["down"][:, 1] > 0.08)   # y is down
    # Co-activation: the corners go sideways (outward), barely up or down...
    assert d["both"][1, 0] > 0.08 and d["both"][0, 0] < -0.08
    assert np.all(np.abs(d["both"][:, 1]) < 0.3 * np.abs(d["both"][:, 0]))
    # ...and the net motion is not the sum of the two single motions.
    assert np.abs(d["both"] - (d["up"] + d["down"])).max() > 0.03


def test_lip_commands_shape_the_lip_contours(twin):
    rest = twin.rest_face().astype(np.float64)
    raised = face_at(twin, lip_upper_raise=1.0)
    dropped = face_at(twin, lip_lower_drop=1.0)
    lift = raised[topo.LIP_UPPER_INNER, 1] - rest[topo.LIP_UPPER_INNER, 1]
    assert lift.max() < -0.01 and lift.mean() < -0.05          # the upper lip opens the mouth upward...
    assert lift.min() < lift[len(lift) // 2]                  # ...most over the canines, less at the centre
    drop = dropped[topo.LIP_LOWER_INNER, 1] - rest[topo.LIP_LOWER_INNER, 1]
    assert drop.min() > 0.01 and drop.mean() > 0.05           # the lower lip opens it downward
    upper_height = lambda f: f[REGIONS["lips"][25], 1] - f[REGIONS["lips"][0], 1]  # noqa: E731
    assert upper_height(face_at(twin, lip_upper_curl=1.0)) > 1.2 * upper_height(rest)     # everted
    assert upper_height(face_at(twin, lip_upper_curl=0.0)) < 0.85 * upper_height(rest)    # rolled in
    lower_height = lambda f: f[REGIONS["lips"][10], 1] - f[REGIONS["lips"][35], 1]  # noqa: E731
    assert lower_height(face_at(twin, lip_lower_curl=1.0)) > 1.2 * lower_height(rest)


def test_brow_commands_weight_the_brow_differently(twin):
    rest = twin.rest_face().astype(np.float64)
    brow = REGIONS["left_brow"]
    inner_end, outer_end = brow[np.argmin(rest[brow, 0])], brow[np.argmax(rest[brow, 0])]
    lift = lambda f, i: rest[i, 1] - f[i, 1]  # noqa: E731  (y is down)
    inner_cmd, outer_cmd = face_at(twin, brow_inner=1.0), face_at(twin, brow_outer=1.0)
    assert lift(inner_cmd, inner_end) > 2 * lift(inner_cmd, outer_end) > 0
    assert lift(outer_cmd, outer_end) > 2 * lift(outer_cmd, inner_end) > 0
    # Forehead skin: raising both lifts the brow middle less than the two lifts added.
    both = face_at(twin, brow_inner=1.0, brow_outer=1.0)
    middle = brow[np.argsort(rest[brow, 0])[len(brow) // 2]]
    assert lift(both, middle) < 0.97 * (lift(inner_cmd, middle) + lift(outer_cmd, middle))
    # Lowered brows push the upper lids down.
    lid = topo.LID_UPPER
    assert face_at(twin, brow_inner=0.0, brow_outer=0.0)[lid, 1].mean() > rest[lid, 1].mean() + 0.01


def test_eyelids_meet_and_never_invert(twin):
    faces = twin.forward(random_commands(20000, seed=3), noise=False)
    lid_gap = faces[:, topo.LID_LOWER, 1] - faces[:, topo.LID_UPPER, 1]
    lip_gap = faces[:, topo.LIP_LOWER_INNER, 1] - faces[:, topo.LIP_UPPER_INNER, 1]
    assert lid_gap.min() >= 0.0 and lip_gap.min() >= 0.0
    aperture = lambda c: float(  # noqa: E731
        np.mean(np.diff(face_at(twin, eyelid_upper=c)[[topo.LID_UPPER, topo.LID_LOWER], 1], axis=0)))
    assert aperture(0.95) < 0.01                                  # closed...
    assert abs(aperture(1.0) - aperture(0.9)) < 0.005             # ...and closing further changes nothing
    assert aperture(0.3) - aperture(0.4) > 0.02                   # while mid-travel moves a lot
    assert aperture(0.0) > aperture(0.3)                          # and 0 opens the eyes wide


def test_responses_saturate_near_the_ends(twin):
    """Equal command steps move the face less near the end stops than mid-travel."""
    grid = np.linspace(0, 1, 41)
    rest = twin.rest_face()
    for name in COMMAND_NAMES:
        sweep = np.repeat(twin.calm_commands()[None], grid.size, axis=0)
        sweep[:, K[name]] = grid
        faces = twin.forward(sweep, noise=False).reshape(grid.size, -1).astype(np.float64)
        speed = np.linalg.norm(np.diff(faces, axis=0), axis=1)
        assert speed[-2:].mean() < 0.7 * speed.max(), name
        if name != "jaw_open":   # the jaw is fastest as it leaves closed (hinge geometry), see docs
            assert speed[:2].mean() < 0.8 * speed.max(), name
        assert np.abs(faces[-1] - rest.reshape(-1)).max() > 0.02, name


def test_map_is_clearly_nonlinear(twin):
    """The best linear map from commands to landmarks misses by several times the measurement noise."""
    c = random_commands(4000, seed=4)
    faces = twin.forward(c, noise=False).reshape(len(c), -1).astype(np.float64)
    design = np.hstack([c, np.ones((len(c), 1))])
    coef, *_ = np.linalg.lstsq(design, faces, rcond=None)
    residual = faces - design @ coef
    for half in (slice(0, 104), slice(104, 226)):
        unexplained = residual[:, half].var(axis=0).sum() / faces[:, half].var(axis=0).sum()
        assert unexplained > 0.02
        assert np.sqrt(np.mean(residual[:, half] ** 2)) > 2 * twin.noise_std
        assert np.abs(residual[:, half]).max() > 15 * twin.noise_std


def test_small_fixed_left_right_asymmetry(twin):
    rest = twin.rest_face().astype(np.float64)
    moved = face_at(twin, brow_inner=1.0, mouth_corner_up=1.0)
    disp = moved - rest
    mirrored = disp[twin.config.mirror] * np.array([-1.0, 1.0])
    asym = np.abs(disp - mirrored).max()
    assert 1e-3 < asym < 0.15 * np.abs(disp).max()
    np.testing.assert_array_equal(DigitalTwin(seed=9).forward(twin.calm_commands() * 0 + 0.9, noise=False),
                                  twin.forward(twin.calm_commands() * 0 + 0.9, noise=False))


# ------------------------------------------------------------------ determinism and noise
def test_deterministic_under_seed():
    c = random_commands(50, seed=5)
    a, b, other = DigitalTwin(seed=7), DigitalTwin(seed=7), DigitalTwin(seed=8)
    first_a, first_b = a.forward(c), b.forward(c)
    np.testing.assert_array_equal(first_a, first_b)
    np.testing.assert_array_equal(a.forward(c), b.forward(c))   # the streams stay in step
    assert not np.array_equal(first_a, other.forward(c))
    np.testing.assert_array_equal(a.forward(c, noise=False), other.forward(c, noise=False))


def test_noise_level():
    c = random_commands(2000, seed=6)
    twin = DigitalTwin(seed=0)
    residual = twin.forward(c) - twin.forward(c, noise=False)
    assert abs(residual.std() / twin.noise_std - 1.0) < 0.05 and abs(residual.mean()) < 1e-3
    assert 0 < twin.noise_std < 0.01
    loud = DigitalTwin(seed=0, noise_std=0.02)
    assert abs((loud.forward(c) - loud.forward(c, noise=False)).std() - 0.02) < 0.002
    silent = DigitalTwin(seed=0, noise_std=0.0)
    np.testing.assert_array_equal(silent.forward(c), silent.forward(c, noise=False))
    with pytest.raises(InputError):
        DigitalTwin(noise_std=-1.0)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("bad, fragment", [
    (np.full(10, 0.5), "shape"),
    (np.full((3, 12), 0.5), "shape"),
    (np.full((2, 11, 1), 0.5), "shape"),
    (np.array(["a"] * 11), "numeric"),
])
def test_rejects_malformed_commands(twin, bad, fragment):
    with pytest.raises(InputError, match=fragment):
        twin.forward(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf, -0.01, 1.01])
def test_rejects_bad_values_naming_the_command(twin, value):
    c = np.tile(twin.calm_commands(), (3, 1))
    c[2, K["lip_lower_curl"]] = value
    with pytest.raises(InputError, match="lip_lower_curl"):
        twin.forward(c)


def test_commands_from_dict(twin):
    c = twin.commands_from_dict({"jaw_open": 0.7})
    assert c[K["jaw_open"]] == 0.7 and c[K["brow_inner"]] == twin.calm_commands()[K["brow_inner"]]
    with pytest.raises(InputError, match="valid names"):
        twin.commands_from_dict({"smile": 1.0})
    with pytest.raises(InputError, match="jaw_open"):
        twin.commands_from_dict({"jaw_open": 2.0})


def test_face_object(twin):
    face = twin.face(twin.calm_commands(), noise=False)
    assert face.detected and face.space == Space.ROBOT and face.metric.shape == (N_LANDMARKS, 3)
    assert np.all(face.metric[:, 2] == 0)
    np.testing.assert_array_equal(face.xy, twin.rest_face())
    with pytest.raises(InputError):
        twin.face(random_commands(2))


# ------------------------------------------------------------------ motion range
def test_motion_range(twin):
    rng_ = twin.motion_range()
    lo, hi = twin.motion_bounds()
    assert rng_.shape == (N_LANDMARKS, 2) and np.all(rng_ >= 0) and np.all(lo <= 0) and np.all(hi >= 0)
    np.testing.assert_array_equal(rng_, np.maximum(-lo, hi))
    disp = twin.forward(random_commands(3000, seed=8), noise=False) - twin.rest_face()
    assert np.all(np.abs(disp) <= rng_ * 1.02 + 1e-4)                      # covers the command space
    assert rng_[topo.CHIN, 1] > 0.4 and hi[topo.CHIN, 1] > 0.4 and lo[topo.CHIN, 1] > -1e-3
    assert rng_[topo.EYE_INNER_CORNERS].max() == 0.0                        # fixed to the frame
    assert rng_[topo.LID_UPPER, 1].max() > 0.15 and np.all(rng_[topo.LID_UPPER, 1] > 0.02)


# ------------------------------------------------------------------ config
def test_config_file_is_up_to_date_with_its_generator():
    assert main(["bundled", "twin-config", "--from-stored", "--check", "--out", str(config_path("face_twin.yaml"))]) == 0


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ncommands: {}\n")
    with pytest.raises(ConfigError):
        load_twin_config(bad)
    bad.write_text(": : :")
    with pytest.raises(ConfigError):
        load_twin_config(bad)
    with pytest.raises(ConfigError):
        load_twin_config(tmp_path / "missing.yaml")


# ------------------------------------------------------------------ renderer
def test_render_face(twin):
    image = render_face(twin.rest_face())
    assert image.shape == (480, 480, 3) and image.dtype == np.uint8
    assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 50
    wide = render_face(face_at(twin, jaw_open=1.0), (640, 360), title="jaw open", highlight=[topo.CHIN])
    assert wide.shape == (360, 640, 3)
    # An open mouth shows the dark mouth cavity; a closed one does not.
    dark = lambda img: int(np.sum(img.sum(axis=2) < 120))  # noqa: E731
    assert dark(render_face(face_at(twin, jaw_open=1.0))) > dark(image) + 500
    # Any 113-point face (e.g. a human metric face, differently scaled) is auto-fitted.
    assert render_face(twin.rest_face() * 3.0 + 5.0).std() > 20
    with pytest.raises(InputError):
        render_face(twin.rest_face(), (8, 8))
    with pytest.raises(EmoError):
        render_face(np.full((113, 2), np.nan))


# ------------------------------------------------------------------ CLI
def test_cli_writes_png(tmp_path, capsys):
    out = tmp_path / "face.png"
    assert main(["sim", "face", "--commands", "brow_inner=0.8,jaw_open=0.5", "--out", str(out),
                 "--size", "320x240", "--no-noise"]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (240, 320, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.png"]     # no temp file left behind
    assert "jaw_open=0.5" in capsys.readouterr().out


@pytest.mark.parametrize("commands, fragment", [
    ("smile=1", "valid names"), ("jaw_open=2", "outside"), ("jaw_open=x", "not a number"),
    ("jaw_open", "name=value"), ("jaw_open=nan", "jaw_open"),
])
def test_cli_rejects_bad_commands(tmp_path, capsys, commands, fragment):
    out = tmp_path / "face.png"
    assert main(["sim", "face", "--commands", commands, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert not out.exists()
