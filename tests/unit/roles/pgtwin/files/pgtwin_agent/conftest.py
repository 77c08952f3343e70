"""The agent is not a collection plugin: import its package from roles/pgtwin/files by path."""
import os
import sys

AGENT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "..", "..", "roles", "pgtwin", "files")
AGENT_DIR = os.path.normpath(AGENT_DIR)
if AGENT_DIR not in sys.path:
    sys.path.insert(0, AGENT_DIR)
