# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record the output of the real btrfs-progs and findmnt commands the module parses, as unit-test fixtures.

Run as root on a host with btrfs-progs:  python tests/unit/plugins/module_utils/record_btrfs_fixtures.py
It makes a 1 GiB Btrfs file system on a loop file in a temporary directory, runs each command with LC_ALL=C,
writes fixtures/btrfs-progs.json ({name: {argv, rc, stdout, stderr}}) and removes everything it made.
The temporary directory is replaced by /srv/pool in the stored output so that fixtures do not depend on it.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "btrfs-progs.json")
MOUNT_ALIAS = "/srv/pool"


def main() -> int:
    recorded = {}
    work = tempfile.mkdtemp(prefix="btrfs-fixtures-")
    image = os.path.join(work, "pool.img")
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    env = dict(os.environ, LC_ALL="C", LANG="C")

    def sh(*argv):
        subprocess.run(list(argv), check=True, env=env, stdout=subprocess.DEVNULL)

    def record(name, *argv):
        proc = subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False)
        alias = [a.replace(mnt, MOUNT_ALIAS) for a in argv]
        recorded[name] = {"argv": alias, "rc": proc.returncode, "stdout": proc.stdout.replace(mnt, MOUNT_ALIAS),
                          "stderr": proc.stderr.replace(mnt, MOUNT_ALIAS)}

    sub = os.path.join(mnt, "@postgres-psql1")
    snapdir = os.path.join(mnt, ".snapshots")
    snap1 = os.path.join(snapdir, "@postgres-psql1.20261125T120000Z")
    snap2 = os.path.join(snapdir, "@postgres-psql1.20261125T130000Z")
    mounted = False
    try:
        sh("truncate", "-s", "1G", image)
        sh("mkfs.btrfs", "-q", "-L", "fixtures", image)
        sh("mount", "-o", "loop", image, mnt)
        mounted = True
        record("version", "btrfs", "--version")
        record("findmnt_btrfs", "findmnt", "-n", "-P", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS,UUID", "-T", mnt)
        record("findmnt_ext4", "findmnt", "-n", "-P", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS,UUID", "-T", "/")
        sh("btrfs", "subvolume", "create", sub)
        os.mkdir(os.path.join(sub, "data"))
        sh("btrfs", "subvolume", "create", os.path.join(sub, "nested"))
        os.mkdir(snapdir)
        sh("btrfs", "subvolume", "snapshot", "-r", sub, snap1)
        sh("btrfs", "subvolume", "snapshot", "-r", sub, snap2)
        record("show_subvolume", "btrfs", "subvolume", "show", sub)
        record("show_snapshot", "btrfs", "subvolume", "show", snap1)
        record("show_snapshot2", "btrfs", "subvolume", "show", snap2)
        record("show_not_subvolume", "btrfs", "subvolume", "show", os.path.join(sub, "data"))
        record("show_not_btrfs", "btrfs", "subvolume", "show", "/")
        record("qgroup_show_disabled", "btrfs", "qgroup", "show", "--raw", "-re", "-f", sub)
        with open(os.path.join(sub, "data", "blob"), "wb") as blob:
            blob.write(os.urandom(3 * 1024 * 1024))
        sh("btrfs", "filesystem", "sync", sub)
        record("filesystem_du", "btrfs", "filesystem", "du", "-s", "--raw", sub)
        record("quota_enable", "btrfs", "quota", "enable", mnt)
        record("quota_rescan", "btrfs", "quota", "rescan", "-w", mnt)
        record("qgroup_show_unlimited", "btrfs", "qgroup", "show", "--raw", "-re", "-f", sub)
        record("qgroup_limit", "btrfs", "qgroup", "limit", str(100 * 1024 * 1024), sub)
        record("qgroup_show_limited", "btrfs", "qgroup", "show", "--raw", "-re", "-f", sub)
        record("qgroup_show_all", "btrfs", "qgroup", "show", "--raw", "-re", mnt)
        record("show_subvolume_quota", "btrfs", "subvolume", "show", sub)
        record("property_get_unset", "btrfs", "property", "get", sub, "compression")
        record("property_set_zstd", "btrfs", "property", "set", sub, "compression", "zstd")
        record("property_get_zstd", "btrfs", "property", "get", sub, "compression")
        record("property_set_none", "btrfs", "property", "set", sub, "compression", "none")
        record("property_get_none", "btrfs", "property", "get", sub, "compression")
        record("property_set_bogus", "btrfs", "property", "set", sub, "compression", "bogus")
        record("create_existing", "btrfs", "subvolume", "create", sub)
        record("delete_with_nested", "btrfs", "subvolume", "delete", sub)
    finally:
        if mounted:
            subprocess.run(["umount", mnt], check=False)
        subprocess.run(["rm", "-rf", work], check=False)
    with open(OUT, "w", encoding="utf-8") as handle:
        json.dump(recorded, handle, indent=1, sort_keys=True)
        handle.write("\n")
    print("wrote %d commands to %s" % (len(recorded), OUT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
