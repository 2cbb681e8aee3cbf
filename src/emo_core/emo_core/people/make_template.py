"""``python -m emo_core.people.make_template [--photo PATH] [--check]``: rebuild the face template.

Neutralizes the photo, runs the real extractor on the rest frame and rewrites ``_template_data.py``
(or, with ``--check``, only reports how far the stored template is from a fresh one).
"""
from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

from ..errors import SchemaError
from .template import DATA_MODULE, build_template, load_template, write_template_module

LOG = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="rebuild the neutral face template from a photo")
    parser.add_argument("--photo", default=None, help="default: scikit-image's astronaut")
    parser.add_argument("--check", action="store_true", help="only compare with the bundled template")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    fresh = build_template(args.photo)
    try:
        diff = np.abs(fresh.landmarks - load_template().landmarks)
        LOG.info("vs bundled template: mean |diff| %.4f, max %.4f metric units", diff.mean(), diff.max())
    except (ImportError, SchemaError):
        LOG.info("no bundled template yet")
    if not args.check:
        write_template_module(fresh)
        LOG.info("wrote %s", DATA_MODULE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
