"""Keep native libraries' stderr chatter (MediaPipe/TFLite start-up, FFmpeg probing) away from users.

Native code writes to file descriptor 2 directly, so ``sys.stderr`` redirection does not help. The
redirect is process-wide while it lasts, so it wraps only short start-up/probe calls, never a
steady-state loop, and our own errors are raised (and reported) after it ends.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration."""
    if not enabled:
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
