"""Optional dependencies. PyTorch trains the models; nothing at run time needs it.

Every shipped model runs from its safetensors file in numpy, so the runtime install (``pip install
-e src/emo_core``) leaves torch out and a robot head's computer stays small. Code that trains, or
that checks the numpy paths against their torch reference, asks for torch here, and a missing
torch becomes one clear :class:`~emo_core.errors.EmoError` line saying how to get it.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Iterator
from types import ModuleType

from .errors import EmoError

#: How to add the training extra (pinned CPU wheel, see constraints.txt and the README).
TRAIN_INSTALL = 'pip install -e "src/emo_core[train]" -c constraints.txt'


class MissingDependencyError(EmoError, ImportError):
    """An optional dependency (the ``[train]`` extra) is not installed. An ImportError too, so code
    that imports a torch-only name (``from .predictor import DeltaPredictor``) fails as imports do."""


def torch_available() -> bool:
    """Whether PyTorch can be imported here (does not import it)."""
    return importlib.util.find_spec("torch") is not None


def require_torch(purpose: str) -> ModuleType:
    """Import and return torch, or raise :class:`MissingDependencyError` naming ``purpose``."""
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs PyTorch, which the runtime install leaves out; install the [train] "
            f"extra: {TRAIN_INSTALL} (from a wheel: pip install 'emo_core[train]')") from exc


@contextlib.contextmanager
def torch_session(torch: ModuleType, threads: int, seed: int | None = None) -> Iterator[None]:
    """torch's process-wide thread count and global random state set for one training run (seeded
    with ``seed`` when given) and restored after it, however it ends: training inside a benchmark,
    a test or a second run leaves the process as it found it."""
    threads_before = torch.get_num_threads()
    rng_before = torch.get_rng_state()
    torch.set_num_threads(max(1, int(threads)))
    if seed is not None:
        torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.set_rng_state(rng_before)
