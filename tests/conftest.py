"""Shared fixtures: real photographs (scikit-image's bundled astronaut portrait), extractors, and the
servo table, clock and bus emulator of the servo tests."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The full 512x512 RGB photo (a real face, ~100 px wide)."""
    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def face_photo(astronaut: np.ndarray) -> np.ndarray:
    """A 512x512 head crop of the photo (face ~180 px wide), as a camera close to a person sees it."""
    return cv2.resize(astronaut[20:276, 110:366], (512, 512), interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="session")
def static_extractor():
    """One static-image-mode extractor for the session (building a graph costs ~0.3 s)."""
    from emo_core.perception import ExtractorConfig, FaceLandmarkExtractor

    with FaceLandmarkExtractor(ExtractorConfig(static_image_mode=True)) as extractor:
        yield extractor


# ----------------------------------------------------------------------------- servos
# The servo driver against the Protocol 2.0 emulator on a pty, on a manual clock (tests/test_servo_*).
@pytest.fixture(scope="module")
def table():
    from emo_core.servo import ServoTable

    return ServoTable.load()


@pytest.fixture()
def clock():
    from emo_core.clock import ManualClock

    return ManualClock(1000.0)


@pytest.fixture()
def emulator(table, clock, tmp_path):
    # An ideal servo (present = profile): the driver tests check its plan, safety and bus logic;
    # the plant's lag (servos.yaml emulator.response_time_s) and the lead that beats it are tested
    # on their own.
    from emo_core.servo import BusEmulator

    with BusEmulator.from_table(table, link=tmp_path / "servo_bus", clock=clock, response_time_s=0.0) as emu:
        yield emu
