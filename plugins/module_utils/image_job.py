# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One image build as poststack_image runs it: the inputs checked and hashed, the plan against what the runtime
has, then the tag or the build with its log. No Ansible imports: the module maps this to its parameters and
results."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.poststack.core.plugins.module_utils.image_build import (
    HASH_LABEL,
    BuildHash,
    BuildInputError,
    BuildPlan,
    BuildSpec,
    ImageState,
    build_command,
    combined_ignore,
    compute_hash,
    context_tar,
    exposed,
    ignore_files,
    log_tail,
    plan_build,
    resolve_containerfile,
)
from ansible_collections.poststack.core.plugins.module_utils.runtime import (
    ContainerRuntime,
    RuntimeCommandError,
    RuntimeNotFound,
    detect_runtime,
    image_labels,
    image_tags,
    normalize_ref,
)


class ImageJobError(Exception):
    """The job cannot go on; ``details`` are result keys that say what happened (never changed=True)."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


def current_state(runtime: ContainerRuntime, tags: List[str]) -> Tuple[ImageState, Optional[Dict[str, Any]]]:
    """What the runtime has for ``tags``: the first tag's image (its ID and build hash), the other tags on it."""
    first = runtime.image_inspect(tags[0])
    if first is None:
        return ImageState(image_id=None, build_hash=None, tagged=[]), None
    tagged = [tags[0]]
    for tag in tags[1:]:
        other = runtime.image_inspect(tag)
        if other is not None and other.get("Id") == first.get("Id"):
            tagged.append(tag)
    return ImageState(image_id=first.get("Id"), build_hash=image_labels(first).get(HASH_LABEL), tagged=tagged), first


def log_path(log_dir: str, image: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", image).strip("_")
    return os.path.join(log_dir, "%s-%s.log" % (safe, time.strftime("%Y%m%dT%H%M%S")))


@dataclass
class ImageJob:
    """A planned build: what it would run, and why."""

    tags: List[str]
    spec: BuildSpec
    binary: str
    runtime: ContainerRuntime
    build_hash: BuildHash
    state: ImageState
    inspect: Optional[Dict[str, Any]]
    plan: BuildPlan
    command: List[str]
    ignore_path: Optional[str]
    streamed: bool = False  # the context goes to docker as a filtered tar on stdin (image_build.context_tar)

    @classmethod
    def prepare(cls, params: Dict[str, Any],
                detect: Callable[[str], str] = detect_runtime) -> "ImageJob":
        """Check and hash the inputs of the module's ``params``, look at the runtime's images, plan."""
        tags = [normalize_ref(params["name"])] + [normalize_ref(tag) for tag in params["additional_tags"]]
        try:
            runtime = ContainerRuntime(detect(params["runtime"]))
            binary = runtime.binary
            context = os.path.abspath(params["context"])
            spec = BuildSpec(
                context=context,
                containerfile=resolve_containerfile(context, params["containerfile"]),
                tags=tags,
                build_args={str(k): str(v) for k, v in params["build_args"].items()},
                target=params["target"],
                labels={str(k): str(v) for k, v in params["labels"].items()},
                pull=params["pull"],
                no_cache=params["no_cache"],
                image_format=params["image_format"],
                extra_args=params["extra_args"],
                network=params["network"] or None,
                ignore_files=ignore_files(runtime.name),
                exclude=params["exclude"],
            )
        except (BuildInputError, RuntimeNotFound) as exc:
            raise ImageJobError(str(exc), image=tags[0])

        def base_image_id(ref: str) -> Optional[str]:
            inspect = runtime.image_inspect(ref)
            return inspect.get("Id") if inspect else None

        try:
            build_hash = compute_hash(spec, base_image_id)
        except RuntimeCommandError as exc:
            raise ImageJobError(str(exc), image=tags[0])
        except (BuildInputError, OSError, UnicodeDecodeError) as exc:
            raise ImageJobError("cannot hash the build inputs of %s: %s" % (tags[0], exc), image=tags[0])
        # docker has no --ignorefile: while an excluded path would reach its build, the context goes as a tar of
        # exactly what the hash covers, on stdin
        streamed = bool(spec.exclude and runtime.name != "podman"
                        and exposed(context, spec.exclude, spec.ignore_files))
        try:
            state, inspect = current_state(runtime, tags)
        except RuntimeCommandError as exc:
            raise ImageJobError(str(exc), image=tags[0])
        plan = plan_build(build_hash.value, tags, state, params["force"])
        # podman reads the context's ignore file with the excluded paths appended from a file of its own
        ignore_path = (os.path.join(tempfile.gettempdir(), "poststack-build-%s.ignore" % build_hash.value[:16])
                       if spec.exclude and runtime.name == "podman" else None)
        try:
            command = [binary] + build_command(runtime.name, spec, build_hash.value, ignore_path, streamed)
        except BuildInputError as exc:
            raise ImageJobError(str(exc), image=tags[0])
        return cls(tags, spec, binary, runtime, build_hash, state, inspect, plan, command, ignore_path, streamed)

    @property
    def commands(self) -> List[List[str]]:
        """What the plan runs: the tag commands, or the build command; nothing when the image is up to date."""
        if self.plan.action == "tag":
            return [[self.binary, "tag", str(self.state.image_id), tag] for tag in self.plan.missing_tags]
        return [list(self.command)] if self.plan.action == "build" else []

    @property
    def changes(self) -> bool:
        return self.plan.action != "none"

    def result(self, diff: bool) -> Dict[str, Any]:
        """The module's result before anything ran (what check mode reports); ``diff`` in diff mode only."""
        result: Dict[str, Any] = dict(
            image=self.tags[0],
            image_id=self.state.image_id,
            tags=image_tags(self.inspect),
            size=self.inspect.get("Size") if self.inspect else None,
            build_hash=self.build_hash.value,
            operation=self.plan.action,
            reason=self.plan.reason,
            commands=self.commands,
            log_file=None,
            context_files=self.build_hash.context_files,
            ignore_file=self.build_hash.ignore_file,
            base_images=self.build_hash.base_images,
            runtime=self.binary,
            changed=self.changes,
        )
        if diff:
            result["diff"] = dict(
                before=dict(image_id=self.state.image_id, build_hash=self.state.build_hash, tags=self.state.tagged),
                after=dict(image_id="(new)" if self.plan.action == "build" else self.state.image_id,
                           build_hash=self.build_hash.value, tags=self.tags),
            )
        return result

    def run(self, result: Dict[str, Any], log_dir: str, timeout: int) -> None:
        """Tag or build as planned, then read the image back into ``result``. A failure raises ImageJobError
        with what happened (the build's rc and the end of its log)."""
        image = self.tags[0]
        try:
            if self.plan.action == "tag":
                for argv in self.commands:  # what the result reports is what runs
                    self.runtime.run(argv[1:])
            else:
                self._build(result, os.path.abspath(log_dir), timeout)
        except RuntimeCommandError as exc:
            raise ImageJobError(str(exc), rc=exc.result.rc, stderr=exc.result.stderr, image=image)
        except subprocess.TimeoutExpired:
            raise ImageJobError("building %s took longer than timeout=%ds; log: %s"
                                % (image, timeout, result["log_file"]), image=image)
        except OSError as exc:
            raise ImageJobError("building %s: %s" % (image, exc), image=image)
        after = self.runtime.image_inspect(image)
        result.update(image_id=after.get("Id") if after else None, tags=image_tags(after),
                      size=after.get("Size") if after else None)
        if "diff" in result:
            result["diff"]["after"]["image_id"] = result["image_id"]

    def _build(self, result: Dict[str, Any], log_dir: str, timeout: int) -> None:
        image = self.tags[0]
        os.makedirs(log_dir, exist_ok=True)
        log_file = log_path(log_dir, image)
        result["log_file"] = log_file
        if self.ignore_path:
            with open(self.ignore_path, "w", encoding="utf-8") as ignore:
                ignore.write(combined_ignore(self.spec.context, self.spec.exclude))
        try:
            with open(log_file, "w", encoding="utf-8") as handle, contextlib.ExitStack() as stack:
                handle.write("# %s\n# reason: %s\n" % (" ".join(self.command), self.plan.reason))
                stream = None
                if self.streamed:
                    stream = stack.enter_context(tempfile.TemporaryFile())
                    count = context_tar(self.spec, stream)
                    stream.seek(0)
                    handle.write("# context: %d files of %s as a tar on stdin, without %s\n"
                                 % (count, self.spec.context, ", ".join(self.spec.exclude)))
                handle.flush()
                build = self.runtime.run(self.command[1:], check=False, stdout=handle, timeout=timeout, stdin=stream)
        finally:
            if self.ignore_path and os.path.exists(self.ignore_path):
                os.unlink(self.ignore_path)
        if build.rc != 0:
            raise ImageJobError(
                "building %s failed (rc=%d); full log: %s\n%s" % (image, build.rc, log_file, log_tail(log_file)),
                rc=build.rc, **{key: value for key, value in result.items() if key != "changed"})
