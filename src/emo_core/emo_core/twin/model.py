"""The digital twin: 11 normalized motor commands -> the robot face's 113 landmarks.

The twin stands in for Emo's silicone face seen by a camera. Upper-face commands (brows, lids)
move only the 52 upper landmarks and lower-face commands (mouth, jaw) only the 61 lower ones,
because the eye modules and the mouth module are separate mechanisms under separate skin regions
(Emo paper, Methods) -- the halves are computed from their own commands only, so independence is
exact. Within a half the map is smooth, nonlinear and coupled (see ``docs/twin.md``):

* each servo drives its skin region through a saturating response (``servo_response``);
* brows: both commands move every brow point with different weights; the forehead skin limits the
  summed travel; lowered brows push the upper lids down, raised brows lift them a little;
* the upper lid closes onto the lower one (a blink), the lower lid rises part-way (a squint); where
  they meet they stop on contact (the aperture never goes negative);
* mouth corners sit on planar five-bar linkages driven by ``mouth_corner_up``/``_down``: the corner
  moves along the linkage's curved workspace, co-activation pushes it sideways;
* the inner lip contours follow the corners and the jaw; the lips seal at rest, part only when
  pulled apart, and thin when stretched, pressed or opened; curl changes the visible lip height;
* the outer lip contour is skin on top of the inner one; the jaw contour follows the jaw's rotation
  and the cheeks bulge with corner lift;
* a fixed per-robot left/right calibration asymmetry; seeded landmark measurement noise.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..schema import COMMAND_NAMES, N_COMMANDS, N_LANDMARKS, N_UPPER, Face, Space
from . import topology as topo
from .config import TwinConfig, load_twin_config
from .mechanics import (five_bar, jaw_response, servo_response, sigmoid, soft_limit, soft_relu,
                        standard_normal_f32)

LOG = logging.getLogger(__name__)

_IDX = {name: i for i, name in enumerate(COMMAND_NAMES)}
#: Column of each lower-face command within the lower-face block c[:, 4:].
_LOW = {name: i - 4 for name, i in _IDX.items() if i >= 4}
_UPPER_K = np.arange(4)
_LOWER_K = np.arange(4, N_COMMANDS)
_UPPER_ROWS = np.arange(N_UPPER)
_LOWER_ROWS = np.arange(N_UPPER, N_LANDMARKS)
_CHUNK = 1024
#: Internal float type: float32 halves the memory traffic; outputs are float32 anyway.
_DT = np.float32
_LOG2 = float(np.log(2.0))  # soft_relu(0) / eps
#: Seed of the fixed command sample behind motion_range(): a property of the robot, not of the noise.
_RANGE_SEED = 20240327


class DigitalTwin:
    """Forward model of Emo's face. Deterministic given ``seed``; no clock, no global state.

    ``noise_std`` (face units) overrides the config's measurement noise; 0 disables it.
    """

    def __init__(self, config: TwinConfig | str | Path | None = None, seed: int = 0,
                 noise_std: float | None = None) -> None:
        self.config = config if isinstance(config, TwinConfig) else load_twin_config(config)
        std = self.config.noise_std if noise_std is None else float(noise_std)
        if not np.isfinite(std) or std < 0:
            raise InputError(f"noise_std must be a finite number >= 0, got {noise_std}")
        self.noise_std = std
        self._rng = np.random.default_rng(seed)
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None
        self._prepare()

    # ------------------------------------------------------------------ public API
    def forward(self, commands: np.ndarray, noise: bool = True) -> np.ndarray:
        """Landmarks (N, 113, 2) float32 for commands (N, 11) in [0, 1]; (113, 2) for one (11,)."""
        c, single = self._check(commands)
        out = np.empty((c.shape[0], N_LANDMARKS, 2), dtype=np.float32)
        noisy = noise and self.noise_std > 0
        if noisy:
            jitter = np.empty((2, min(c.shape[0], _CHUNK), N_LANDMARKS, 2), dtype=np.float32)
        # Chunks keep the working set in cache (and avoid page-faulting fresh multi-MB temporaries).
        for start in range(0, c.shape[0], _CHUNK):
            chunk = out[start:start + _CHUNK]
            self._forward_chunk(c[start:start + _CHUNK], chunk)
            if noisy:
                # Measurement noise, drawn chunk after chunk from the twin's own stream.
                buf, scratch = jitter[0, :len(chunk)], jitter[1, :len(chunk)]
                standard_normal_f32(self._rng, buf, scratch)
                buf *= np.float32(self.noise_std)
                chunk += buf
        return out[0] if single else out

    def _forward_chunk(self, c: np.ndarray, out: np.ndarray) -> None:
        # The halves are computed from their own commands only: independence is exact by construction.
        # Internally each axis is a (landmarks, N) plane: landmark rows stay contiguous, so the
        # contour gathers/scatters below are cheap.
        c = c.astype(_DT)
        ux, uy = self._upper(c[:, _UPPER_K])
        lx, ly = self._lower(c[:, _LOWER_K])
        out[:, :N_UPPER, 0], out[:, :N_UPPER, 1] = ux.T, uy.T
        out[:, N_UPPER:, 0], out[:, N_UPPER:, 1] = lx.T, ly.T

    def rest_face(self) -> np.ndarray:
        """The face at calm commands, without noise (113, 2)."""
        return self.forward(self.calm_commands(), noise=False)

    def calm_commands(self) -> np.ndarray:
        """Command values of the calm (resting) face, (11,) in COMMAND_NAMES order."""
        return self.config.calm_commands()

    def motion_range(self) -> np.ndarray:
        """Per-landmark max |displacement| from rest over the command space (113, 2)."""
        lo, hi = self.motion_bounds()
        return np.maximum(-lo, hi)

    def motion_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) signed displacement from rest per landmark and axis, each (113, 2).

        Estimated once by dense sampling (grids plus a fixed random sample of each face half) and
        cached; the paper's retargeting (eq. 1-2) clips human displacements to these bounds.
        """
        if self._bounds is None:
            self._bounds = self._estimate_bounds()
        return self._bounds[0].copy(), self._bounds[1].copy()

    def face(self, commands: np.ndarray, noise: bool = True, stamp: float = 0.0) -> Face:
        """One robot face as a :class:`Face` in ``Space.ROBOT`` (z = 0)."""
        c, _ = self._check(commands)
        if c.shape[0] != 1:
            raise InputError(f"face() takes one command vector (11,), got {c.shape[0]}")
        xy = self.forward(c[0], noise=noise)
        metric = np.zeros((N_LANDMARKS, 3), dtype=np.float32)
        metric[:, :2] = xy
        return Face(detected=True, confidence=1.0, metric=metric, stamp=stamp, space=Space.ROBOT,
                    camera="twin")

    def commands_from_dict(self, values: dict[str, float]) -> np.ndarray:
        """An (11,) command vector: calm values overridden by ``values`` (names as COMMAND_NAMES)."""
        unknown = [name for name in values if name not in _IDX]
        if unknown:
            raise InputError(f"unknown command(s) {', '.join(map(repr, unknown))}; "
                             f"valid names: {', '.join(COMMAND_NAMES)}")
        c = self.calm_commands()
        for name, value in values.items():
            c[_IDX[name]] = float(value)
        self._check(c)
        return c

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check(commands: np.ndarray) -> tuple[np.ndarray, bool]:
        arr = np.asarray(commands)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise InputError(f"commands must be numeric, got dtype {arr.dtype}")
        single = arr.ndim == 1
        if single:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != N_COMMANDS:
            raise InputError(f"commands must have shape ({N_COMMANDS},) or (N, {N_COMMANDS}) in the order "
                             f"{', '.join(COMMAND_NAMES)}; got shape {np.shape(commands)}")
        arr = arr.astype(np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise InputError(f"command {COMMAND_NAMES[col]!r} is {arr[row, col]}{_where(row, arr)}; "
                             "commands must be finite numbers in [0, 1]")
        out = (arr < 0.0) | (arr > 1.0)
        if out.any():
            row, col = np.argwhere(out)[0]
            raise InputError(f"command {COMMAND_NAMES[col]!r} = {float(arr[row, col])!r}{_where(row, arr)} "
                             "is outside [0, 1]")
        return arr, single

    # ------------------------------------------------------------------ set-up
    def _prepare(self) -> None:
        cfg = self.config
        self._rest = cfg.rest_face.astype(np.float64)
        left = sigmoid(self._rest[:, 0] / cfg.side_blend_width)
        self._side_w = np.stack([1.0 - left, left])                       # (2, 113): right, left
        specs = [cfg.commands[n] for n in COMMAND_NAMES]
        self._fields = np.stack([s.field for s in specs])                 # (11, 113, 2)
        self._check_fields()
        self._center = np.array([[s.center + d for d in s.side_center_shift] for s in specs])
        self._gain = np.array([s.gain for s in specs])
        self._side_gain = np.array([s.side_gain for s in specs])          # (11, 2)
        self._kind = [s.response for s in specs]
        self._calm = cfg.calm_commands()
        self._prepare_responses()
        self._upper_half = _Half(self._rest, _UPPER_ROWS, _UPPER_K, self._fields, self._side_w)
        self._lower_half = _Half(self._rest, _LOWER_ROWS, _LOWER_K, self._fields, self._side_w)
        self._side_w_t = np.ascontiguousarray(self._side_w.T, dtype=_DT)   # (113, 2)
        self._lateral_sign = np.array([-1.0, 1.0])   # robot's right corner moves to -x when it widens
        self._prepare_upper()
        self._prepare_lower()
        self._to_internal_dtype()

    def _to_internal_dtype(self) -> None:
        """Cast the per-landmark constants used in forward() to float32 (no silent float64 upcasts)."""
        for name in ("_lid_profile", "_brow_rest_mean", "_w_up", "_w_lo", "_thick_up", "_thick_lo",
                     "_corner_offset", "_follow", "_cheek", "_thick_coef", "_theta0", "_p0",
                     "_corner_scale", "_lateral_sign", "_rest_y_brows", "_corner_limits"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=_DT))

    def _check_fields(self) -> None:
        upper_moves_lower = np.abs(self._fields[_UPPER_K][:, _LOWER_ROWS]).max()
        lower_moves_upper = np.abs(self._fields[_LOWER_K][:, _UPPER_ROWS]).max()
        derived = np.concatenate([topo.LIP_UPPER_OUTER, topo.LIP_LOWER_OUTER, topo.LIP_OUTER_CORNERS])
        if upper_moves_lower > 0 or lower_moves_upper > 0:
            raise ConfigError(f"{self.config.path}: a command field crosses the face halves")
        if np.abs(self._fields[:, derived]).max() > 0:
            raise ConfigError(f"{self.config.path}: the outer lip contour is derived from the inner one; "
                              "command fields must not move it")

    def _prepare_upper(self) -> None:
        rest = self._rest
        self._brow_side = [topo.BROWS[rest[topo.BROWS, 0] < 0], topo.BROWS[rest[topo.BROWS, 0] > 0]]
        self._brow_rest_mean = np.array([rest[s, 1].mean() for s in self._brow_side])[:, None]
        self._rest_y_brows = rest[topo.BROWS, 1, None]
        lid_field = np.abs(self._fields[_IDX["eyelid_upper"], topo.LID_UPPER, 1])
        # How strongly brow skin reaches each upper-lid point: most at the lid centre.
        side = (rest[topo.LID_UPPER, 0] > 0).astype(np.int64)
        self._lid_profile = lid_field / np.array([lid_field[side == s].max() for s in (0, 1)])[side]
        self._lid_side = side

    def _prepare_lower(self) -> None:
        rest, fb, lips = self._rest, self.config.five_bar, self.config.lips
        # Outer lip contour = inner contour (interpolated at each outer point's rest x) + skin thickness.
        self._w_up = _interp_matrix(rest[topo.UPPER_INNER_CURVE, 0], rest[topo.LIP_UPPER_OUTER, 0])
        self._w_lo = _interp_matrix(rest[topo.LOWER_INNER_CURVE, 0], rest[topo.LIP_LOWER_OUTER, 0])
        self._thick_up = rest[topo.LIP_UPPER_OUTER] - self._w_up @ rest[topo.UPPER_INNER_CURVE]
        self._thick_lo = rest[topo.LIP_LOWER_OUTER] - self._w_lo @ rest[topo.LOWER_INNER_CURVE]
        self._corner_offset = rest[topo.LIP_OUTER_CORNERS] - rest[topo.LIP_INNER_CORNERS]
        self._width0 = rest[topo.LIP_INNER_CORNERS[1], 0] - rest[topo.LIP_INNER_CORNERS[0], 0]
        follow_left = lips.corner_follow
        self._follow = np.stack([follow_left[self.config.mirror], follow_left])[:, topo.LIP_INNER_ALL]
        jaw = topo.JAW
        self._cheek = lips.cheek_gain * lips.cheek_follow[jaw] * np.sign(rest[jaw, 0])
        self._cheek_side = (rest[jaw, 0] > 0).astype(np.int64)
        # Per-landmark thickness responses (curl, raise/drop) at the outer lip points.
        k = {n: _IDX[n] for n in COMMAND_NAMES}
        self._thick_k = np.array([k["lip_upper_curl"], k["lip_upper_raise"],
                                  k["lip_lower_curl"], k["lip_lower_drop"]])
        self._thick_coef = np.array([lips.curl_upper, -lips.raise_thin, lips.curl_lower, -lips.drop_thin])
        # Calm crank angles per side (with the per-robot horn offsets); the rest corner is the rest face's.
        off = np.radians(np.array(fb.side_offset_deg))                             # (2 sides, a/c)
        self._theta0 = np.stack([np.radians(fb.crank_a_deg) + off[:, 0],
                                 np.radians(fb.crank_c_deg) + off[:, 1]], axis=-1)  # (2, 2)
        self._corner_calm = self._calm[[_IDX["mouth_corner_up"], _IDX["mouth_corner_down"]]]
        self._p0 = five_bar(self._theta0[:, 0], self._theta0[:, 1], fb.base_half_gap, fb.crank, fb.coupler)
        # Per-side linkage gain: mean calibration gain of the two corner servos on that side.
        corner_k = [_IDX["mouth_corner_up"], _IDX["mouth_corner_down"]]
        self._corner_scale = fb.scale * self._side_gain[corner_k].mean(axis=0)
        self._corner_limits = np.array([fb.skin_limit_lateral, fb.skin_limit_vertical])
        self._press_rest = float(soft_relu(np.array(lips.seal_press), lips.contact_eps))

    # ------------------------------------------------------------------ responses
    def _prepare_responses(self) -> None:
        """Fold servo_response, its calm value and the side gains into tanh(h (c - center)) * a + b."""
        center, gain, side_gain = self._center, self._gain[:, None], self._side_gain
        lo = sigmoid(-gain * center)
        span = 1.0 / (sigmoid(gain * (1.0 - center)) - lo)
        calm = servo_response(self._calm[:, None], center, gain)
        logistic = np.array([kind == "logistic" for kind in self._kind])[:, None]
        # Shapes (11, 2, 1): broadcast against commands laid out as (K, 1, N).
        self._resp_h = (0.5 * gain * np.ones((1, 2))).astype(_DT)[..., None]
        self._resp_center = center.astype(_DT)[..., None]
        self._resp_a = np.where(logistic, 0.5 * span * side_gain, 0.0).astype(_DT)[..., None]
        offset = (0.5 * span - lo * span - calm) * side_gain
        self._resp_b = np.where(logistic, offset, 0.0).astype(_DT)[..., None]
        self._jaw_k = [k for k, kind in enumerate(self._kind) if kind == "jaw"]
        self._jaw_calm = float(self._jaw(np.array(self._calm[_IDX["jaw_open"]])))

    def _side_response(self, c: np.ndarray, ks: np.ndarray) -> np.ndarray:
        """Per-side response relative to calm, with the per-side calibration gain: (K, 2, N).

        Logistic commands use the folded servo_response; the jaw its hinge geometry (one servo, no
        side difference); "linkage" commands are 0 here (they act through the five-bar model).
        """
        resp = np.tanh(self._resp_h[ks] * (c.T[:, None, :] - self._resp_center[ks]))
        resp *= self._resp_a[ks]
        resp += self._resp_b[ks]
        for j, k in enumerate(ks):
            if k in self._jaw_k:
                resp[j] = self._jaw(c[:, j]) - self._jaw_calm
        return resp

    def _jaw(self, c: np.ndarray) -> np.ndarray:
        return jaw_response(c, self.config.jaw.phi0_deg, self.config.jaw.travel_deg)

    # ------------------------------------------------------------------ upper face
    def _upper(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x, y planes (52, N) of the upper face from the 4 upper commands."""
        cfg = self.config
        x, y = self._upper_half.displace(self._side_response(c, _UPPER_K))
        # Forehead skin: the summed vertical brow travel saturates.
        brows = topo.BROWS
        limit = cfg.brow.skin_limit
        rest_y = self._rest_y_brows
        y[brows] = rest_y + limit * np.tanh((y[brows] - rest_y) * (1.0 / limit))
        # Brow skin drags the upper lid: lowered brows push it down, raised brows lift it a little.
        drop = np.stack([y[s].mean(axis=0) for s in self._brow_side]) - self._brow_rest_mean
        b = cfg.brow
        bend = soft_relu(drop, b.push_softness) - b.push_softness * _LOG2
        push = b.lid_lift_up * drop + (b.lid_push_down - b.lid_lift_up) * bend
        y[topo.LID_UPPER] += push[self._lid_side] * self._lid_profile[:, None]
        _contact(y, topo.LID_UPPER, topo.LID_LOWER, cfg.eyes.contact_eps, 0.0)
        return x, y

    # ------------------------------------------------------------------ lower face
    def _lower(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x, y planes (61, N) of the lower face from the 7 lower commands."""
        lips = self.config.lips
        resp = self._side_response(c, _LOWER_K)                                  # (7, 2, N)
        gx, gy = self._lower_half.displace(resp)
        # Work on full-height (113, N) planes so topology indices stay canonical; upper rows unused.
        x = np.empty((N_LANDMARKS, c.shape[0]), dtype=_DT)
        y = np.empty((N_LANDMARKS, c.shape[0]), dtype=_DT)
        x[_LOWER_ROWS], y[_LOWER_ROWS] = gx, gy
        jaw = self._jaw(c[:, _LOW["jaw_open"]])
        corner = self._corner_motion(c[:, _LOW["mouth_corner_up"]], c[:, _LOW["mouth_corner_down"]], jaw)
        inner = topo.LIP_INNER_ALL
        x[inner] += self._follow.T @ corner[:, :, 0].T
        y[inner] += self._follow.T @ corner[:, :, 1].T
        # Cheeks bulge outward (and up a little) where the corners lift.
        lift = soft_relu(-corner[:, :, 1], 0.01) - 0.01 * _LOG2               # (N, 2) corner lift
        bulge = lift.T[self._cheek_side] * self._cheek[:, None]
        x[topo.JAW] += bulge
        y[topo.JAW] -= 0.3 * np.abs(bulge)
        compression = _contact(y, topo.LIP_UPPER_INNER, topo.LIP_LOWER_INNER, lips.contact_eps,
                               lips.seal_press).mean(axis=0) - self._press_rest
        self._outer_lips(x, y, c, jaw, compression)
        return x[_LOWER_ROWS], y[_LOWER_ROWS]

    def _corner_motion(self, c_up: np.ndarray, c_down: np.ndarray, jaw: np.ndarray) -> np.ndarray:
        """Displacement (N, 2 sides, 2) of each mouth corner from the five-bar linkages."""
        fb = self.config.five_bar
        travel = float(np.radians(fb.travel_deg))
        theta_a = self._theta0[:, 0] - travel * (c_down[:, None] - self._corner_calm[1])
        theta_c = self._theta0[:, 1] + travel * (c_up[:, None] - self._corner_calm[0])
        local = five_bar(theta_a, theta_c, fb.base_half_gap, fb.crank, fb.coupler) - self._p0
        local = local * self._corner_scale[:, None]
        # Skin: the lip ring resists sideways stretch more than the cheek resists lift, so the
        # lateral travel of co-activation saturates sooner (the antagonists do not add up).
        local = soft_limit(local, self._corner_limits)
        # Local frame is (lateral, up); face frame is (x to the robot's left, y down).
        face = np.stack([local[..., 0] * self._lateral_sign, -local[..., 1]], axis=-1)
        # An open jaw stretches the cheek skin vertically, which resists corner lift and drop.
        face[..., 1] *= 1.0 - self.config.jaw.corner_lift_loss * jaw[:, None]
        return face

    def _outer_lips(self, x: np.ndarray, y: np.ndarray, c: np.ndarray, jaw: np.ndarray,
                    compression: np.ndarray) -> None:
        lips = self.config.lips
        cx, cy = x[topo.LIP_INNER_CORNERS], y[topo.LIP_INNER_CORNERS]
        stretch = (cx[1] - cx[0]) / self._width0 - 1.0
        common = -lips.stretch_thin * stretch - lips.press_thin * compression
        # Curl everts/rolls the lip, raise/drop pull its inner edge away; per side, blended at the midline.
        thick_r = self._side_response(c[:, self._thick_k - 4], self._thick_k)
        thick_r *= self._thick_coef[:, None, None]
        upper = (topo.LIP_UPPER_OUTER, self._w_up, self._thick_up, topo.UPPER_INNER_CURVE,
                 thick_r[0] + thick_r[1], lips.jaw_thin_upper)
        lower = (topo.LIP_LOWER_OUTER, self._w_lo, self._thick_lo, topo.LOWER_INNER_CURVE,
                 thick_r[2] + thick_r[3], lips.jaw_thin_lower)
        for rows, weights, thick, curve, side_log, jaw_thin in (upper, lower):
            factor = np.exp(self._side_w_t[rows] @ side_log + (common - jaw_thin * jaw))
            x[rows] = weights @ x[curve] + factor * thick[:, 0, None]
            y[rows] = weights @ y[curve] + factor * thick[:, 1, None]
        x[topo.LIP_OUTER_CORNERS] = cx + self._corner_offset[:, 0, None]
        y[topo.LIP_OUTER_CORNERS] = cy + self._corner_offset[:, 1, None]

    # ------------------------------------------------------------------ motion range
    def _estimate_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(_RANGE_SEED)
        calm = self.calm_commands()
        n = max(self.config.motion_samples, 1)
        samples = []
        for ks, levels in ((_UPPER_K, 5), (_LOWER_K, 3)):
            grid = np.stack(np.meshgrid(*[np.linspace(0, 1, levels)] * len(ks), indexing="ij"), -1)
            half = np.concatenate([grid.reshape(-1, len(ks)), rng.random((n, len(ks)))])
            full = np.repeat(calm[None], len(half), axis=0)
            full[:, ks] = half
            samples.append(full)
        rest = self.rest_face()
        lo = np.zeros((N_LANDMARKS, 2), np.float32)
        hi = np.zeros((N_LANDMARKS, 2), np.float32)
        for batch in np.array_split(np.concatenate(samples), 8):
            disp = self.forward(batch, noise=False) - rest
            lo = np.minimum(lo, disp.min(axis=0))
            hi = np.maximum(hi, disp.max(axis=0))
        LOG.debug("twin motion range estimated from %d samples", sum(len(s) for s in samples))
        return lo, hi


def _where(row: int, arr: np.ndarray) -> str:
    return f" (sample {row})" if arr.shape[0] > 1 else ""


def _contact(y: np.ndarray, upper: np.ndarray, lower: np.ndarray, eps: float, press: float) -> np.ndarray:
    """Two facing contours (lids, lips) that touch but never cross; returns the compression (P, N).

    ``y`` is the (113, N) plane of y coordinates, changed in place; pairs share x. ``press``
    pre-loads the contact (closed lips pressed together at rest): the gap opens only once the
    contours are pulled apart by more than ``press``. The pair's midline stays where the two
    targets put it, so a lid pushing past the other carries it along.
    """
    top = y[upper] + 0.5 * press
    bottom = y[lower] - 0.5 * press
    gap_target = bottom - top
    gap = soft_relu(gap_target, eps)
    mid = 0.5 * (top + bottom)
    y[upper] = mid - 0.5 * gap
    y[lower] = mid + 0.5 * gap
    return soft_relu(-gap_target, eps)


class _Half:
    """The linear part of one face half: rest + per-side responses through the command fields.

    Folding the side blend into the fields turns it into one small matrix product per axis,
    (I, 2K) @ (2K, N), which is what keeps 10,000 faces well under 0.1 s.
    """

    def __init__(self, rest: np.ndarray, rows: np.ndarray, ks: np.ndarray, fields: np.ndarray,
                 side_w: np.ndarray) -> None:
        # G[(k, s), i, d] = side_w[s, i] * field[k, i, d]
        g = side_w[None, :, rows, None] * fields[ks][:, None, rows, :]          # (K, 2, I, 2)
        g = g.reshape(len(ks) * 2, len(rows), 2)
        self._gx = np.ascontiguousarray(g[..., 0].T, dtype=_DT)               # (I, 2K)
        self._gy = np.ascontiguousarray(g[..., 1].T, dtype=_DT)
        self._rest_x = rest[rows, 0, None].astype(_DT)
        self._rest_y = rest[rows, 1, None].astype(_DT)

    def displace(self, resp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x, y planes (len(rows), N) for per-side responses ``resp`` (K, 2, N)."""
        flat = resp.reshape(-1, resp.shape[-1])
        x = self._gx @ flat
        x += self._rest_x
        y = self._gy @ flat
        y += self._rest_y
        return x, y


def _interp_matrix(x_from: np.ndarray, x_to: np.ndarray) -> np.ndarray:
    """Matrix W with (W @ f)[i] = linear interpolation of samples f(x_from) at x_to[i]."""
    order = np.argsort(x_from)
    xs = x_from[order]
    w = np.zeros((len(x_to), len(x_from)))
    for i, x in enumerate(x_to):
        j = int(np.clip(np.searchsorted(xs, x) - 1, 0, len(xs) - 2))
        t = float(np.clip((x - xs[j]) / (xs[j + 1] - xs[j]), 0.0, 1.0))
        w[i, order[j]] += 1.0 - t
        w[i, order[j + 1]] += t
    return w
