"""Role poststack.core.btrfs_storage on a loop file it creates itself: layout, idempotence, fstab, remount
from fstab (what a reboot does), a node subvolume writable by UID 999 inside a podman container."""
import os
import subprocess

import pytest

from ansible_run import run_playbook
from btrfs_lab import REASON, loop_devices_of, unmount_and_detach


def role_play(**variables):
    return [{"hosts": "localhost", "gather_facts": False,
             "roles": [{"role": "poststack.core.btrfs_storage", "vars": variables}]}]


@pytest.fixture
def lab(tmp_path):
    if REASON:
        pytest.skip(REASON)
    image = str(tmp_path / "images" / "pgtwin.img")
    mountpoint = str(tmp_path / "pgtwin")
    fstab = tmp_path / "fstab"
    fstab.write_text("# scratch fstab of the btrfs_storage test\n")
    variables = dict(btrfs_storage_mountpoint=mountpoint, btrfs_storage_loop_file=image, btrfs_storage_loop_size="1G",
                     btrfs_storage_nodes=["psql1", "psql2"], btrfs_storage_shared=True, btrfs_storage_quota="256M",
                     btrfs_storage_compression="zstd", btrfs_storage_fstab=True, btrfs_storage_fstab_path=str(fstab))
    try:
        yield variables
    finally:
        unmount_and_detach(mountpoint, image)
        assert loop_devices_of(image) == []


def mode_of(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid, st.st_mode & 0o7777


def test_role_lays_out_seed_004_idempotently_and_survives_a_remount(lab, podman_image):
    mountpoint = lab["btrfs_storage_mountpoint"]
    first = run_playbook(role_play(**lab))
    assert first.failed == 0 and first.rc == 0, first.stdout[-3000:]
    assert first.changed > 0
    second = run_playbook(role_play(**lab))
    assert second.rc == 0 and second.changed == 0, [t["task"]["name"] for t in second.tasks
                                                    if t["hosts"]["localhost"].get("changed")]
    # The package task costs seconds under load and was shown idempotent by the second run.
    lab["btrfs_storage_install_packages"] = False
    check = run_playbook(role_play(**lab), check=True)
    assert check.rc == 0 and check.changed == 0

    findmnt = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,OPTIONS", "--mountpoint", mountpoint],
                             capture_output=True, text=True, check=True).stdout
    assert findmnt.startswith("btrfs") and "noatime" in findmnt
    for node in ("psql1", "psql2"):
        root = os.path.join(mountpoint, "@postgres-" + node)
        assert os.lstat(root).st_ino == 256, "%s is not a subvolume" % root
        assert mode_of(root) == (999, 999, 0o750)
        assert mode_of(os.path.join(root, "data")) == (999, 999, 0o700)
        assert mode_of(os.path.join(root, "config")) == (999, 999, 0o750)
        assert mode_of(os.path.join(root, "archive")) == (999, 999, 0o750)
    assert os.lstat(os.path.join(mountpoint, "@shared")).st_ino == 256
    assert mode_of(os.path.join(mountpoint, "@shared", "backups")) == (999, 999, 0o750)
    entries = [line.split() for line in open(lab["btrfs_storage_fstab_path"], encoding="utf-8")
               if line.strip() and not line.startswith("#")]
    assert entries == [[lab["btrfs_storage_loop_file"], mountpoint, "btrfs", "loop,noatime", "0", "0"]]

    data = os.path.join(mountpoint, "@postgres-psql1", "data")
    container = subprocess.run(
        ["podman", "run", "--rm", "--user", "999:999", "-v", "%s:/data:Z" % data, podman_image, "sh", "-c",
         "echo 15 > /data/PG_VERSION && cat /data/PG_VERSION && id -u"],
        capture_output=True, text=True, check=False)
    assert container.returncode == 0, container.stderr
    assert container.stdout.split() == ["15", "999"]
    assert os.stat(os.path.join(data, "PG_VERSION")).st_uid == 999

    # What a reboot does: the filesystem goes away, then mount(8) brings it back from the fstab line alone
    # (the loop option attaches a new loop device).
    unmount_and_detach(mountpoint, lab["btrfs_storage_loop_file"])
    assert not os.path.exists(os.path.join(data, "PG_VERSION"))
    subprocess.run(["mount", "-T", lab["btrfs_storage_fstab_path"], mountpoint], check=True)
    with open(os.path.join(data, "PG_VERSION"), encoding="utf-8") as version:
        assert version.read() == "15\n"
    after_remount = run_playbook(role_play(**lab))
    assert after_remount.rc == 0 and after_remount.changed == 0


def test_role_refuses_a_mount_point_without_btrfs_or_source(tmp_path):
    if REASON:
        pytest.skip(REASON)
    mountpoint = str(tmp_path / "nothing")
    run = run_playbook(role_play(btrfs_storage_mountpoint=mountpoint, btrfs_storage_install_packages=False))
    assert run.rc != 0 and run.changed == 0
    failed = [t["hosts"]["localhost"] for t in run.tasks if t["hosts"]["localhost"].get("failed")]
    assert len(failed) == 1
    assert "is not a mounted Btrfs filesystem nor a directory on one" in failed[0]["msg"]
    assert "btrfs_storage_loop_file" in failed[0]["msg"]
    assert not os.path.exists(mountpoint)


def test_role_uses_a_directory_of_a_btrfs_mounted_above(pool):
    """A host whose / (or /var) is Btrfs needs no filesystem of its own: the layout goes in a directory."""
    mountpoint = os.path.join(pool, "var", "lib", "pgtwin")
    variables = dict(btrfs_storage_mountpoint=mountpoint, btrfs_storage_nodes=["psql1"],
                     btrfs_storage_install_packages=False)
    first = run_playbook(role_play(**variables))
    assert first.rc == 0 and first.changed > 0, first.stdout[-3000:]
    assert run_playbook(role_play(**variables)).changed == 0
    root = os.path.join(mountpoint, "@postgres-psql1")
    assert os.lstat(root).st_ino == 256 and mode_of(os.path.join(root, "data")) == (999, 999, 0o700)
    assert subprocess.run(["findmnt", "--mountpoint", mountpoint], check=False).returncode == 1


def test_role_refuses_a_mount_point_that_holds_files(lab, tmp_path):
    """Mounting over files would hide them (a host-mode pgtwin state directory): refused before the loop file,
    the fstab entry or the filesystem are made; the files stay as they were."""
    mountpoint = lab["btrfs_storage_mountpoint"]
    os.makedirs(os.path.join(mountpoint, "data"))
    with open(os.path.join(mountpoint, "data", "PG_VERSION"), "w", encoding="ascii") as handle:
        handle.write("15\n")
    fstab_before = (tmp_path / "fstab").read_text()
    run = run_playbook(role_play(**lab))
    assert run.rc != 0 and run.changed == 0
    failed = [t["hosts"]["localhost"] for t in run.tasks if t["hosts"]["localhost"].get("failed")]
    assert len(failed) == 1
    assert "%s is not empty (data): mounting Btrfs there would hide it" % mountpoint in failed[0]["msg"]
    assert "Nothing was made or mounted" in failed[0]["msg"]
    assert not os.path.exists(lab["btrfs_storage_loop_file"])
    assert (tmp_path / "fstab").read_text() == fstab_before
    assert os.listdir(mountpoint) == ["data"] and os.listdir(os.path.join(mountpoint, "data")) == ["PG_VERSION"]


def test_role_never_destroys_another_filesystem_when_force_is_the_string_false(lab):
    """A loop file that holds ext4 is refused; btrfs_storage_force given as the string "false" (what
    `-e btrfs_storage_force=false` passes) counts as false, and the ext4 is still there."""
    image = lab["btrfs_storage_loop_file"]
    os.makedirs(os.path.dirname(image))
    subprocess.run(["truncate", "-s", "256M", image], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
    run = run_playbook(role_play(**dict(lab, btrfs_storage_force="false", btrfs_storage_fstab="false")))
    assert run.rc != 0
    failed = [t["hosts"]["localhost"] for t in run.tasks if t["hosts"]["localhost"].get("failed")]
    assert len(failed) == 1 and "btrfs_storage_force=true to destroy it" in failed[0]["msg"], failed
    probe = subprocess.run(["blkid", "-o", "value", "-s", "TYPE", image], capture_output=True, text=True, check=False)
    assert probe.stdout.strip() == "ext4"
