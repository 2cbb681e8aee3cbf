"""Small, vectorized pieces of the robot face's mechanics (pure functions, no state).

Each is a smooth function so that the forward model stays differentiable everywhere: the inverse
self-model learns from it, and a kink would be an artefact no real silicone face has.
"""
from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def servo_response(c: np.ndarray, center: np.ndarray | float, gain: np.ndarray | float) -> np.ndarray:
    """Normalized actuator + skin response in [0, 1] over the command range [0, 1].

    A logistic curve rescaled so that r(0) = 0 and r(1) = 1: the skin is slack near mid travel and
    stiffens toward both end stops, so equal command steps move the face less near the ends (the
    saturation the real face shows). ``center`` may differ per side (servo calibration offsets);
    ``gain`` may be an array that broadcasts against ``c`` (one gain per servo).
    """
    lo = sigmoid(-gain * center)
    hi = sigmoid(gain * (1.0 - center))
    return (sigmoid(gain * (c - center)) - lo) / (hi - lo)


def jaw_response(c: np.ndarray, phi0_deg: float, travel_deg: float) -> np.ndarray:
    """Vertical chin travel in [0, 1] for jaw command ``c``.

    The jaw is a rigid link rotating about the temporomandibular hinge; seen from the front, the chin
    drops by R (sin(phi0 + theta) - sin(phi0)), with theta proportional to the servo position and
    phi0 the chin's angle below the hinge's horizontal at rest. The drop per degree shrinks as the
    jaw opens, which is the jaw's saturation.
    """
    phi0 = np.radians(phi0_deg)
    travel = np.radians(travel_deg)
    return (np.sin(phi0 + travel * c) - np.sin(phi0)) / (np.sin(phi0 + travel) - np.sin(phi0))


def soft_relu(x: np.ndarray, eps: float) -> np.ndarray:
    """Smooth max(x, 0) that is >= 0 everywhere (eps * softplus(x / eps)); used for contact."""
    z = x * (1.0 / eps)
    # max(z, 0) + log1p(exp(-|z|)): overflow-safe and, unlike np.logaddexp, SIMD-fast in numpy.
    out = np.maximum(z, 0.0)
    out += np.log1p(np.exp(-np.abs(z)))
    out *= eps
    return out


def soft_limit(v: np.ndarray, limit: np.ndarray | float) -> np.ndarray:
    """Saturate displacements per axis: v -> limit * tanh(v / limit) (``limit`` broadcasts on v).

    The skin around a magnet can only stretch so far, and not equally far in every direction;
    small motions pass unchanged.
    """
    limit = np.asarray(limit, dtype=v.dtype)
    return limit * np.tanh(v / limit)


def five_bar(theta_a: np.ndarray, theta_c: np.ndarray, base_half_gap: float, crank: float,
             coupler: float) -> np.ndarray:
    """Forward kinematics of a symmetric planar five-bar linkage; returns the end point (..., 2).

    Local frame: x lateral (away from the face midline), y up. Crank A turns about (0, +gap) and
    crank C about (0, -gap); two equal couplers join their tips at the end point, which carries the
    mouth-corner magnet, on the lateral side. Because the end point is the apex of an isosceles
    triangle over the crank tips, moving one tip moves the corner along a curve, and moving both
    toward each other pushes the corner outward: the antagonist behaviour of Emo's corner modules.
    """
    tip_a = np.stack([crank * np.cos(theta_a), base_half_gap + crank * np.sin(theta_a)], axis=-1)
    tip_c = np.stack([crank * np.cos(theta_c), -base_half_gap + crank * np.sin(theta_c)], axis=-1)
    mid = 0.5 * (tip_a + tip_c)
    chord = tip_c - tip_a
    half = 0.5 * np.sqrt(np.sum(chord * chord, axis=-1))
    unit = chord / (2.0 * half[..., None])
    lateral = np.stack([-unit[..., 1], unit[..., 0]], axis=-1)  # chord rotated +90 deg
    # The geometry is chosen so that the couplers always reach (half < coupler); guard anyway.
    reach = np.sqrt(np.maximum(coupler * coupler - half * half, 0.0))
    return mid + lateral * reach[..., None]


def standard_normal_f32(rng: np.random.Generator, out: np.ndarray, scratch: np.ndarray) -> None:
    """Fill float32 ``out`` (even size) with N(0, 1) samples from ``rng`` by the Box-Muller transform.

    2-3x faster than numpy's float32 ziggurat here, which matters when every one of 10,000 faces
    gets 226 noise samples. ``scratch`` is a float32 array of the same size (reused by the caller).
    Tails are cut at ~5.6 sigma by float32 uniform resolution, irrelevant for landmark jitter.
    """
    flat = out.reshape(2, -1)
    uniform = scratch.reshape(2, -1)
    rng.random(dtype=np.float32, out=uniform)
    radius, angle = uniform[0], uniform[1]
    np.subtract(np.float32(1.0), radius, out=radius)         # (0, 1]: log is finite
    np.log(radius, out=radius)
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    angle *= np.float32(2.0 * np.pi)
    np.cos(angle, out=flat[0])
    np.sin(angle, out=flat[1])
    flat *= radius
