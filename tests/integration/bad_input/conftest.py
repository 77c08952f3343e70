"""The fixtures of tests/integration/bad_input, defined in bad_input_lab.py."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from bad_input_lab import images, stack  # noqa: E402  (pytest fixtures, after the sys.path set-up)

__all__ = ["images", "stack"]
