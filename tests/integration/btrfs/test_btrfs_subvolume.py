"""poststack.core.btrfs_subvolume through ansible-playbook on a real Btrfs loop-device filesystem.

Every change runs twice (changed, then not changed); the state is checked on disk, not only in the results."""
import os
import subprocess

from ansible_run import run_playbook

MiB = 1024 * 1024


def task(name, check=False, **args):
    entry = {"name": name, "poststack.core.btrfs_subvolume": args, "diff": True, "ignore_errors": True}
    if check:
        entry["check_mode"] = True
    return entry


def play(*tasks):
    return [{"hosts": "localhost", "gather_facts": False, "tasks": list(tasks)}]


def btrfs(*argv, check=True):
    return subprocess.run(["btrfs"] + list(argv), capture_output=True, text=True, check=check,
                          env=dict(os.environ, LC_ALL="C"))


def is_subvolume(path):
    return os.path.isdir(path) and os.lstat(path).st_ino == 256


def qgroup_limit(path):
    rows = btrfs("qgroup", "show", "--raw", "-re", "-f", path).stdout.splitlines()[2:]
    return rows[0].split()[3]


def test_create_change_delete_nested_path(pool):
    path = os.path.join(pool, "tenants", "a", "@pg")
    wanted = dict(path=path, owner="999", group="999", mode="0700", compression="zstd")
    lzo = dict(wanted)
    lzo["compression"] = "lzo"
    run = run_playbook(play(
        task("plan", check=True, **wanted),
        {"name": "stat after check", "ansible.builtin.stat": {"path": os.path.dirname(path)}},
        task("create", **wanted),
        task("create again", **wanted),
        task("change compression", **lzo),
        task("change compression again", **lzo),
    ))
    plan = run.results("plan")
    assert plan["changed"] is True and plan["commands"] == []
    assert [step["action"] for step in plan["plan"]] == ["mkdir", "mkdir", "create_subvolume", "set_compression",
                                                         "chown", "chmod"]
    assert run.results("stat after check")["stat"]["exists"] is False
    created = run.results("create")
    assert created["changed"] is True
    assert created["commands"] == [step["command"] for step in plan["plan"]]
    assert created["diff"]["before"]["state"] == "absent" and created["diff"]["after"]["mode"] == "0700"
    assert created["subvolume"]["readonly"] is False and created["subvolume"]["id"] >= 256
    again = run.results("create again")
    assert again["changed"] is False and again["plan"] == [] and again["commands"] == []
    assert again["diff"]["before"] == again["diff"]["after"]
    changed = run.results("change compression")
    assert changed["changed"] is True
    assert [step["command"] for step in changed["plan"]] == [["btrfs", "property", "set", path, "compression", "lzo"]]
    assert (changed["diff"]["before"]["compression"], changed["diff"]["after"]["compression"]) == ("zstd", "lzo")
    assert run.results("change compression again")["changed"] is False

    assert is_subvolume(path) and not is_subvolume(os.path.dirname(path))
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (999, 999, 0o700)
    assert btrfs("property", "get", path, "compression").stdout.strip() == "compression=lzo"

    os.makedirs(os.path.join(path, "inner"))
    btrfs("subvolume", "create", os.path.join(path, "inner", "@nested"))
    run = run_playbook(play(
        task("delete without recursive", path=path, state="absent"),
        task("delete", path=path, state="absent", recursive=True),
        task("delete again", path=path, state="absent", recursive=True),
    ))
    refused = run.results("delete without recursive")
    assert refused["failed"] is True and "contains nested subvolumes" in refused["msg"]
    assert "recursive=true" in refused["msg"]
    deleted = run.results("delete")
    assert deleted["changed"] is True
    assert deleted["deleted"] == [os.path.join(path, "inner", "@nested"), path]
    assert run.results("delete again")["changed"] is False
    assert not os.path.exists(path) and os.path.isdir(os.path.dirname(path))


def test_quota_is_enforced_in_a_podman_container_and_reported(pool, podman_image):
    path = os.path.join(pool, "@postgres-psql1")
    wanted = dict(path=path, owner="999", group="999", mode="0700", quota="20M")
    run = run_playbook(play(task("create", **wanted), task("create again", **wanted)))
    created = run.results("create")
    assert created["changed"] is True
    assert [s["action"] for s in created["plan"]] == ["create_subvolume", "enable_quota", "rescan_quota",
                                                      "limit_quota", "chown", "chmod"]
    assert created["quota"]["limit"] == 20 * MiB and created["quota"]["referenced"] < MiB
    assert run.results("create again")["changed"] is False

    container = subprocess.run(
        ["podman", "run", "--rm", "--user", "999:999", "-v", "%s:/data:Z" % path, podman_image, "sh", "-c",
         "echo written-by-999 > /data/ok && dd if=/dev/urandom of=/data/big bs=1M count=40"],
        capture_output=True, text=True, check=False)
    assert container.returncode != 0, container.stdout + container.stderr
    assert "Disk quota exceeded" in container.stderr
    with open(os.path.join(path, "ok"), encoding="utf-8") as written:
        assert written.read() == "written-by-999\n"
    assert os.stat(os.path.join(path, "ok")).st_uid == 999

    too_small = dict(wanted)
    too_small["quota"] = "1M"
    run = run_playbook(play(task("report", **wanted), task("below usage", **too_small)))
    report = run.results("report")
    assert report["changed"] is False
    assert report["quota"]["limit"] == 20 * MiB and report["quota"]["limit_human"] == "20.00MiB"
    assert 10 * MiB < report["quota"]["referenced"] <= 21 * MiB
    refused = run.results("below usage")
    assert refused["failed"] is True and refused.get("changed") is False
    assert "quota 1.00MiB (1048576 bytes) is below the current usage" in refused["msg"]
    assert qgroup_limit(path) == str(20 * MiB)


def test_snapshot_retention_keeps_exactly_n(pool):
    path = os.path.join(pool, "@pg")
    snapdir = os.path.join(pool, ".snapshots")
    btrfs("subvolume", "create", path)
    with open(os.path.join(path, "PG_VERSION"), "w", encoding="utf-8") as marker:
        marker.write("15\n")
    repeated = {"name": "snapshot", "poststack.core.btrfs_subvolume": {
        "path": path, "state": "snapshot", "snapshot_dir": snapdir, "snapshot_keep": 3},
        "loop": [1, 2, 3, 4, 5], "loop_control": {"pause": 1}}
    daily = dict(path=path, state="snapshot", snapshot_dir=snapdir, snapshot_name="{name}.daily-%Y%m%d",
                 snapshot_keep=2)
    run = run_playbook(play(
        task("would snapshot", check=True, path=path, state="snapshot", snapshot_dir=snapdir, snapshot_keep=3),
        {"name": "stat after check", "ansible.builtin.stat": {"path": snapdir}},
        repeated,
        task("daily", **daily),
        task("daily again", **daily),
    ))
    assert run.results("would snapshot")["changed"] is True
    assert run.results("stat after check")["stat"]["exists"] is False
    runs = run.results("snapshot")["results"]
    assert [r["changed"] for r in runs] == [True] * 5
    assert [len(r["snapshots"]) for r in runs] == [1, 2, 3, 3, 3]
    assert [len(r["deleted"]) for r in runs] == [0, 0, 0, 1, 1]
    created = [r["snapshot"] for r in runs]
    assert len(set(created)) == 5
    assert runs[-1]["snapshots"] == created[2:]
    first_daily = run.results("daily")
    assert first_daily["changed"] is True and first_daily["snapshot"].startswith(snapdir + "/@pg.daily-")
    again = run.results("daily again")
    assert again["changed"] is False and again["snapshots"] == [first_daily["snapshot"]]

    on_disk = sorted(os.path.join(snapdir, name) for name in os.listdir(snapdir))
    assert on_disk == sorted(created[2:] + [first_daily["snapshot"]])
    for snapshot in on_disk:
        assert btrfs("property", "get", snapshot, "ro").stdout.strip() == "ro=true"
        with open(os.path.join(snapshot, "PG_VERSION"), encoding="utf-8") as copied:
            assert copied.read() == "15\n"
    try:
        with open(os.path.join(on_disk[0], "new"), "w", encoding="utf-8"):
            pass
        raise AssertionError("a read-only snapshot accepted a new file")
    except OSError as exc:
        assert exc.errno == 30  # EROFS


def test_bad_input_is_refused_and_changes_nothing(pool, tmp_path):
    not_btrfs = str(tmp_path / "plain" / "@x")
    directory = os.path.join(pool, "just-a-directory")
    os.mkdir(directory)
    estimated = os.path.join(pool, "@estimated")
    btrfs("subvolume", "create", estimated)
    with open(os.path.join(estimated, "blob"), "wb") as blob:
        blob.write(os.urandom(5 * MiB))
    run = run_playbook(play(
        task("not on btrfs", path=not_btrfs, owner="999"),
        task("unknown compression", path=estimated, compression="lz4"),
        task("a directory", path=directory, mode="0700"),
        task("quota below estimated usage", path=estimated, quota="1M"),
        task("option for another state", path=estimated, state="snapshot", quota="1G"),
    ))
    failed = run.results("not on btrfs")
    assert failed["failed"] is True
    assert failed["msg"].startswith("%s is not on a Btrfs filesystem: it is on " % not_btrfs)
    assert not os.path.exists(os.path.dirname(not_btrfs))
    compression = run.results("unknown compression")
    assert compression["failed"] is True and "value of compression must be one of" in compression["msg"]
    assert btrfs("property", "get", estimated, "compression").stdout.strip() == ""
    plain = run.results("a directory")
    assert plain["failed"] is True and "exists and is not a Btrfs subvolume" in plain["msg"]
    assert os.stat(directory).st_mode & 0o7777 == 0o755
    quota = run.results("quota below estimated usage")
    assert quota["failed"] is True and "is below the current usage 5.00MiB" in quota["msg"]
    assert "quotas not enabled" in btrfs("qgroup", "show", "-f", estimated, check=False).stderr
    other = run.results("option for another state")
    assert other["failed"] is True and "only apply to state=present" in other["msg"]
    assert not os.path.exists(os.path.join(pool, ".snapshots"))
