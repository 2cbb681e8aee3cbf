"""The inverse self-model's torch module: what ``emo train inverse`` trains ([train] extra).

Inference never builds it: :class:`~emo_core.selfmodel.inverse.InverseModel` runs the weights
file in numpy (:class:`~emo_core.selfmodel.model.FastInverse`). Architectures: see ``model.py``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..schema import N_COMMANDS
from .model import BN_EPS, LOWER_COLS, N_IN, N_UPPER_CMD, UPPER_COLS, ArchConfig


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        if batch_norm:
            layers.append(nn.BatchNorm1d(width, eps=BN_EPS))  # the paper's order: FC -> ReLU -> BN
        n_in = width
    layers += [nn.Linear(n_in, n_out), nn.Sigmoid()]
    return nn.Sequential(*layers)


class InverseNet(nn.Module):
    """Torch module for either architecture; input (N, 226) raw landmarks, output (N, 11) in [0, 1]."""

    # Declared so that attribute access is typed: nn.Module.__getattr__ returns Tensor | Module.
    # Buffers (registered below):
    input_mean: torch.Tensor
    input_scale: torch.Tensor
    # Submodules: ``body`` for the paper architecture, ``upper`` and ``lower`` for the split one.
    body: nn.Sequential
    upper: nn.Sequential
    lower: nn.Sequential

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
