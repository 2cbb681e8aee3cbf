"""``InverseModel``: load a trained inverse self-model and turn target faces into motor commands.

A model directory holds ``model.safetensors`` (tensors only; never a pickle) and ``card.json``
(architecture, input schema, command names, training data fingerprint, metrics, versions). Loading
checks the card against this code's schema and the weights against the card, and refuses any
mismatch with a :class:`~emo_core.errors.SchemaError` that says what differs.

Inference is numpy only (:class:`~emo_core.selfmodel.model.FastInverse` on the weights' tensors);
the torch module is built only for training, saving and the torch reference path ([train] extra).
"""
from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from .. import __version__
from ..datasets.babbling import landmark_schema
from ..errors import InputError, SchemaError
from ..optional import require_torch
from ..resources import data_path
from ..schema import COMMAND_NAMES, N_LANDMARKS
from .model import N_IN, ArchConfig, FastInverse, state_shapes

LOG = logging.getLogger(__name__)

CARD_FORMAT = "emo-inverse-model"
CARD_VERSION = 1
WEIGHTS = "model.safetensors"
CARD = "card.json"
_ONE = (N_LANDMARKS, 2)


def default_model_dir() -> Path:
    """Where the default model trained on twin babbling ships inside emo_core."""
    return data_path("inverse")


@dataclass
class InverseModel:
    """A trained inverse model: ``predict(landmarks) -> commands`` in [0, 1].

    Built from a trained torch ``net`` (training) or from the weights file's tensors ``state`` and
    the card's architecture (:meth:`load`); either way inference runs in numpy, and a loaded
    model builds its torch module only when :meth:`torch_net` is asked for.
    """

    net: Any | None = None                   # the torch InverseNet, when there is one
    card: dict[str, Any] = field(default_factory=dict)
    state: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.net is not None:
            self.net.eval()
            self.state = {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
            self._arch = self.net.arch
        elif self.state is not None:
            self._arch = ArchConfig.from_dict(self.card.get("architecture", {}))
        else:
            raise InputError("InverseModel needs a torch net or the weights' tensors")
        self._fast = FastInverse(self.state, self._arch)

    @property
    def arch(self) -> ArchConfig:
        return self._arch

    def torch_net(self) -> Any:
        """The torch module (built from the weights on first use; needs the [train] extra)."""
        if self.net is None:
            torch = require_torch("the torch inverse model (reference path)")
            from .net import InverseNet

            if self.state is None:     # not reached: __post_init__ sets it from the net or refuses
                raise InputError("InverseModel has no weights to build a torch net from")
            net = InverseNet(self._arch)
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.state.items()}, strict=True)
            self.net = net.eval()
        return self.net

    # ------------------------------------------------------------------ inference
    def predict(self, landmarks: np.ndarray) -> np.ndarray:
        """(113, 2) -> (11,), or (N, 113, 2) -> (N, 11): normalized commands in [0, 1] (float32).

        Landmarks are robot-space, canonical order. SchemaError on a wrong shape or NaN/inf.
        """
        x = landmarks if type(landmarks) is np.ndarray and landmarks.dtype == np.float32 \
            else np.asarray(landmarks, dtype=np.float32)
        shape = x.shape
        if shape == _ONE:
            # One sum instead of isfinite().all(): NaN or inf anywhere makes it non-finite.
            if not math.isfinite(x.sum()):
                raise SchemaError("inverse model input contains NaN or inf")
            return self._fast.one(x.reshape(N_IN))
        if x.ndim != 3 or shape[1:] != _ONE:
            raise SchemaError(f"inverse model input: expected (113, 2) or (N, 113, 2), got {shape}")
        if not np.isfinite(x).all():
            raise SchemaError("inverse model input contains NaN or inf")
        return self._fast(x.reshape(-1, N_IN))

    def predict_torch(self, landmarks: np.ndarray) -> np.ndarray:
        """The same prediction through the torch module (reference for the numpy fast path)."""
        torch = require_torch("the torch reference path")
        net = self.torch_net()
        x = torch.as_tensor(np.asarray(landmarks, np.float32).reshape(-1, N_IN))
        with torch.inference_mode():
            out = net(x).numpy()
        return out[0] if np.asarray(landmarks).ndim == 2 else out

    # ------------------------------------------------------------------ files
    def save(self, model_dir: str | Path) -> Path:
        """Write ``model.safetensors`` and ``card.json`` as one whole directory (emo_core.modeldir:
        staged, fsynced, swapped in atomically; the card lists the weights' checksum)."""
        torch = require_torch("saving an inverse model")
        from safetensors.torch import save as to_bytes

        from ..modeldir import MANIFEST_KEY, ModelDirWriter, sha256_bytes

        net = self.torch_net()
        model_dir = Path(model_dir)
        tensors = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
        weights = to_bytes(tensors, metadata={"format": CARD_FORMAT})
        card = {k: v for k, v in self.card.items() if k != MANIFEST_KEY}
        card.update(_schema_card(self.arch))
        card["weights"] = {"file": WEIGHTS, "sha256": sha256_bytes(weights),
                           "parameters": int(sum(p.numel() for p in net.parameters()))}
        card["versions"] = {"emo_core": __version__, "torch": torch.__version__, "numpy": np.__version__}
        writer = ModelDirWriter(model_dir)
        writer.add_file(WEIGHTS, weights)
        writer.add_card(CARD, card)
        writer.commit()
        self.card = writer.written[CARD]
        return model_dir

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> "InverseModel":
        """Load a model directory (None: the default model shipped in emo_core)."""
        from ..modeldir import verify

        model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        card = read_card(model_dir)
        verify(model_dir, card, CARD)
        arch = ArchConfig.from_dict(card["architecture"])
        weights = model_dir / WEIGHTS
        recorded = card.get("weights")
        if _file_sha256(weights) != (recorded.get("sha256") if isinstance(recorded, dict) else None):
            raise SchemaError(f"{weights} does not match the checksum in {model_dir / CARD}")
        try:
            tensors = load_file(str(weights))
        except (SafetensorError, OSError, ValueError) as exc:
            raise SchemaError(f"{weights}: unreadable safetensors file: {exc}") from exc
        _check_state(tensors, arch, weights)
        return cls(card=card, state=tensors)


def _check_state(tensors: dict[str, np.ndarray], arch: ArchConfig, weights: Path) -> None:
    """SchemaError unless the file holds exactly the tensors (names, shapes) of ``arch``."""
    expected = state_shapes(arch)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tuple(tensors[k].shape) != expected[k])
    if missing or extra or wrong:
        first = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                 else f"{wrong[0]} is {tuple(tensors[wrong[0]].shape)}, expected {expected[wrong[0]]}")
        raise SchemaError(f"{weights} does not fit the {arch.name} architecture in its card: {first}")


def _schema_card(arch: ArchConfig) -> dict[str, Any]:
    return {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "architecture": arch.to_dict(),
        "input": landmark_schema(),
        "output": {"command_names": list(COMMAND_NAMES), "range": [0.0, 1.0]},
    }


def read_card(model_dir: Path) -> dict[str, Any]:
    """Read ``card.json`` and check it against this code's landmark and command schema."""
    from ..modeldir import read_card as read_json_card

    path = model_dir / CARD
    if not path.is_file() or not (model_dir / WEIGHTS).is_file():
        raise InputError(f"{model_dir} is not an inverse model directory (needs {CARD} and {WEIGHTS})")
    card = read_json_card(model_dir, CARD, "inverse model")
    if card.get("format") != CARD_FORMAT:
        raise SchemaError(f"{path}: not an {CARD_FORMAT} card")
    if card.get("version") != CARD_VERSION:
        raise SchemaError(f"{path}: card version {card.get('version')} unsupported (this code reads {CARD_VERSION})")
    if card.get("input") != landmark_schema():
        raise SchemaError(f"{path}: the model expects landmarks {card.get('input')}, this code provides {landmark_schema()}")
    output = card.get("output")
    names = output.get("command_names") if isinstance(output, dict) else None
    if names != list(COMMAND_NAMES):
        raise SchemaError(f"{path}: the model outputs commands {names}, this code expects {list(COMMAND_NAMES)}")
    if "architecture" not in card:
        raise SchemaError(f"{path}: card lacks 'architecture'")
    return card


def _file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
