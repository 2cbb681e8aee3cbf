"""Synthetic people vs real ones: the figures that calibrate the generator (``emo sim calibration``).

Real input: landmark tracks, one ``NAME.npz`` per recording as ``emo eval video SET --tracks DIR``
writes them (``pipeline.video_eval.track_arrays``: ``metric`` (T, 113, 3) metric landmarks with NaN where no face was found, ``ts`` (T,)
seconds, ``det`` (T,) bool, ``spans`` a JSON list of ``[start_s, end_s, kind, label]`` annotated
episodes, ``truth`` (K, 5) ``[start, end, onset, half, apex]`` seconds of the expression episodes).
Synthetic input: a small in-memory set from :class:`~.generator.PeopleGenerator`.

Four families of figures, each computed the same way on both sides:

* **identity**: face proportions of the rest face relative to the inter-eye distance (face width,
  brow-to-chin, mouth width, eye width, brow-to-eye, eye-to-mouth, mouth-to-chin): mean and sd over
  people (real: one rest face per person);
* **motion**: during expressions, each region's share of the total landmark displacement
  (rest -> apex), and each region's mean point displacement (metric units), plus the chin's;
* **progress**: on each expression episode the offline peak activation
  (:func:`~emo_core.anticipation.peak.peak_activation`) and how far the smoothed distance curve has
  risen there (smoothed[peak] / smoothed[target]);
* **wander**: on still faces (real: ``rest`` episodes; synthetic: ``neutral`` videos), the RMS
  distance of the non-eye landmarks to the calibrated rest (mean of the first 5 frames) and the
  frame-to-frame jitter (RMS of frame differences / sqrt 2).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..schema import REGION_OF, REGIONS, canonical_position

MOTION_REGIONS = ("lips", "jaw", "brows", "eyes")
_GROUP = {"lips": "lips", "jaw": "jaw", "left_brow": "brows", "right_brow": "brows",
          "left_eye": "eyes", "right_eye": "eyes"}
_GROUP_OF = np.array([_GROUP[r] for r in REGION_OF])
_EYES = np.concatenate([REGIONS["left_eye"], REGIONS["right_eye"]])
_NON_EYE = np.setdiff1d(np.arange(113), _EYES)
_P = {k: canonical_position(v) for k, v in {
    "face_r": 234, "face_l": 454, "chin": 152, "mouth_r": 61, "mouth_l": 291, "lip_top": 13,
    "lip_bot": 14, "reye_out": 33, "reye_in": 133, "leye_in": 362, "leye_out": 263}.items()}
_ANCHOR_REST_FRAMES = 5


# ------------------------------------------------------------------ per-face / per-episode figures
def proportions(face: np.ndarray) -> dict[str, float]:
    """Face proportions of one (113, >=2) rest face, relative to the inter-eye (centre) distance."""
    f = np.asarray(face, np.float64)[:, :2]
    reye, leye = f[REGIONS["right_eye"]].mean(0), f[REGIONS["left_eye"]].mean(0)
    eye_d = float(np.linalg.norm(leye - reye))
    brows = np.concatenate([REGIONS["left_brow"], REGIONS["right_brow"]])
    eye_y = 0.5 * (reye[1] + leye[1])
    mouth_y = 0.5 * (f[_P["lip_top"], 1] + f[_P["lip_bot"], 1])
    eye_w = 0.5 * (abs(f[_P["reye_out"], 0] - f[_P["reye_in"], 0]) + abs(f[_P["leye_out"], 0] - f[_P["leye_in"], 0]))
    return {
        "eye_distance_units": eye_d,
        "face_width": abs(f[_P["face_l"], 0] - f[_P["face_r"], 0]) / eye_d,
        "brow_to_chin": (f[_P["chin"], 1] - f[brows, 1].mean()) / eye_d,
        "mouth_width": abs(f[_P["mouth_l"], 0] - f[_P["mouth_r"], 0]) / eye_d,
        "eye_width": eye_w / eye_d,
        "brow_to_eye": (eye_y - f[brows, 1].mean()) / eye_d,
        "eye_to_mouth": (mouth_y - eye_y) / eye_d,
        "mouth_to_chin": (f[_P["chin"], 1] - mouth_y) / eye_d,
    }


def motion(rest: np.ndarray, apex: np.ndarray) -> dict[str, float]:
    """Per-region displacement rest -> apex: shares of the total and mean point displacement."""
    d = np.linalg.norm(np.asarray(apex, np.float64)[:, :2] - np.asarray(rest, np.float64)[:, :2], axis=1)
    total = float(d.sum()) + 1e-12
    out: dict[str, float] = {}
    for g in MOTION_REGIONS:
        sel = _GROUP_OF == g
        out[f"share_{g}"] = float(d[sel].sum()) / total
        out[f"disp_{g}"] = float(d[sel].mean())
    out["disp_chin"] = float(d[_P["chin"]])
    out["disp_total"] = float(d.mean())
    return out


def progress_at_peak(xy: np.ndarray) -> float | None:
    """smoothed[peak] / smoothed[target] of the offline peak activation on an episode (T, 113, 2)."""
    from ..anticipation.peak import PeakConfig, peak_activation

    xy = np.asarray(xy, np.float64)[..., :2]
    if len(xy) < PeakConfig().savgol_window or not np.all(np.isfinite(xy)):
        return None
    r = peak_activation(xy)
    top = float(r.smoothed[r.target_frame])
    if top <= 1e-9 or r.target_frame <= PeakConfig().rest_frames:
        return None
    base = float(r.smoothed[: PeakConfig().rest_frames].mean())
    return float(np.clip((r.smoothed[r.peak_frame] - base) / max(top - base, 1e-9), 0.0, 1.0))


def stillness(xy: np.ndarray) -> tuple[float, float]:
    """(wander, jitter) of a still face (T, 113, 2): RMS to the first-5-frame rest, RMS diff / sqrt 2."""
    xy = np.asarray(xy, np.float64)[:, _NON_EYE, :2]
    rest = xy[:_ANCHOR_REST_FRAMES].mean(0)
    wander = float(np.sqrt(np.mean((xy - rest) ** 2)))
    jitter = float(np.sqrt(np.mean(np.diff(xy, axis=0) ** 2) / 2))
    return wander, jitter


# ------------------------------------------------------------------ real tracks
@dataclass
class RealTrack:
    name: str
    person: str
    xy: np.ndarray            # (T, 113, 2), NaN frames filled by the previous frame
    ts: np.ndarray
    detected: np.ndarray
    spans: list               # [start, end, kind, label]
    truth: np.ndarray         # (K, 5)


def _fill(xy: np.ndarray, det: np.ndarray) -> np.ndarray:
    out = xy.copy()
    ok = det & np.all(np.isfinite(xy.reshape(len(xy), -1)), axis=1)
    if not ok.any():
        return out
    first = int(np.argmax(ok))
    out[:first] = out[first]
    for i in range(first + 1, len(out)):
        if not ok[i]:
            out[i] = out[i - 1]
    return out


def _persons(manifest: Path) -> dict[str, str]:
    if not manifest.is_file():
        return {}
    try:
        rec = json.loads(manifest.read_bytes().decode("utf-8")).get("recordings", [])
        return {Path(r["name"]).name: str(r.get("person", r["name"])) for r in rec if "name" in r}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # A manifest that is there but malformed (binary, a list, records without names) would
        # silently make every recording its own person: refuse it instead.
        raise InputError(f"{manifest}: not a real-set manifest ({type(exc).__name__}: {exc})") from None


def load_real(real_dir: str | Path, manifest: str | Path | None = None) -> list[RealTrack]:
    """The cached landmark tracks ``DIR/*.npz`` (see the module docstring)."""
    real_dir = Path(real_dir)
    files = sorted(real_dir.glob("*.npz"))
    if not files:
        raise InputError(f"no landmark tracks (*.npz) in {real_dir}")
    persons = _persons(Path(manifest) if manifest else real_dir / "manifest.json")
    tracks = []
    for f in files:
        try:
            z = np.load(f, allow_pickle=False)
        except Exception as exc:  # zip and npy-header errors of a truncated or damaged file
            raise InputError(f"{f}: not a readable landmark track ({type(exc).__name__}: {exc})") from None
        with z:
            if "metric" not in z.files or "spans" not in z.files:
                continue
            name = f.name[:-4]
            det = np.asarray(z["det"], bool)
            xy = _fill(np.asarray(z["metric"], np.float64)[..., :2], det)
            tracks.append(RealTrack(name=name, person=persons.get(name, name), xy=xy,
                                    ts=np.asarray(z["ts"], np.float64), detected=det,
                                    spans=json.loads(str(z["spans"])),
                                    truth=np.asarray(z["truth"], np.float64).reshape(-1, 5)))
    if not tracks:
        raise InputError(f"no usable landmark tracks in {real_dir}")
    return tracks


def _frames(ts: np.ndarray, a: float, b: float) -> np.ndarray:
    return np.flatnonzero((ts >= a) & (ts <= b))


def real_figures(tracks: list[RealTrack]) -> dict:
    faces: dict[str, list[np.ndarray]] = {}
    mot, prog, still = [], [], []
    labels: dict[str, int] = {}          # expression label -> number of videos
    for tr in tracks:
        rest_idx = np.concatenate([_frames(tr.ts, s, e) for s, e, k, _ in tr.spans if k == "rest"] or [np.zeros(0, int)])
        rest_idx = rest_idx[tr.detected[rest_idx]] if rest_idx.size else rest_idx
        if rest_idx.size < 5:
            rest_idx = np.flatnonzero(tr.detected)[:8]
        if rest_idx.size:
            faces.setdefault(tr.person, []).append(np.median(tr.xy[rest_idx], axis=0))
        for s, e, k, label in tr.spans:
            if k == "expression":
                labels[str(label)] = labels.get(str(label), 0) + 1
            if k == "rest":
                idx = _frames(tr.ts, s, e)
                if idx.size >= 20 and tr.detected[idx].mean() > 0.9:
                    still.append(stillness(tr.xy[idx]))
        for s, e, onset, half, apex in tr.truth:
            idx = _frames(tr.ts, s, e)
            if idx.size < 15:
                continue
            seg = tr.xy[idx]
            a = int(np.argmin(np.abs(tr.ts[idx] - apex)))
            mot.append(motion(seg[:_ANCHOR_REST_FRAMES].mean(0), np.median(seg[max(0, a - 2):a + 3], axis=0)))
            p = progress_at_peak(seg)
            if p is not None:
                prog.append(p)
    per_person = [proportions(np.mean(v, axis=0)) for v in faces.values()]
    return _summarize(per_person, mot, prog, still, n_people=len(faces), labels=labels)


# ------------------------------------------------------------------ synthetic
def synthetic_figures(config=None, subjects: int = 24, videos: int = 10, seed: int = 123) -> dict:
    """The same figures on a small synthetic set made by ``PeopleGenerator(config)``."""
    from .generator import GeneratorConfig, PeopleGenerator

    config = config or GeneratorConfig()
    gen = PeopleGenerator(config)
    ids, mot, prog, still = [], [], [], []
    labels: dict[str, int] = {}          # expression label -> number of videos
    for i in range(subjects):
        srng = np.random.default_rng(np.random.SeedSequence([seed, i, 0]))
        ident = gen.identity(f"c{i:03d}", srng)
        ids.append(proportions(ident.neutral113))
        names = list(gen.labels_for_subject(videos, srng))
        names[0] = "neutral"   # one still face per person for the wander figures
        for j, label in enumerate(names):
            rng = np.random.default_rng(np.random.SeedSequence([seed, i, j + 1]))
            seq = gen.sequence(ident, label, rng)
            xy = np.asarray(seq.landmarks, np.float64)[..., :2]
            if label == "neutral":
                still.append(stillness(xy))
            elif seq.apex_frame >= 0:
                labels[label] = labels.get(label, 0) + 1
                a = int(seq.apex_frame)
                mot.append(motion(xy[:_ANCHOR_REST_FRAMES].mean(0), np.median(xy[max(0, a - 2):a + 3], axis=0)))
                p = progress_at_peak(xy)
                if p is not None:
                    prog.append(p)
    return _summarize(ids, mot, prog, still, n_people=subjects, labels=labels)


def _stats(values) -> dict[str, float]:
    v = np.asarray(list(values), np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "median": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "median": float(np.median(v)), "n": int(v.size)}


def _summarize(faces, mot, prog, still, n_people: int, labels: dict) -> dict:
    identity = {k: _stats(f[k] for f in faces) for k in (faces[0] if faces else {})}
    motion_ = {k: _stats(m[k] for m in mot) for k in (mot[0] if mot else {})}
    still_a = np.asarray(still, np.float64).reshape(-1, 2)
    return {"people": n_people, "identity": identity, "motion": motion_,
            "progress": _stats(prog),
            "progress_below_half": float(np.mean(np.asarray(prog) < 0.5)) if prog else float("nan"),
            "wander": _stats(still_a[:, 0]), "jitter": _stats(still_a[:, 1]),
            "expression_labels": dict(sorted(labels.items()))}


def compare(real_dir: str | Path, config=None, subjects: int = 24, videos: int = 10, seed: int = 123,
            manifest: str | Path | None = None) -> dict:
    """Side-by-side figures: ``{"real": ..., "synthetic": ..., "ratio": real / synthetic means}``.

    ``manifest``: the real set's manifest.json (recording -> person; default DIR/manifest.json;
    without one each recording counts as its own person).
    """
    real = real_figures(load_real(real_dir, manifest))
    syn = synthetic_figures(config, subjects, videos, seed)
    ratio = {}
    for fam in ("identity", "motion"):
        for k, v in real[fam].items():
            s = syn[fam].get(k)
            if s and s["mean"]:
                ratio[f"{fam}.{k}.mean"] = v["mean"] / s["mean"]
                if fam == "identity" and s["sd"]:
                    ratio[f"{fam}.{k}.sd"] = v["sd"] / s["sd"]
    for k in ("progress", "wander", "jitter"):
        if syn[k]["mean"]:
            ratio[k] = real[k]["mean"] / syn[k]["mean"]
    return {"real": real, "synthetic": syn, "ratio": ratio}


def table(result: dict) -> str:
    """A Markdown table of :func:`compare`'s result."""
    real, syn = result["real"], result["synthetic"]
    rows = ["| figure | real | synthetic | real / synthetic |", "|---|---|---|---|"]

    def fmt(s):
        return f"{s['mean']:.3f} ± {s['sd']:.3f}" if s["n"] else "–"

    for fam in ("identity", "motion"):
        for k, v in real[fam].items():
            s = syn[fam].get(k, {"n": 0})
            r = v["mean"] / s["mean"] if s.get("n") and s["mean"] else float("nan")
            rows.append(f"| {fam}: {k} | {fmt(v)} | {fmt(s)} | {r:.2f} |")
    for k in ("progress", "wander", "jitter"):
        r = real[k]["mean"] / syn[k]["mean"] if syn[k]["n"] and syn[k]["mean"] else float("nan")
        rows.append(f"| {k} | {fmt(real[k])} (n={real[k]['n']}) | {fmt(syn[k])} (n={syn[k]['n']}) | {r:.2f} |")
    rows.append(f"| progress < 0.5 at peak | {real['progress_below_half']:.2f} | {syn['progress_below_half']:.2f} | |")
    return "\n".join(rows)


__all__ = ["MOTION_REGIONS", "RealTrack", "compare", "load_real", "motion", "progress_at_peak",
           "proportions", "real_figures", "stillness", "synthetic_figures", "table"]
