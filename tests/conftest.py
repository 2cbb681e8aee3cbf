"""Shared fixtures: real photographs (scikit-image's bundled astronaut portrait) and extractors."""
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
