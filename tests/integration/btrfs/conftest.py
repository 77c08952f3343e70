"""A real Btrfs filesystem on a loop file for the btrfs tests, made and removed by the fixtures."""
import os
import shutil
import uuid

import pytest

from btrfs_lab import REASON, loop_devices_of, sh, unmount_and_detach


@pytest.fixture
def pool(tmp_path):
    """A fresh 1 GiB Btrfs filesystem mounted at tmp_path/pool; yields the mount point."""
    if REASON:
        pytest.skip(REASON)
    image = str(tmp_path / "pool.img")
    mountpoint = str(tmp_path / "pool")
    os.mkdir(mountpoint)
    sh("truncate", "-s", "1G", image)
    sh("mkfs.btrfs", "-q", "-L", "pool-%s" % uuid.uuid4().hex[:6], image)
    sh("mount", "-o", "loop", image, mountpoint)
    try:
        yield mountpoint
    finally:
        unmount_and_detach(mountpoint, image)
        assert loop_devices_of(image) == [], "loop device left attached to %s" % image


@pytest.fixture
def podman_image():
    image = os.environ.get("POSTSTACK_BASE_IMAGE", "")
    assert shutil.which("podman") and image, "podman or POSTSTACK_BASE_IMAGE missing: run through `make integration`"
    assert sh("podman", "image", "exists", image, check=False).returncode == 0, \
        "base image %s is not there: `make bootstrap` builds it" % image
    return image
