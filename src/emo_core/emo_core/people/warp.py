"""Dense piecewise-affine image warp driven by mesh-point displacements, one remap per frame.

The source image is tiled once by triangles over the mesh points: MediaPipe's own face
tessellation (so triangles follow the lip and eyelid contours), its holes (mouth opening, eyes)
filled, and the region between the face oval and a fixed ring of points around the face, out to
the image corners; under it, a Delaunay tiling of the same points catches the few pixels the face
topology leaves uncovered. Ring and corner points never move, so the background stays put.

Per frame, only the triangles that move are redrawn: each one's affine map from its displaced
(destination) position back to its source position is computed in one vectorized step, their
destination footprints are rasterized into a triangle-id image, and every covered pixel gets its
source coordinate with one gather; pixels outside moved triangles map to themselves. The result
is the *exact* inverse of the piecewise-affine forward warp -- which matters: a fixed-point
inversion of a dense displacement field breaks down exactly where faces need it most (a mouth
closing or opening compresses or stretches the lips by an order of magnitude). The image is then
moved by ONE ``cv2.remap``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ..errors import InputError
from ..schema import N_MEDIAPIPE


@dataclass(frozen=True)
class WarpConfig:
    ring_scale: float = 1.45   # fixed ring of points at this multiple of the face's half-extent
    ring_points: int = 32
    moved_px: float = 0.05     # triangles whose corners all move less than this stay put


@lru_cache(maxsize=1)
def tessellation_triangles() -> np.ndarray:
    """Triangles (K, 3) of MediaPipe's face mesh tessellation (recovered from its edge list)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    neighbours: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    triangles = {tuple(sorted((a, b, c))) for a, b in FACEMESH_TESSELATION
                 for c in neighbours[a] & neighbours[b]}
    return np.array(sorted(triangles), dtype=np.int64)


@lru_cache(maxsize=1)
def face_oval() -> tuple[int, ...]:
    """The face-oval contour of the mesh as an ordered loop of vertex indices."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    nxt: dict[int, list[int]] = {}
    for a, b in FACEMESH_FACE_OVAL:
        nxt.setdefault(a, []).append(b)
        nxt.setdefault(b, []).append(a)
    loop = [10]
    prev = None
    while True:
        here = loop[-1]
        step = next(v for v in nxt[here] if v != prev)
        if step == loop[0]:
            return tuple(loop)
        prev = here
        loop.append(step)


def _inside_polygon(polygon: np.ndarray, pts: np.ndarray) -> np.ndarray:
    path = polygon.astype(np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(path, (float(x), float(y)), False) > 0 for x, y in pts])


def _fill_holes(points: np.ndarray, loops: list[list[int]]) -> list[np.ndarray]:
    """Triangles covering the inside of each closed loop of vertices (mouth opening, eyes)."""
    out = []
    for loop in loops:
        ids = np.array(loop)
        tri = Delaunay(points[ids]).simplices
        centres = points[ids][tri].mean(axis=1)
        out.append(ids[tri[_inside_polygon(points[ids], centres)]])
    return out


def _drop_spurious(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Remove 3-cycles of the edge graph that are not faces (another vertex lies inside them)."""
    keep = np.ones(len(triangles), bool)
    for k, tri in enumerate(triangles):
        a, b, c = points[tri]
        lo, hi = np.minimum(np.minimum(a, b), c), np.maximum(np.maximum(a, b), c)
        cand = np.flatnonzero(np.all((points > lo) & (points < hi), axis=1))
        cand = cand[~np.isin(cand, tri)]
        if cand.size and _inside_polygon(np.stack([a, b, c]), points[cand]).any():
            keep[k] = False
    return triangles[keep]


def face_triangulation(points: np.ndarray, ring: np.ndarray, corners: np.ndarray,
                       holes: list[list[int]]) -> np.ndarray:
    """Triangles over [mesh points, ring, corners] tiling the image around and over the face."""
    n = len(points)
    face = _drop_spurious(points, tessellation_triangles())
    filled = _fill_holes(points, holes)
    oval = np.array(face_oval())
    outer_nodes = np.concatenate([points[oval], ring, corners])
    outer_ids = np.concatenate([oval, n + np.arange(len(ring) + len(corners))])
    tri = Delaunay(outer_nodes).simplices
    outside = ~_inside_polygon(points[oval], outer_nodes[tri].mean(axis=1))
    outer = outer_ids[tri[outside]]
    return np.concatenate([face, *filled, outer]).astype(np.int64)


class MeshWarp:
    """Warp operator of one source image with its 468 mesh points (pixels)."""

    def __init__(self, points_px: np.ndarray, height: int, width: int,
                 config: WarpConfig | None = None, holes: list[list[int]] | None = None) -> None:
        self.config = config or WarpConfig()
        pts = np.asarray(points_px, dtype=np.float64)
        if pts.shape != (N_MEDIAPIPE, 2) or not np.all(np.isfinite(pts)):
            raise InputError(f"mesh points must be a finite ({N_MEDIAPIPE}, 2) array, got {pts.shape}")
        self.height, self.width = int(height), int(width)
        self.n_points = len(pts)
        ring = self._ring(pts)
        corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], float)
        self.nodes = np.concatenate([pts, ring, corners])
        face = face_triangulation(pts, ring, corners, holes if holes is not None else default_holes())
        # Drawn first, under the face triangles: the Delaunay triangles over the few gaps the face
        # topology leaves (beside the nostrils, along the oval), so every pixel gets a map.
        under = Delaunay(self.nodes).simplices.astype(np.int64)
        self.triangles = np.concatenate([under[self._gap_cover(under, face)], face])
        ys, xs = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
        self._grid = np.stack([xs, ys], axis=2)
        self._map = self._grid.copy()
        self._dirty: tuple[int, int, int, int] | None = None

    def _gap_cover(self, under: np.ndarray, face: np.ndarray) -> np.ndarray:
        """Which ``under`` triangles overlap pixels (dilated by a few px) the face tiling misses."""
        covered = np.zeros((self.height, self.width), np.uint8)
        for tri in face:
            cv2.fillConvexPoly(covered, np.round(self.nodes[tri] * 4).astype(np.int32), (1,), cv2.LINE_8, 2)
        # dilate keeps uint8; asarray (no copy) only restores the dtype cv2's stubs lose.
        gaps = np.asarray(cv2.dilate(1 - covered, np.ones((7, 7), np.uint8)), np.uint8)
        keep = np.zeros(len(under), bool)
        for k, tri in enumerate(under):
            mask = np.zeros_like(covered)
            pts = np.round(self.nodes[tri]).astype(np.int32)
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0) + 1
            cv2.fillConvexPoly(mask[y0:y1, x0:x1], pts - (x0, y0), (1,))
            keep[k] = bool(np.any(gaps[y0:y1, x0:x1] & mask[y0:y1, x0:x1]))
        return keep

    def _ring(self, pts: np.ndarray) -> np.ndarray:
        centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
        radius = (pts.max(axis=0) - pts.min(axis=0)) / 2 * self.config.ring_scale
        angle = np.linspace(0, 2 * np.pi, self.config.ring_points, endpoint=False)
        ring = centre + radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return np.clip(ring, 1, [self.width - 2, self.height - 2])

    def backward_map(self, displacement_px: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32: for each output pixel, the source pixel to sample.

        The array is reused by the next call (copy it to keep it).
        """
        d = np.asarray(displacement_px, dtype=np.float64)
        if d.shape != (self.n_points, 2) or not np.all(np.isfinite(d)):
            raise InputError(f"expected finite ({self.n_points}, 2) displacements, got {d.shape}")
        shift = np.zeros_like(self.nodes)
        shift[: self.n_points] = d
        moved = np.abs(shift[self.triangles]).max(axis=(1, 2)) > self.config.moved_px
        mapping = self._map
        if self._dirty is not None:  # back to identity where the previous frame wrote
            x0, y0, x1, y1 = self._dirty
            mapping[y0:y1, x0:x1] = self._grid[y0:y1, x0:x1]
            self._dirty = None
        if not moved.any():
            return mapping
        tri = self.triangles[moved]
        src = self.nodes[tri]               # (M, 3, 2)
        dst = src + shift[tri]
        affine, ok = _affine_dst_to_src(dst, src)
        tri, dst, affine = tri[ok], dst[ok], affine[ok]
        x0, y0 = np.floor(dst.reshape(-1, 2).min(axis=0)).astype(int)
        x1, y1 = np.ceil(dst.reshape(-1, 2).max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(self.width, x1), min(self.height, y1)
        self._dirty = (x0, y0, x1, y1)
        ids = np.full((y1 - y0, x1 - x0), -1, np.int32)
        corners = np.round((dst - (x0, y0)) * 4).astype(np.int32)  # 2 bits of sub-pixel precision
        for k in range(len(tri)):
            cv2.fillConvexPoly(ids, corners[k], (k,), lineType=cv2.LINE_8, shift=2)
        rows, cols = np.nonzero(ids >= 0)
        which = ids[rows, cols]
        px = (cols + x0).astype(np.float32)
        py = (rows + y0).astype(np.float32)
        coef = affine.reshape(-1, 6)
        for axis in (0, 1):
            c = coef[:, 3 * axis: 3 * axis + 3]
            mapping[rows + y0, cols + x0, axis] = c[which, 0] * px + c[which, 1] * py + c[which, 2]
        return mapping

    def apply(self, image: np.ndarray, displacement_px: np.ndarray) -> np.ndarray:
        """The image warped so that each mesh point moves by its displacement."""
        mapping = self.backward_map(displacement_px)
        return cv2.remap(image, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)


def _affine_dst_to_src(dst: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-triangle 2x3 affine maps taking destination corners to source corners, in closed form;
    and which are non-degenerate (a collapsed destination triangle covers no pixel: skipped)."""
    ed = np.stack([dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0]], axis=2)   # (M, 2, 2) columns
    es = np.stack([src[:, 1] - src[:, 0], src[:, 2] - src[:, 0]], axis=2)
    det = ed[:, 0, 0] * ed[:, 1, 1] - ed[:, 0, 1] * ed[:, 1, 0]
    ok = np.abs(det) > 1e-6
    safe = np.where(ok, det, 1.0)
    inv = np.stack([np.stack([ed[:, 1, 1], -ed[:, 0, 1]], axis=1),
                    np.stack([-ed[:, 1, 0], ed[:, 0, 0]], axis=1)], axis=1) / safe[:, None, None]
    linear = es @ inv
    offset = src[:, 0] - np.einsum("mij,mj->mi", linear, dst[:, 0])
    return np.concatenate([linear, offset[:, :, None]], axis=2).astype(np.float32), ok


def default_holes() -> list[list[int]]:
    """The mesh's holes: mouth opening and both eyes (closed vertex loops)."""
    from .au import EYES, LOWER_INNER, UPPER_INNER

    mouth = list(UPPER_INNER) + list(LOWER_INNER[-2:0:-1])
    eyes = [list(e["upper"]) + list(e["lower"][-2:0:-1]) for e in EYES.values()]
    return [mouth, *eyes]
