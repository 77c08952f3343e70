"""Helpers of the btrfs integration tests: whether this host can run them, loop devices, unmounting."""
import os
import shutil
import subprocess
import time


def _btrfs_unavailable():
    if os.geteuid() != 0:
        return "needs root to make and mount a loop-device filesystem"
    for tool in ("btrfs", "mkfs.btrfs", "losetup"):
        if shutil.which(tool) is None:
            return "%s is not installed (apt-get install btrfs-progs)" % tool
    with open("/proc/filesystems", encoding="utf-8") as known:
        if "btrfs" not in known.read():
            subprocess.run(["modprobe", "btrfs"], check=False, capture_output=True)
            with open("/proc/filesystems", encoding="utf-8") as again:
                if "btrfs" not in again.read():
                    return "this kernel has no Btrfs support (btrfs missing from /proc/filesystems, modprobe failed)"
    return None


REASON = _btrfs_unavailable()


def sh(*argv, check=True):
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


def loop_devices_of(image):
    out = sh("losetup", "-j", image, check=False).stdout
    return [line.split(":", 1)[0] for line in out.splitlines() if line]


def unmount_and_detach(mountpoint, image, timeout=30.0):
    """Unmount, then wait for the loop device to go: mount -o loop sets autoclear, but the kernel releases the
    device asynchronously after umount (seconds on a busy host). Detach explicitly what is still there."""
    while sh("findmnt", "--mountpoint", mountpoint, check=False).returncode == 0:
        if sh("umount", mountpoint, check=False).returncode != 0:
            sh("umount", "-l", mountpoint, check=False)
            break
    deadline = time.monotonic() + timeout
    while loop_devices_of(image) and time.monotonic() < deadline:
        time.sleep(0.2)
        if time.monotonic() > deadline - timeout / 2:
            for device in loop_devices_of(image):
                sh("losetup", "-d", device, check=False)
