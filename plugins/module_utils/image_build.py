# -*- coding: utf-8 -*-
# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content-addressed image builds: what goes into an image, hashed, so that an unchanged build is skipped.

The build hash covers every file of the build context that the runtime would send (honouring
`.containerignore`, else `.dockerignore`, with Docker's pattern rules), the Containerfile, build args, target,
labels, the runtime's build options that change the result, and the IDs of the local base images named in
FROM lines (so that rebuilding a base image rebuilds what is built on it). Pure Python, no Ansible imports.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tarfile
from dataclasses import dataclass, field
from typing import IO, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

HASH_LABEL = "io.poststack.build-hash"
HASH_VERSION = "1"
CONTAINERFILE_NAMES = ("Containerfile", "Dockerfile")
IGNORE_FILES = (".containerignore", ".dockerignore")


class BuildInputError(Exception):
    """The build inputs are unusable (missing context, missing Containerfile, bad ignore pattern...)."""


# --- .containerignore / .dockerignore ----------------------------------------------------------------------


@dataclass
class IgnorePattern:
    text: str
    regex: "re.Pattern[str]"
    negate: bool


def _clean(pattern: str) -> str:
    """Like Go's filepath.Clean for the relative, slash-separated patterns Docker uses."""
    parts: List[str] = []
    for part in pattern.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts) or "."


def _translate(pattern: str) -> str:
    """Docker ignore pattern -> regex source (filepath.Match plus `**`)."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < n and pattern[i] == "/":
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                raise BuildInputError(f"ignore pattern '{pattern}': unterminated character class")
            body = pattern[i + 1:end]
            if body.startswith(("!", "^")):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "^" + "".join(out) + "$"


def parse_ignore(text: str) -> List[IgnorePattern]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:].strip()
        line = _clean(line.lstrip("/"))
        patterns.append(IgnorePattern(text=raw.strip(), regex=re.compile(_translate(line)), negate=negate))
    return patterns


class IgnoreMatcher:
    """Decides whether a context-relative path is excluded. The last matching pattern wins; a pattern matches a
    path or any of its parent directories (Docker's rule)."""

    def __init__(self, patterns: Sequence[IgnorePattern]) -> None:
        self.patterns = list(patterns)
        self.has_negation = any(p.negate for p in self.patterns)

    def excluded(self, rel_path: str) -> bool:
        parts = rel_path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for pattern in self.patterns:
            if any(pattern.regex.match(prefix) for prefix in prefixes):
                result = not pattern.negate
        return result

    def can_prune(self, rel_dir: str) -> bool:
        """An excluded directory can be skipped entirely unless a negation might re-include something in it."""
        return not self.has_negation and self.excluded(rel_dir)


def ignore_files(runtime_name: str) -> Tuple[str, ...]:
    """The ignore files a runtime reads, in order: podman .containerignore, else .dockerignore; docker only
    .dockerignore."""
    return IGNORE_FILES if runtime_name == "podman" else (".dockerignore",)


def read_ignore(context: str, names: Sequence[str] = IGNORE_FILES) -> Tuple[Optional[str], str]:
    """The context's ignore file (the first of ``names``: podman reads .containerignore, else .dockerignore; docker
    reads .dockerignore only) and its text; (None, "") without one."""
    for name in names:
        path = os.path.join(context, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                return name, handle.read()
    return None, ""


def load_ignore(context: str, exclude: Sequence[str] = (),
                names: Sequence[str] = IGNORE_FILES) -> Tuple[Optional[str], IgnoreMatcher]:
    """The matcher of the context's ignore file, with the ``exclude`` patterns after it (so they win over its
    negations: what poststack always keeps out of a build stays out)."""
    name, text = read_ignore(context, names)
    return name, IgnoreMatcher(parse_ignore(text + "\n" + "\n".join(exclude)))


def combined_ignore(context: str, exclude: Sequence[str]) -> str:
    """The text of an ignore file for ``--ignorefile``: the context's own patterns, then ``exclude``."""
    text = read_ignore(context)[1]
    return text + ("" if not text or text.endswith("\n") else "\n") + "".join(p + "\n" for p in exclude)


def exposed(context: str, exclude: Sequence[str], names: Sequence[str]) -> List[str]:
    """The context's files that its own ignore file (the first of ``names`` there) lets through and ``exclude``
    keeps out (patterns such as ``**/.env`` included): what a runtime without --ignorefile, docker, would send to
    the build if it were given the directory."""
    sent = context_files(context, load_ignore(context, (), names)[1])
    kept = set(context_files(context, load_ignore(context, exclude, names)[1]))
    return [rel for rel in sent if rel not in kept]


# --- context walk and hash ---------------------------------------------------------------------------------


def _walk_context(context: str, matcher: IgnoreMatcher) -> Iterator[Tuple[str, str, bool]]:
    """(context-relative path, path, is a directory) of what a build would send, parents before their contents:
    the directories the ignore rules keep, then the files and symlinks (a symlink to a directory is not entered)."""
    for dirpath, dirnames, filenames in os.walk(context):
        rel_dir = os.path.relpath(dirpath, context)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        if rel_dir and not matcher.excluded(rel_dir):
            yield rel_dir, dirpath, True
        entries, keep = list(filenames), []
        for name in sorted(dirnames):
            if os.path.islink(os.path.join(dirpath, name)):
                entries.append(name)
            elif not matcher.can_prune(f"{rel_dir}/{name}" if rel_dir else name):
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(entries):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not matcher.excluded(rel):
                yield rel, os.path.join(dirpath, name), False


def context_files(context: str, matcher: IgnoreMatcher) -> List[str]:
    """Sorted context-relative paths of the files and symlinks that a build would send."""
    return sorted(rel for rel, _path, is_dir in _walk_context(context, matcher) if not is_dir)


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_context(context: str, matcher: IgnoreMatcher) -> Tuple[str, int]:
    """Digest of the context's content, names, symlink targets and executable bits; and the file count."""
    digest = hashlib.sha256()
    files = context_files(context, matcher)
    for rel in files:
        path = os.path.join(context, rel)
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            entry = f"L {rel} -> {os.readlink(path)}"
        elif stat.S_ISREG(info.st_mode):
            entry = f"F {rel} {oct(info.st_mode & 0o7777)} {_file_digest(path)}"
        else:
            continue
        digest.update(entry.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest(), len(files)


# --- Containerfile ------------------------------------------------------------------------------------------

_ARG_RE = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?\s*$", re.IGNORECASE)
_FROM_RE = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _logical_lines(text: str) -> Iterable[str]:
    buffer = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            buffer += line.rstrip()[:-1] + " "
            continue
        yield buffer + line
        buffer = ""
    if buffer:
        yield buffer


def from_images(containerfile_text: str, build_args: Dict[str, str]) -> List[str]:
    """External images named in FROM lines (ARG substitution applied; stages and `scratch` left out)."""
    global_args: Dict[str, str] = {}
    stages: List[str] = []
    images: List[str] = []
    seen_from = False
    for line in _logical_lines(containerfile_text):
        arg = _ARG_RE.match(line)
        if arg and not seen_from:
            name, default = arg.group(1), arg.group(2)
            global_args[name] = build_args.get(name, (default or "").strip("\"'"))
            continue
        match = _FROM_RE.match(line)
        if not match:
            continue
        seen_from = True

        def substitute(m: "re.Match[str]") -> str:
            name = m.group(1) or m.group(3)
            value = global_args.get(name, "")
            return value if value or m.group(2) is None else m.group(2)

        image = _VAR_RE.sub(substitute, match.group(1))
        if image.lower() != "scratch" and image not in stages and image not in images:
            images.append(image)
        if match.group(2):
            stages.append(match.group(2))
    return images


def resolve_containerfile(context: str, containerfile: Optional[str]) -> str:
    """Absolute path of the Containerfile: as given (relative to the context), else Containerfile/Dockerfile."""
    if not os.path.isdir(context):
        raise BuildInputError(f"build context '{context}' does not exist or is not a directory")
    if containerfile:
        path = containerfile if os.path.isabs(containerfile) else os.path.join(context, containerfile)
        if not os.path.isfile(path):
            raise BuildInputError(
                f"Containerfile '{containerfile}' not found (looked at {path}); give a path relative to the context"
                " or an absolute one"
            )
        return os.path.abspath(path)
    for name in CONTAINERFILE_NAMES:
        path = os.path.join(context, name)
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise BuildInputError(
        f"no Containerfile or Dockerfile in build context '{context}': add one or set containerfile"
    )


# --- the plan -----------------------------------------------------------------------------------------------


@dataclass
class BuildSpec:
    context: str
    containerfile: str
    tags: List[str]
    build_args: Dict[str, str] = field(default_factory=dict)
    target: Optional[str] = None
    labels: Dict[str, str] = field(default_factory=dict)
    pull: str = "missing"
    no_cache: bool = False
    image_format: str = "docker"
    extra_args: List[str] = field(default_factory=list)
    # The network of the build's RUN steps (--network), e.g. host on an engine without NAT. Not part of the hash:
    # it changes how a build reaches the outside, not what it makes.
    network: Optional[str] = None
    # The ignore files the runtime reads, in order (docker: .dockerignore only): the hash covers what it sends.
    ignore_files: Tuple[str, ...] = IGNORE_FILES
    # Context paths (ignore-file patterns) never sent to the build nor hashed, whatever the ignore file says.
    exclude: List[str] = field(default_factory=list)


@dataclass
class BuildHash:
    value: str
    context_files: int
    ignore_file: Optional[str]
    base_images: Dict[str, Optional[str]]


def bare_id(image_id: Optional[str]) -> Optional[str]:
    """An image ID as podman writes it: Docker's carries a ``sha256:`` prefix. The build hash holds the bare ID,
    so that an image moved between the runtimes (``podman save | docker load`` keeps the ID) stays up to date."""
    return image_id[len("sha256:"):] if image_id and image_id.startswith("sha256:") else image_id


def compute_hash(spec: BuildSpec, base_image_id: Callable[[str], Optional[str]]) -> BuildHash:
    """The build hash of a spec. `base_image_id(ref)` returns the local ID of a FROM image, or None."""
    ignore_name, matcher = load_ignore(spec.context, spec.exclude, spec.ignore_files)
    context_digest, count = hash_context(spec.context, matcher)
    with open(spec.containerfile, "rb") as handle:
        containerfile_bytes = handle.read()
    bases = {
        ref: bare_id(base_image_id(ref))
        for ref in from_images(containerfile_bytes.decode("utf-8", "replace"), spec.build_args)
    }
    digest = hashlib.sha256()
    for key, value in (
        ("version", HASH_VERSION),
        ("context", context_digest),
        ("containerfile", hashlib.sha256(containerfile_bytes).hexdigest()),
        ("containerfile-path", os.path.relpath(spec.containerfile, spec.context)),
        ("target", spec.target or ""),
        ("format", spec.image_format),
        ("extra-args", "\0".join(spec.extra_args)),
    ):
        digest.update(f"{key}={value}\n".encode("utf-8"))
    for name in sorted(spec.build_args):
        digest.update(f"arg:{name}={spec.build_args[name]}\n".encode("utf-8"))
    if spec.exclude:  # (absent from the hash without excludes: the hashes of earlier builds stay valid)
        digest.update(("exclude=" + "\0".join(spec.exclude) + "\n").encode("utf-8"))
    for name in sorted(spec.labels):
        digest.update(f"label:{name}={spec.labels[name]}\n".encode("utf-8"))
    for ref in sorted(bases):
        digest.update(f"from:{ref}={bases[ref] or 'absent'}\n".encode("utf-8"))
    return BuildHash(value=digest.hexdigest(), context_files=count, ignore_file=ignore_name, base_images=bases)


def build_command(runtime_name: str, spec: BuildSpec, build_hash: str,
                  ignore_file: Optional[str] = None, streamed: bool = False) -> List[str]:
    """Arguments after the runtime binary for `build` (podman and docker differ in --pull and --format).
    ``ignore_file``: the combined ignore file (see combined_ignore) podman reads instead of the context's.
    ``streamed``: the context comes as a tar on stdin (context_tar), its Containerfile at stream_containerfile()."""
    args = ["build", "-f", stream_containerfile(spec) if streamed else spec.containerfile]
    if ignore_file and runtime_name == "podman":
        args += ["--ignorefile", ignore_file]
    for tag in spec.tags:
        args += ["-t", tag]
    for name in sorted(spec.build_args):
        args += ["--build-arg", f"{name}={spec.build_args[name]}"]
    labels = dict(spec.labels)
    labels[HASH_LABEL] = build_hash
    for name in sorted(labels):
        args += ["--label", f"{name}={labels[name]}"]
    if spec.target:
        args += ["--target", spec.target]
    if spec.no_cache:
        args.append("--no-cache")
    if runtime_name == "podman":
        args += [f"--pull={spec.pull}", "--format", spec.image_format]
    else:
        # Docker's legacy builder leaves a failed step's container behind unless told (podman removes it)
        args.append("--force-rm")
        if spec.pull == "always":
            args.append("--pull")
    if spec.network:
        args += ["--network", spec.network]
    args += list(spec.extra_args)
    args.append("-" if streamed else spec.context)
    return args


STREAMED_CONTAINERFILE = ".poststack.Containerfile"  # a Containerfile from outside the context, in the stream


def stream_containerfile(spec: BuildSpec) -> str:
    """Where the Containerfile is in the streamed context: its place in the context, else STREAMED_CONTAINERFILE."""
    rel = os.path.relpath(spec.containerfile, spec.context).replace(os.sep, "/")
    if not rel.startswith("../"):
        return rel
    if os.path.lexists(os.path.join(spec.context, STREAMED_CONTAINERFILE)):
        raise BuildInputError(f"the build context holds {STREAMED_CONTAINERFILE}, the name poststack gives a "
                              "Containerfile from outside the context when it streams one: rename that file")
    return STREAMED_CONTAINERFILE


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Entries owned by root, as the docker CLI sends a context (a builder may keep a tar's owners)."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def context_tar(spec: BuildSpec, out: IO[bytes]) -> int:
    """Write the build context as Docker takes it on stdin (``docker build -``): the directories and exactly the
    files and symlinks the build hash covers (the ignore file's patterns and ``exclude`` applied), owned by root,
    and the Containerfile as a regular file (a symbolic link to it followed). For a runtime without --ignorefile
    this is how ``exclude`` keeps files such as .env out of the build. Returns the count of files and links."""
    matcher = load_ignore(spec.context, spec.exclude, spec.ignore_files)[1]
    inside = stream_containerfile(spec)
    count = 0
    # gzip: docker tells a context from a Dockerfile on stdin by its first 512 bytes, where a plain tar may start
    # with a PAX header it cannot parse alone (Python writes one for sub-second mtimes); a gzip stream it knows.
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as archive:
        for rel, path, is_dir in _walk_context(spec.context, matcher):
            if not is_dir:
                mode = os.lstat(path).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                    continue  # as hash_context: FIFOs, sockets and devices are not sent
                count += 1
                if rel == inside:
                    continue  # added below as the file it is or links to
            archive.add(path, arcname=rel, recursive=False, filter=_as_root)
        archive.add(os.path.realpath(spec.containerfile), arcname=inside, recursive=False, filter=_as_root)
    return count


@dataclass
class ImageState:
    """What the runtime has now for the spec's tags."""

    image_id: Optional[str]
    build_hash: Optional[str]
    tagged: List[str]


@dataclass
class BuildPlan:
    action: str  # "none" | "tag" | "build"
    reason: str
    missing_tags: List[str] = field(default_factory=list)


def plan_build(wanted_hash: str, tags: Sequence[str], state: ImageState, force: bool) -> BuildPlan:
    if force:
        return BuildPlan("build", "force=true")
    if state.image_id is None:
        return BuildPlan("build", f"image {tags[0]} does not exist")
    if state.build_hash != wanted_hash:
        if state.build_hash is None:
            return BuildPlan("build", f"image {tags[0]} has no {HASH_LABEL} label (not built by poststack)")
        return BuildPlan("build", "build inputs changed (context, Containerfile, build args or base image)")
    missing = [tag for tag in tags[1:] if tag not in state.tagged]
    if missing:
        return BuildPlan("tag", "additional tags missing", missing)
    return BuildPlan("none", "up to date: build hash matches")


def log_tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
