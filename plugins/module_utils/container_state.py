# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring named containers to a state (stopped or absent) with podman or docker alike: the plan from their states
(pure, unit-tested), and its steps through the one runtime runner. Both runtimes spell these commands the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

STATES = ("stopped", "absent")
# What `inspect` says of a container that has a process (podman and docker alike).
ACTIVE = ("running", "paused", "restarting", "stopping")


@dataclass
class Step:
    name: str
    before: Optional[str]  # the container's state, None when it does not exist
    after: Optional[str]  # what it will be: "exited", or None when removed
    stop: bool  # stop it first
    remove: bool


def plan(current: Dict[str, Optional[str]], state: str) -> List[Step]:
    """The steps that bring the containers of ``current`` (name -> state, None when missing) to ``state``; a
    container that is there already gets none."""
    if state not in STATES:
        raise ValueError("state must be one of %s, got %r" % (", ".join(STATES), state))
    steps = []
    for name, before in current.items():
        if before is None:
            continue
        active = before in ACTIVE
        if state == "stopped" and active:
            steps.append(Step(name, before, "exited", stop=True, remove=False))
        elif state == "absent":
            steps.append(Step(name, before, None, stop=active, remove=True))
    return steps


def current_states(runtime, names: List[str]) -> Dict[str, Optional[str]]:
    """name -> the container's state (``inspect``'s State.Status), None when it does not exist."""
    found: Dict[str, Optional[str]] = {}
    for name in names:
        inspect = runtime.container_inspect(name)
        found[name] = ((inspect.get("State") or {}).get("Status") or "unknown") if inspect else None
    return found


def apply(runtime, step: Step, stop_timeout: Optional[int] = None) -> None:
    """Run the step: a clean stop within ``stop_timeout`` seconds (None: the container's own timeout), then the
    runtime kills; then the removal with the container's anonymous volumes."""
    if step.stop:
        runtime.run(["stop"] + (["-t", str(stop_timeout)] if stop_timeout is not None else []) + [step.name])
    if step.remove:
        runtime.run(["rm", "-v", step.name])
