"""Bad input for btrfs_subvolume on a real Btrfs (a loop device): refused with a message naming the path or option and
its value, and the subvolumes, their files, modes, properties and the quota state are as they were."""
import os
import uuid

import pytest

from btrfs_lab import REASON, loop_devices_of, sh, unmount_and_detach
from bad_input_lab import check_case, fill, module_case, run_cases

MODULE = "poststack.core.btrfs_subvolume"
NOT_CHANGED = "nothing was changed"
# (id, arguments, fragments of the message)
CASES = [
    ("relative-path", {"path": "relative/sub"}, ["path 'relative/sub' must be absolute"]),
    ("root-path", {"path": "/", "state": "absent"}, ["path '/' cannot be managed as a subvolume"]),
    ("delete-a-plain-directory", {"path": "{pool}/plain", "state": "absent"},
     ["{pool}/plain is not a Btrfs subvolume (it is a directory): refusing to delete it; " + NOT_CHANGED]),
    ("delete-with-nested-subvolumes", {"path": "{pool}/outer", "state": "absent"},
     ["{pool}/outer contains nested subvolumes ({pool}/outer/inner): set recursive=true to delete them too; "
      + NOT_CHANGED]),
    ("quota-not-a-size", {"path": "{pool}/data", "quota": "10X"}, ["quota '10X' is not a size", NOT_CHANGED]),
    ("quota-below-usage", {"path": "{pool}/data", "quota": "1M"},
     ["{pool}/data: quota 1.00MiB (1048576 bytes) is below the current usage", "raise the quota or free space first; "
      + NOT_CHANGED]),
    ("mode-not-octal", {"path": "{pool}/data", "mode": "rwx"},
     ["mode 'rwx' is not an octal mode: write it quoted, like '0750'", NOT_CHANGED]),
    ("owner-unknown", {"path": "{pool}/data", "owner": "bi-no-such-user"},
     ["owner 'bi-no-such-user' does not exist on this host: create it or give the numeric ID", NOT_CHANGED]),
    ("owner-with-state-absent", {"path": "{pool}/data", "state": "absent", "owner": "999"},
     ["options owner only apply to state=present, not state=absent; " + NOT_CHANGED]),
    ("snapshot-keep-zero", {"path": "{pool}/data", "state": "snapshot", "snapshot_keep": 0},
     ["snapshot_keep must be 1 or more (omit it to keep every snapshot); " + NOT_CHANGED]),
    ("snapshot-name-unknown-directive", {"path": "{pool}/data", "state": "snapshot", "snapshot_name": "{{name}}.%Q"},
     ["snapshot_name '{{name}}.%Q': unsupported directive %Q", NOT_CHANGED]),
    ("snapshot-name-with-a-slash", {"path": "{pool}/data", "state": "snapshot", "snapshot_name": "../{{name}}"},
     ["snapshot_name '../{{name}}' gives '../data', which is not a file name", NOT_CHANGED]),
    ("snapshot-of-a-directory", {"path": "{pool}/plain", "state": "snapshot"},
     ["{pool}/plain is not a Btrfs subvolume: only subvolumes can be snapshotted", NOT_CHANGED]),
    ("snapshot-dir-not-on-btrfs", {"path": "{pool}/data", "state": "snapshot", "snapshot_dir": "{outside}/snaps"},
     ["{outside}/snaps is not on a Btrfs filesystem", NOT_CHANGED]),
    ("path-not-on-btrfs", {"path": "{outside}/sub"}, ["{outside}/sub is not on a Btrfs filesystem", NOT_CHANGED]),
    ("missing-parent-without-parents", {"path": "{pool}/missing/sub", "parents": False},
     ["{pool}/missing/sub: parent directory {pool}/missing does not exist (set parents=true to create it)",
      NOT_CHANGED]),
    ("change-a-read-only-snapshot", {"path": "{pool}/.snapshots/data.ro", "mode": "0700"},
     ["{pool}/.snapshots/data.ro is a read-only subvolume (a snapshot?) and cannot be changed", NOT_CHANGED]),
    ("path-is-a-file", {"path": "{pool}/data/file.bin"},
     ["{pool}/data/file.bin exists and is not a Btrfs subvolume (it is a file)", NOT_CHANGED]),
    ("unknown-compression", {"path": "{pool}/data", "compression": "lz4"},
     ["value of compression must be one of: zstd, lzo, zlib, none, default, got: lz4"]),
]


def snapshot_script(pool, outside):
    """Subvolumes (id, uuid, parent, flags), quota state, compression, and every path's mode, owner and content."""
    return "{% raw %}" + "\n".join([
        "set -e -o pipefail",
        f"btrfs subvolume list -a -u -q {pool} | sed 's/ gen [0-9]*//'",  # a sync commits: generations move
        f"for s in {pool}/data {pool}/outer {pool}/outer/inner; do btrfs property get $s ro; "
        "btrfs property get $s compression || true; done",
        f"btrfs qgroup show --raw {pool} 2>&1 || true",
        f"find {pool} {outside} -exec stat -c '%n %F %a %u:%g %s' {{}} + | sort",
        f"find {pool} {outside} -type f -exec sha1sum {{}} + | sort",
    ]) + "{% endraw %}"


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """A 1 GiB Btrfs: data (a subvolume with a 4 MiB file), outer/inner (nested), plain (a directory), a read-only
    snapshot of data; quotas off. Yields (mount point, a directory outside it)."""
    if REASON:
        pytest.skip(REASON)
    root = tmp_path_factory.mktemp("bi-btrfs")
    image, mountpoint, outside = str(root / "pool.img"), str(root / "pool"), str(root / "outside")
    os.mkdir(mountpoint)
    os.mkdir(outside)
    sh("truncate", "-s", "1G", image)
    sh("mkfs.btrfs", "-q", "-L", f"bi-{uuid.uuid4().hex[:6]}", image)
    sh("mount", "-o", "loop", image, mountpoint)
    try:
        for sub in ("data", "outer", "outer/inner"):
            sh("btrfs", "subvolume", "create", f"{mountpoint}/{sub}")
        os.mkdir(f"{mountpoint}/plain")
        with open(f"{mountpoint}/data/file.bin", "wb") as handle:
            handle.write(os.urandom(4 * 1024 * 1024))
        sh("btrfs", "filesystem", "sync", mountpoint)
        os.mkdir(f"{mountpoint}/.snapshots")
        sh("btrfs", "subvolume", "snapshot", "-r", f"{mountpoint}/data", f"{mountpoint}/.snapshots/data.ro")
        yield mountpoint, outside
    finally:
        unmount_and_detach(mountpoint, image)
        assert loop_devices_of(image) == [], f"loop device left attached to {image}"


@pytest.fixture(scope="module")
def cases(pool):
    names = {"pool": pool[0], "outside": pool[1]}
    run = run_cases([(case_id, module_case(case_id, MODULE, fill(args, **names))) for case_id, args, _f in CASES],
                    {}, snapshot_script(*pool))
    run.table = {case_id: fill(fragments, **names) for case_id, _a, fragments in CASES}
    return run


@pytest.mark.parametrize("case_id", [case[0] for case in CASES])
def test_bad_btrfs_input_is_refused_and_changes_nothing(cases, case_id):
    check_case(cases, case_id, cases.table[case_id], secrets=())
    assert not cases.failures[case_id].get("commands"), cases.failures[case_id]


def test_quotas_stay_off_and_the_subvolumes_are_those_of_before(cases, pool):
    assert "quotas not enabled" in cases.snapshots["before"] or "not enabled" in cases.snapshots["before"]
    listed = sh("btrfs", "subvolume", "list", pool[0]).stdout
    assert sorted(line.split()[-1] for line in listed.splitlines()) == [".snapshots/data.ro", "data", "outer",
                                                                        "outer/inner"]
    assert cases.run.rc == 0
