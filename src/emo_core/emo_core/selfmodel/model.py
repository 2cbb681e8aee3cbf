"""The inverse self-model: robot-face landmarks (113 x 2) -> 11 normalized motor commands.

Two architectures (see docs/inverse.md for measured results):

* ``paper`` -- the Emo paper's network, kept faithful: flattened raw landmarks (226) -> FC 1024 ->
  ReLU -> BatchNorm -> FC 512 -> ReLU -> BatchNorm -> FC 11 -> sigmoid.
* ``split`` -- the improved variant: the upper and lower face are mechanically independent
  (paper, Methods), so two narrower networks of the paper's kind (FC 128 -> ReLU -> BN -> FC 128 ->
  ReLU -> BN -> FC -> sigmoid) map each half to its own commands (52 points -> 4 upper commands,
  61 points -> 7 lower commands). The mouth can no longer depend on the eyes, which the paper's
  joint network has to learn away from recombined data, and it has 8x fewer weights.

Either may standardize its input ((x - mean) / scale, stored in the model, so callers always
pass raw robot-space landmarks); the measured default is the paper's raw input. For inference an exported numpy path folds the standardization and every
BatchNorm into the linear layers and runs a few float32 matmuls (:class:`FastInverse`), which is
what :class:`InverseModel` uses; it matches the torch module to ~1e-6. It is built from the
weights' tensors alone, so inference needs no torch: the torch module (:class:`InverseNet`, for
training and the reference path) lives in ``net.py``, which builds on this module (never the reverse).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.special import expit

from ..errors import SchemaError
from ..schema import LOWER, N_COMMANDS, N_LANDMARKS, UPPER, UPPER_COMMANDS

ARCHITECTURES = ("paper", "split")
N_IN = N_LANDMARKS * 2
N_UPPER_CMD = len(UPPER_COMMANDS)
#: Flattened input columns (x, y interleaved per landmark) of each half.
UPPER_COLS = np.arange(UPPER.start * 2, UPPER.stop * 2)
LOWER_COLS = np.arange(LOWER.start * 2, LOWER.stop * 2)
#: BatchNorm epsilon of the torch module (torch's default), folded into the numpy path.
BN_EPS = 1e-5


@dataclass(frozen=True)
class ArchConfig:
    """Architecture of one inverse model; stored in the model card."""

    name: str = "split"
    #: 128 wide: validation L1 within 1 % of 256 wide at half the weights and inference time.
    hidden: tuple[int, ...] = (128, 128)
    #: "raw": landmarks as they are (the paper; measured best, see docs/inverse.md);
    #: "standardize": (x - mean) / scale from training data.
    input_norm: str = "raw"
    #: BatchNorm after each hidden ReLU (the paper's order). With raw, uncentred inputs it is what
    #: makes training work at all; it folds into the next linear layer for inference.
    batch_norm: bool = True

    def __post_init__(self) -> None:
        if self.name not in ARCHITECTURES:
            raise SchemaError(f"unknown inverse-model architecture {self.name!r}; known: {', '.join(ARCHITECTURES)}")
        if self.input_norm not in ("raw", "standardize"):
            raise SchemaError(f"unknown input_norm {self.input_norm!r}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise SchemaError(f"hidden sizes must be positive, got {self.hidden}")
        if self.name == "paper" and not self.batch_norm:
            raise SchemaError("the paper architecture always has BatchNorm")

    @classmethod
    def paper(cls) -> "ArchConfig":
        return cls(name="paper", hidden=(1024, 512), input_norm="raw")

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, raw: dict) -> "ArchConfig":
        try:
            return cls(name=str(raw["name"]), hidden=tuple(int(h) for h in raw["hidden"]),
                       input_norm=str(raw["input_norm"]), batch_norm=bool(raw["batch_norm"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"model card architecture is malformed: {exc}") from exc


# ------------------------------------------------------------------------------------ numpy export
@dataclass
class _Branch:
    """One exported MLP: (weight (in, out), bias) per layer, ReLU between, sigmoid after the last."""

    cols: np.ndarray
    weights: list[np.ndarray] = field(default_factory=list)
    biases: list[np.ndarray] = field(default_factory=list)


def _layers(prefix: str, arch: ArchConfig) -> list[tuple[str, str]]:
    """(kind, state-dict prefix) of one branch's layers, in the torch module's Sequential order:
    Linear, ReLU[, BatchNorm] per hidden width, then the output Linear (and its sigmoid)."""
    layers, index = [], 0
    for _ in arch.hidden:
        layers.append(("linear", f"{prefix}.{index}"))
        index += 2                                   # the Linear and its ReLU
        if arch.batch_norm:
            layers.append(("bn", f"{prefix}.{index}"))
            index += 1
    layers.append(("linear", f"{prefix}.{index}"))
    return layers


def branch_prefixes(arch: ArchConfig) -> list[tuple[str, np.ndarray, int]]:
    """(state-dict prefix, input columns, output count) of each branch of ``arch``."""
    if arch.name == "paper":
        return [("body", np.arange(N_IN), N_COMMANDS)]
    return [("upper", UPPER_COLS, N_UPPER_CMD), ("lower", LOWER_COLS, N_COMMANDS - N_UPPER_CMD)]


def state_shapes(arch: ArchConfig) -> dict[str, tuple[int, ...]]:
    """The tensors (name -> shape) of an :class:`InverseNet` of ``arch``: what a weights file must
    hold (the tests check it equals the torch module's ``state_dict``)."""
    shapes: dict[str, tuple[int, ...]] = {"input_mean": (N_IN,), "input_scale": (N_IN,)}
    for prefix, cols, n_out in branch_prefixes(arch):
        widths = [len(cols), *arch.hidden, n_out]
        k = 0
        for kind, name in _layers(prefix, arch):
            if kind == "linear":
                shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (widths[k + 1], widths[k]), (widths[k + 1],)
                k += 1
            else:
                for key in ("weight", "bias", "running_mean", "running_var"):
                    shapes[f"{name}.{key}"] = (widths[k],)
                shapes[f"{name}.num_batches_tracked"] = ()
    return shapes


def _export_branch(sd: dict[str, np.ndarray], prefix: str, arch: ArchConfig, cols: np.ndarray,
                   mean: np.ndarray, scale: np.ndarray) -> _Branch:
    """Fold the input standardization and each (ReLU ->) BatchNorm into the linear layers (float64)."""
    branch = _Branch(cols=cols)
    pending_affine: tuple[np.ndarray, np.ndarray] | None = None  # y -> a * y + c from a BatchNorm
    first = True
    for kind, name in _layers(prefix, arch):
        if kind == "linear":
            w = sd[f"{name}.weight"].astype(np.float64)     # (out, in)
            b = sd[f"{name}.bias"].astype(np.float64)
            if first:
                # W ((x - m) / s) + b = (W / s) x + (b - W (m / s))
                b = b - w @ (mean / scale)
                w = w / scale[None, :]
                first = False
            if pending_affine is not None:
                a, c = pending_affine
                b = b + w @ c
                w = w * a[None, :]
                pending_affine = None
            branch.weights.append(w.T)
            branch.biases.append(b)
        else:
            inv = 1.0 / np.sqrt(sd[f"{name}.running_var"].astype(np.float64) + BN_EPS)
            a = sd[f"{name}.weight"].astype(np.float64) * inv
            c = sd[f"{name}.bias"].astype(np.float64) - sd[f"{name}.running_mean"].astype(np.float64) * a
            pending_affine = (a, c)
    return branch


class FastInverse:
    """The exported float32 numpy forward pass of an :class:`InverseNet` (eval mode), built from
    its ``state_dict`` tensors as numpy arrays (the weights file) and its architecture.

    A single face costs ~10 numpy calls whatever the architecture, because per-call overhead, not
    arithmetic, dominates at this size:

    * both branches of the split network run stacked: one gather puts each branch's input columns
      in a row (zero-padded to a common width; the padding meets zero weights), each hidden layer
      is one batched matmul, the output layer one block-diagonal matmul;
    * every hidden layer carries one extra unit fixed at 1 (zero weights, bias 1, ReLU(1) = 1), so
      the next layer's bias is a row of its weight matrix and needs no separate add;
    * the sigmoid is one ufunc (``scipy.special.expit``).
    """

    def __init__(self, state: dict[str, np.ndarray], arch: ArchConfig) -> None:
        mean = np.asarray(state["input_mean"], np.float64)
        scale = np.asarray(state["input_scale"], np.float64)
        prefixes = branch_prefixes(arch)
        cols = [c for _, c, _ in prefixes]
        branches = [_export_branch(state, prefix, arch, c, mean[c], scale[c]) for prefix, c, _ in prefixes]
        n_b, width = len(cols), max(len(c) for c in cols)
        self.index = np.zeros((n_b, width), dtype=np.intp)
        h1 = branches[0].weights[0].shape[1]
        first_w = np.zeros((n_b, width, h1 + 1))
        first_b = np.zeros((n_b, 1, h1 + 1))
        for k, (c, br) in enumerate(zip(cols, branches)):
            self.index[k, :len(c)] = c
            first_w[k, :len(c), :h1] = br.weights[0]
            first_b[k, 0, :h1] = br.biases[0]
            first_b[k, 0, h1] = 1.0                       # the constant unit
        # Single faces are gathered twice, as a 2-row batch: OpenBLAS runs a vector-matrix product
        # of these sizes (gemv) on two threads but a 2-row product (gemm) on one, and waking the
        # second thread costs more than the duplicate row (on a busy 2-core machine: 9.2 us vs
        # 5.5 us for a 122 x 128 layer).
        self.index2 = np.repeat(self.index[:, None, :], 2, axis=1)
        self.first = (first_w.astype(np.float32), first_b.astype(np.float32))
        self.rest = [np.stack([_with_bias_row(br.weights[k], br.biases[k], constant=True) for br in branches])
                     .astype(np.float32) for k in range(1, len(branches[0].weights) - 1)]
        last = [_with_bias_row(br.weights[-1], br.biases[-1], constant=False) for br in branches]
        out_w = np.zeros((sum(w.shape[0] for w in last), N_COMMANDS))
        row = col = 0
        for w in last:
            out_w[row:row + w.shape[0], col:col + w.shape[1]] = w
            row, col = row + w.shape[0], col + w.shape[1]
        self.out_w = np.ascontiguousarray(out_w, dtype=np.float32)

    def one(self, x: np.ndarray) -> np.ndarray:
        """(226,) float32 -> (11,): the single-face path."""
        w, b = self.first
        h = x[self.index2] @ w                              # (branches, 2, hidden + 1), rows identical
        h += b
        np.maximum(h, 0.0, out=h)
        for w in self.rest:
            h = h @ w
            np.maximum(h, 0.0, out=h)
        z = h[:, 0].reshape(-1) @ self.out_w
        return expit(z, out=z)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(226,) or (N, 226) float32 -> (11,) or (N, 11)."""
        if x.ndim == 1:
            return self.one(x)
        rows = x.reshape(-1, N_IN)
        w, b = self.first
        h = rows[:, self.index].transpose(1, 0, 2) @ w      # (branches, N, hidden + 1)
        h += b
        np.maximum(h, 0.0, out=h)
        for w in self.rest:
            h = h @ w
            np.maximum(h, 0.0, out=h)
        z = h.transpose(1, 0, 2).reshape(rows.shape[0], -1) @ self.out_w
        return expit(z, out=z)


def _with_bias_row(w: np.ndarray, b: np.ndarray, constant: bool) -> np.ndarray:
    """[[w, 0], [b, 1]] (or [[w], [b]] for the output layer): weights for an input that ends in
    the constant unit, producing (if ``constant``) the next constant unit as its last output."""
    n_in, n_out = w.shape
    out = np.zeros((n_in + 1, n_out + (1 if constant else 0)))
    out[:n_in, :n_out] = w
    out[n_in, :n_out] = b
    if constant:
        out[n_in, n_out] = 1.0
    return out
