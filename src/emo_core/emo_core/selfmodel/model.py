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
what :class:`InverseModel` uses; it matches the torch module to ~1e-6.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from ..errors import SchemaError
from ..schema import LOWER, N_COMMANDS, N_LANDMARKS, UPPER, UPPER_COMMANDS

ARCHITECTURES = ("paper", "split")
N_IN = N_LANDMARKS * 2
N_UPPER_CMD = len(UPPER_COMMANDS)
#: Flattened input columns (x, y interleaved per landmark) of each half.
UPPER_COLS = np.arange(UPPER.start * 2, UPPER.stop * 2)
LOWER_COLS = np.arange(LOWER.start * 2, LOWER.stop * 2)


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


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))  # the paper's order: FC -> ReLU -> BN
        n_in = width
    layers += [nn.Linear(n_in, n_out), nn.Sigmoid()]
    return nn.Sequential(*layers)


class InverseNet(nn.Module):
    """Torch module for either architecture; input (N, 226) raw landmarks, output (N, 11) in [0, 1]."""

    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        self.arch = arch
        self.register_buffer("input_mean", torch.zeros(N_IN))
        self.register_buffer("input_scale", torch.ones(N_IN))
        if arch.name == "paper":
            self.body = _mlp(N_IN, arch.hidden, N_COMMANDS, batch_norm=True)
        else:
            self.upper = _mlp(len(UPPER_COLS), arch.hidden, N_UPPER_CMD, batch_norm=arch.batch_norm)
            self.lower = _mlp(len(LOWER_COLS), arch.hidden, N_COMMANDS - N_UPPER_CMD, batch_norm=arch.batch_norm)

    def set_normalization(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.input_mean.copy_(torch.as_tensor(np.asarray(mean, np.float32)))
        self.input_scale.copy_(torch.as_tensor(np.asarray(scale, np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.input_mean) / self.input_scale
        if self.arch.name == "paper":
            return self.body(z)
        return torch.cat([self.upper(z[:, UPPER_COLS[0]:UPPER_COLS[-1] + 1]),
                          self.lower(z[:, LOWER_COLS[0]:LOWER_COLS[-1] + 1])], dim=1)


# ------------------------------------------------------------------------------------ numpy export
@dataclass
class _Branch:
    """One exported MLP: (weight (in, out), bias) per layer, ReLU between, sigmoid after the last."""

    cols: np.ndarray
    weights: list[np.ndarray] = field(default_factory=list)
    biases: list[np.ndarray] = field(default_factory=list)


def _export_branch(seq: nn.Sequential, cols: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> _Branch:
    """Fold the input standardization and each (ReLU ->) BatchNorm into the linear layers (float64)."""
    branch = _Branch(cols=cols)
    pending_affine: tuple[np.ndarray, np.ndarray] | None = None  # y -> a * y + c from a BatchNorm
    first = True
    for module in seq:
        if isinstance(module, nn.Linear):
            w = module.weight.detach().double().numpy().copy()     # (out, in)
            b = module.bias.detach().double().numpy().copy()
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
        elif isinstance(module, nn.BatchNorm1d):
            inv = 1.0 / np.sqrt(module.running_var.detach().double().numpy() + module.eps)
            a = module.weight.detach().double().numpy() * inv
            c = module.bias.detach().double().numpy() - module.running_mean.detach().double().numpy() * a
            pending_affine = (a, c)
    return branch


class FastInverse:
    """The exported float32 numpy forward pass of an :class:`InverseNet` (eval mode).

    A single face costs ~10 numpy calls whatever the architecture, because per-call overhead, not
    arithmetic, dominates at this size:

    * both branches of the split network run stacked: one gather puts each branch's input columns
      in a row (zero-padded to a common width; the padding meets zero weights), each hidden layer
      is one batched matmul, the output layer one block-diagonal matmul;
    * every hidden layer carries one extra unit fixed at 1 (zero weights, bias 1, ReLU(1) = 1), so
      the next layer's bias is a row of its weight matrix and needs no separate add;
    * the sigmoid is one ufunc (``scipy.special.expit``).
    """

    def __init__(self, net: InverseNet) -> None:
        mean = net.input_mean.detach().double().numpy()
        scale = net.input_scale.detach().double().numpy()
        if net.arch.name == "paper":
            cols = [np.arange(N_IN)]
            branches = [_export_branch(net.body, cols[0], mean, scale)]
        else:
            cols = [UPPER_COLS, LOWER_COLS]
            branches = [_export_branch(net.upper, UPPER_COLS, mean[UPPER_COLS], scale[UPPER_COLS]),
                        _export_branch(net.lower, LOWER_COLS, mean[LOWER_COLS], scale[LOWER_COLS])]
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
