"""Shared pytest set-up: make `ansible_collections.poststack.core` importable from this checkout."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "poststack", "core")):
    raise RuntimeError("run `make bootstrap` first: .collections/ansible_collections/poststack/core is missing")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
