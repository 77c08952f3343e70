# Copyright: poststack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers, planner and runner of module_utils/btrfs.py, fed with output recorded from btrfs-progs 6.2
(fixtures/btrfs-progs.json, made by record_btrfs_fixtures.py on a real loop-device file system)."""

import json
import os
from datetime import datetime, timezone

import pytest

from ansible_collections.poststack.core.plugins.module_utils import btrfs

FIXTURES = json.load(open(os.path.join(os.path.dirname(__file__), "fixtures", "btrfs-progs.json"), encoding="utf-8"))
POOL = "/srv/pool"
SUB = POOL + "/@postgres-psql1"
SNAPDIR = POOL + "/.snapshots"
MiB = 1024 * 1024


def out(name):
    return FIXTURES[name]["stdout"]


class Replay:
    """Executor that answers recorded commands with their recorded output; other commands 'succeed' silently
    only when they are changes the test expects, so a planner asking for an unrecorded read fails the test."""

    def __init__(self, extra=None):
        self.answers = {tuple(f["argv"]): (f["rc"], f["stdout"], f["stderr"]) for f in FIXTURES.values()}
        self.answers.update(extra or {})
        self.ran = []

    def __call__(self, argv):
        self.ran.append(list(argv))
        key = tuple(argv)
        if key in self.answers:
            return self.answers[key]
        if argv[0] in ("mkdir", "chown", "chmod", "chcon") or argv[1:3] in (["subvolume", "create"],
                                                                            ["subvolume", "delete"],
                                                                            ["quota", "disable"]):
            return 0, "", ""
        raise AssertionError("unrecorded command: %r" % (argv,))


# ------------------------------------------------------------------------------------------------ parsers


def test_recorded_with_btrfs_progs_6_2():
    assert out("version").strip() == "btrfs-progs v6.2"


def test_findmnt_btrfs_and_ext4():
    mount = btrfs.parse_findmnt(out("findmnt_btrfs"))
    assert (mount.target, mount.fstype, mount.is_btrfs) == (POOL, "btrfs", True)
    assert mount.source.startswith("/dev/loop")
    assert mount.options["subvol"] == "/" and mount.options["subvolid"] == "5"
    assert len(mount.uuid) == 36
    root = btrfs.parse_findmnt(out("findmnt_ext4"))
    assert (root.target, root.fstype, root.is_btrfs, root.uuid) == ("/", "ext4", False, "")


def test_findmnt_empty_output_is_an_error():
    with pytest.raises(btrfs.BtrfsError, match="findmnt printed nothing"):
        btrfs.parse_findmnt("")


def test_subvolume_show_of_a_subvolume_and_its_snapshots():
    sub = btrfs.parse_subvolume_show(out("show_subvolume"))
    assert (sub.path, sub.name, sub.id, sub.parent_id, sub.top_level_id) == ("@postgres-psql1", "@postgres-psql1",
                                                                             256, 5, 5)
    assert sub.parent_uuid is None and sub.readonly is False
    assert sub.snapshots == [".snapshots/@postgres-psql1.20261125T120000Z", ".snapshots/@postgres-psql1.20261125T130000Z"]
    snap = btrfs.parse_subvolume_show(out("show_snapshot"))
    assert snap.readonly is True and snap.parent_uuid == sub.uuid and snap.id == 258 and snap.snapshots == []
    assert btrfs.parse_subvolume_show(out("show_snapshot2")).id == 259


def test_subvolume_show_with_quota_section_keeps_the_snapshot_list_clean():
    sub = btrfs.parse_subvolume_show(out("show_subvolume_quota"))
    assert len(sub.snapshots) == 2 and all(s.startswith(".snapshots/") for s in sub.snapshots)


def test_subvolume_show_garbage_is_an_error():
    with pytest.raises(btrfs.BtrfsError, match="cannot parse btrfs subvolume show"):
        btrfs.parse_subvolume_show("something\n\tName: x\n")


def test_qgroup_show():
    limited = btrfs.parse_qgroup_show(out("qgroup_show_limited"))
    assert len(limited) == 1
    row = limited[0]
    assert (row.qgroupid, row.max_referenced, row.max_exclusive) == ("0/256", 100 * MiB, None)
    assert row.path == "@postgres-psql1"
    assert row.referenced >= 3 * MiB and row.exclusive >= 3 * MiB
    assert btrfs.parse_qgroup_show(out("qgroup_show_unlimited"))[0].max_referenced is None
    every = btrfs.parse_qgroup_show(out("qgroup_show_all"))
    assert [r.qgroupid for r in every] == ["0/5", "0/256", "0/257", "0/258", "0/259"]


def test_property_get():
    assert btrfs.parse_property(out("property_get_unset"), "compression") is None
    assert btrfs.parse_property(out("property_get_zstd"), "compression") == "zstd"
    assert btrfs.parse_property(out("property_get_none"), "compression") == "none"


def test_filesystem_du_total():
    assert btrfs.parse_filesystem_du(out("filesystem_du")) == 3 * MiB


@pytest.mark.parametrize("text,size", [("1048576", MiB), ("512M", 512 * MiB), ("512MiB", 512 * MiB), ("10g", 10 << 30),
                                       ("1.5G", 3 << 29), ("none", None), ("NONE", None), ("2 T", 2 << 40)])
def test_parse_size(text, size):
    assert btrfs.parse_size(text) == size


@pytest.mark.parametrize("text", ["10X", "", "-5M", "0", "ten"])
def test_parse_size_refuses_bad_sizes(text):
    with pytest.raises(btrfs.BtrfsError, match="quota"):
        btrfs.parse_size(text)


def test_format_size():
    assert [btrfs.format_size(v) for v in (None, 100, 16384, 100 * MiB, 3 << 30)] == [
        "none", "100B", "16.00KiB", "100.00MiB", "3.00GiB"]


def test_parse_mode_and_ids():
    assert btrfs.parse_mode("0700") == 0o700 and btrfs.parse_mode("750") == 0o750
    for bad in ("u+rwx", "0800", "7"):
        with pytest.raises(btrfs.BtrfsError, match="octal"):
            btrfs.parse_mode(bad)
    assert btrfs.resolve_id("999", "owner") == 999 and btrfs.resolve_id("root", "group") == 0
    with pytest.raises(btrfs.BtrfsError, match="owner 'no-such-user-here' does not exist"):
        btrfs.resolve_id("no-such-user-here", "owner")


def test_snapshot_naming():
    naming = btrfs.SnapshotNaming(btrfs.DEFAULT_SNAPSHOT_NAME)
    now = datetime(2026, 11, 25, 13, 0, 0, tzinfo=timezone.utc)
    assert naming.render("@postgres-psql1", now) == "@postgres-psql1.20261125T130000Z"
    regex = naming.regex("@postgres-psql1")
    assert regex.match("@postgres-psql1.20261125T120000Z")
    assert not regex.match("@postgres-psql2.20261125T120000Z") and not regex.match("@postgres-psql1.manual")
    daily = btrfs.SnapshotNaming("daily-%Y-%m-%d-%%-%s")
    assert daily.render("x", now) == "daily-2026-11-25-%-" + str(int(now.timestamp()))
    with pytest.raises(btrfs.BtrfsError, match="unsupported directive %b"):
        btrfs.SnapshotNaming("{name}-%b").render("x", now)
    with pytest.raises(btrfs.BtrfsError, match="not a file name"):
        btrfs.SnapshotNaming("a/%Y").render("x", now)


# ------------------------------------------------------------------------------------------------- runner


def test_runner_error_names_path_command_and_stderr():
    runner = btrfs.Runner(Replay())
    with pytest.raises(btrfs.BtrfsCommandError) as caught:
        runner.run(SUB, ["btrfs", "subvolume", "create", SUB], changes=True)
    message = str(caught.value)
    assert message.startswith(SUB + ": `btrfs subvolume create %s` failed with rc=1" % SUB)
    assert "target path already exists" in message
    assert runner.commands == [["btrfs", "subvolume", "create", SUB]]


def test_runner_resolves_binaries_and_records_only_changes():
    seen = []

    def executor(argv):
        seen.append(argv)
        return 0, "", ""

    runner = btrfs.Runner(executor, {"btrfs": "/usr/bin/btrfs"})
    runner.run(SUB, ["btrfs", "subvolume", "show", SUB])
    runner.run(SUB, ["btrfs", "subvolume", "create", SUB], changes=True)
    assert seen[0][0] == "/usr/bin/btrfs"
    assert runner.commands == [["btrfs", "subvolume", "create", SUB]]


# ------------------------------------------------------------------------------------------------ planner


def subvolume_state(**overrides):
    qgroup = btrfs.parse_qgroup_show(out("qgroup_show_limited"))[0]
    state = btrfs.PathState(path=SUB, exists=True, is_dir=True, is_subvolume=True,
                            info=btrfs.parse_subvolume_show(out("show_subvolume")), uid=999, gid=999, mode=0o750,
                            compression=btrfs.parse_property(out("property_get_zstd"), "compression"),
                            quota_enabled=True, qgroup=qgroup)
    for key, value in overrides.items():
        setattr(state, key, value)
    return state


def observed_for(target, **overrides):
    observed = btrfs.Observed(target=target, mount=btrfs.parse_findmnt(out("findmnt_btrfs")))
    for key, value in overrides.items():
        setattr(observed, key, value)
    return observed


def wanted(**options):
    options.setdefault("path", SUB)
    return btrfs.Wanted(**options)


FULL = dict(owner=999, group=999, mode=0o750, compression="zstd", quota="100M")


def actions(operations):
    return [op.action for op in operations]


def test_present_new_nested_path_plans_parents_then_create_then_attributes():
    path = POOL + "/tenants/a/@pg"
    observed = observed_for(btrfs.PathState(path=path, quota_enabled=True),
                            missing_parents=[POOL + "/tenants", POOL + "/tenants/a"])
    plan = btrfs.plan(observed, wanted(path=path, **FULL))
    assert actions(plan) == ["mkdir", "mkdir", "create_subvolume", "limit_quota", "set_compression", "chown", "chmod"]
    assert plan[0].argv == ["mkdir", POOL + "/tenants"]
    assert plan[3].argv == ["btrfs", "qgroup", "limit", str(100 * MiB), path]
    assert plan[5].argv == ["chown", "999:999", path] and plan[6].argv == ["chmod", "0750", path]
    as_subvolumes = btrfs.plan(observed, wanted(path=path, parents_as_subvolumes=True))
    assert [op.argv[:3] for op in as_subvolumes[:2]] == [["btrfs", "subvolume", "create"]] * 2


def test_present_missing_parent_without_parents_is_an_error():
    observed = observed_for(btrfs.PathState(path=POOL + "/x/@pg"), missing_parents=[POOL + "/x"])
    with pytest.raises(btrfs.BtrfsError, match="parent directory /srv/pool/x does not exist"):
        btrfs.plan(observed, wanted(path=POOL + "/x/@pg", parents=False))


def test_present_matching_subvolume_plans_nothing_and_diff_is_equal():
    observed = observed_for(subvolume_state())
    want = wanted(**FULL)
    plan = btrfs.plan(observed, want)
    assert plan == []
    assert btrfs.describe(observed, want) == btrfs.describe_after(observed, want, plan)


def test_present_changes_only_what_differs_and_diff_shows_it():
    observed = observed_for(subvolume_state(mode=0o755, compression=None))
    options = dict(FULL)
    options["quota"] = "200M"
    want = wanted(**options)
    plan = btrfs.plan(observed, want)
    assert actions(plan) == ["limit_quota", "set_compression", "chmod"]
    assert plan[0].detail == "set quota limit (referenced) 200.00MiB, was 100.00MiB"
    before, after = btrfs.describe(observed, want), btrfs.describe_after(observed, want, plan)
    assert (before["mode"], after["mode"]) == ("0755", "0750")
    assert (before["compression"], after["compression"]) == ("default", "zstd")
    assert (before["quota"], after["quota"]) == ("100.00MiB", "200.00MiB")


def test_compression_default_clears_the_property_and_none_removes_a_quota():
    observed = observed_for(subvolume_state())
    plan = btrfs.plan(observed, wanted(compression="default", quota="none"))
    assert [op.argv for op in plan] == [["btrfs", "qgroup", "limit", "none", SUB],
                                        ["btrfs", "property", "set", SUB, "compression", ""]]


def test_quota_on_a_filesystem_without_quotas_enables_them_first():
    state = subvolume_state(quota_enabled=False, qgroup=None, usage_estimate=btrfs.parse_filesystem_du(out("filesystem_du")))
    plan = btrfs.plan(observed_for(state), wanted(quota="1G"))
    assert [op.argv for op in plan] == [["btrfs", "quota", "enable", POOL], ["btrfs", "quota", "rescan", "-w", POOL],
                                        ["btrfs", "qgroup", "limit", str(1 << 30), SUB]]


def test_quota_below_usage_is_refused_whether_usage_comes_from_qgroup_or_du():
    with pytest.raises(btrfs.BtrfsError, match=r"quota 1.00MiB \(1048576 bytes\) is below the current usage 3.02MiB"):
        btrfs.plan(observed_for(subvolume_state()), wanted(quota="1M"))
    estimated = subvolume_state(quota_enabled=False, qgroup=None,
                                usage_estimate=btrfs.parse_filesystem_du(out("filesystem_du")))
    with pytest.raises(btrfs.BtrfsError, match="below the current usage 3.00MiB"):
        btrfs.plan(observed_for(estimated), wanted(quota="2M"))


def test_present_refuses_directories_and_read_only_snapshots():
    directory = btrfs.PathState(path=SUB, exists=True, is_dir=True, uid=0, gid=0, mode=0o755)
    with pytest.raises(btrfs.BtrfsError, match="exists and is not a Btrfs subvolume"):
        btrfs.plan(observed_for(directory), wanted())
    snapshot = subvolume_state(info=btrfs.parse_subvolume_show(out("show_snapshot")))
    with pytest.raises(btrfs.BtrfsError, match=r"read-only subvolume \(a snapshot\?\) and cannot be changed \(mode 0700, was 0750\)"):
        btrfs.plan(observed_for(snapshot), wanted(mode=0o700))
    assert btrfs.plan(observed_for(snapshot), wanted(mode=0o750)) == []


def test_attribute_options_are_refused_outside_present_and_unknown_compression_is_refused():
    with pytest.raises(btrfs.BtrfsError, match="options mode, quota only apply to state=present, not state=absent"):
        btrfs.plan(observed_for(subvolume_state()), wanted(state="absent", mode=0o700, quota="1G"))
    with pytest.raises(btrfs.BtrfsError, match="compression 'lz4' is unknown"):
        btrfs.plan(observed_for(subvolume_state()), wanted(compression="lz4"))


def test_selinux_type_is_set_only_when_selinux_is_enabled():
    state = subvolume_state(selinux_type="unlabeled_t")
    enabled = btrfs.plan(observed_for(state, selinux_enabled=True), wanted(setype="container_file_t"))
    assert [op.argv for op in enabled] == [["chcon", "-t", "container_file_t", SUB]]
    assert btrfs.plan(observed_for(state, selinux_enabled=False), wanted(setype="container_file_t")) == []
    labelled = subvolume_state(selinux_type="container_file_t")
    assert btrfs.plan(observed_for(labelled, selinux_enabled=True), wanted(setype="container_file_t")) == []


def test_absent():
    assert btrfs.plan(observed_for(btrfs.PathState(path=SUB)), wanted(state="absent")) == []
    nested = subvolume_state(nested=[SUB + "/nested/deeper", SUB + "/nested"])
    with pytest.raises(btrfs.BtrfsError, match="contains nested subvolumes .*recursive=true"):
        btrfs.plan(observed_for(nested), wanted(state="absent"))
    plan = btrfs.plan(observed_for(nested), wanted(state="absent", recursive=True))
    assert [op.path for op in plan] == [SUB + "/nested/deeper", SUB + "/nested", SUB]
    directory = btrfs.PathState(path=SUB, exists=True, is_dir=True)
    with pytest.raises(btrfs.BtrfsError, match="refusing to delete"):
        btrfs.plan(observed_for(directory), wanted(state="absent"))


def recorded_snapshots():
    return [btrfs.Snapshot(SNAPDIR + "/" + info.name, info)
            for info in (btrfs.parse_subvolume_show(out("show_snapshot")),
                         btrfs.parse_subvolume_show(out("show_snapshot2")))]


def snapshot_observed(name, existing=None, **overrides):
    return observed_for(subvolume_state(), snapshots=recorded_snapshots(), snapshot_name=name,
                        snapshot_existing=existing, **overrides)


def test_snapshot_creates_the_new_one_and_keeps_the_newest():
    observed = snapshot_observed("@postgres-psql1.20261125T140000Z")
    want = wanted(state="snapshot", snapshot_keep=2)
    plan = btrfs.plan(observed, want)
    assert [op.argv for op in plan] == [
        ["btrfs", "subvolume", "snapshot", "-r", SUB, SNAPDIR + "/@postgres-psql1.20261125T140000Z"],
        ["btrfs", "subvolume", "delete", SNAPDIR + "/@postgres-psql1.20261125T120000Z"]]
    assert btrfs.snapshots_after(observed, plan, want) == [SNAPDIR + "/@postgres-psql1.20261125T130000Z",
                                                           SNAPDIR + "/@postgres-psql1.20261125T140000Z"]
    assert btrfs.describe_after(observed, want, plan)["snapshots"] == btrfs.snapshots_after(observed, plan, want)


def test_snapshot_with_an_existing_name_only_applies_retention():
    existing = subvolume_state(path=recorded_snapshots()[1].path, info=recorded_snapshots()[1].info)
    observed = snapshot_observed("@postgres-psql1.20261125T130000Z", existing)
    assert btrfs.plan(observed, wanted(state="snapshot", snapshot_keep=2)) == []
    assert btrfs.plan(observed, wanted(state="snapshot")) == []
    keep_one = btrfs.plan(observed, wanted(state="snapshot", snapshot_keep=1))
    assert [op.path for op in keep_one] == [SNAPDIR + "/@postgres-psql1.20261125T120000Z"]


def test_snapshot_name_taken_by_something_else_is_an_error():
    stranger = btrfs.PathState(path=SNAPDIR + "/x", exists=True, is_dir=True)
    with pytest.raises(btrfs.BtrfsError, match="exists and is not a snapshot of"):
        btrfs.plan(snapshot_observed("x", stranger), wanted(state="snapshot"))


def test_snapshot_dir_missing_is_created_and_writable_snapshots_on_request():
    observed = observed_for(subvolume_state(), snapshot_name="s1", snapshot_dir_missing=[POOL + "/snaps"])
    plan = btrfs.plan(observed, wanted(state="snapshot", snapshot_dir=POOL + "/snaps", snapshot_readonly=False))
    assert [op.argv for op in plan] == [["mkdir", POOL + "/snaps"],
                                        ["btrfs", "subvolume", "snapshot", SUB, POOL + "/snaps/s1"]]


def test_snapshot_of_missing_or_plain_directory_is_an_error():
    with pytest.raises(btrfs.BtrfsError, match="does not exist: nothing to snapshot"):
        btrfs.plan(observed_for(btrfs.PathState(path=SUB)), wanted(state="snapshot"))
    with pytest.raises(btrfs.BtrfsError, match="snapshot_keep must be 1 or more"):
        btrfs.plan(snapshot_observed("s"), wanted(state="snapshot", snapshot_keep=0))


# -------------------------------------------------------------------------------------------------- apply


def test_apply_runs_the_plan_in_order():
    replay = Replay()
    runner = btrfs.Runner(replay)
    plan = btrfs.plan(observed_for(btrfs.PathState(path=POOL + "/@new"), missing_parents=[]),
                      wanted(path=POOL + "/@new", owner=999, mode=0o700))
    btrfs.apply(runner, plan)
    assert runner.commands == [["btrfs", "subvolume", "create", POOL + "/@new"], ["chown", "999", POOL + "/@new"],
                               ["chmod", "0700", POOL + "/@new"]]


def test_apply_rechecks_usage_before_the_limit_and_undoes_the_quota_it_enabled():
    estimated = subvolume_state(quota_enabled=False, qgroup=None, usage_estimate=1)  # du saw (almost) nothing
    plan = btrfs.plan(observed_for(estimated), wanted(quota="2M"))
    assert actions(plan) == ["enable_quota", "rescan_quota", "limit_quota"]
    runner = btrfs.Runner(Replay())
    with pytest.raises(btrfs.BtrfsError, match="below the current usage 3.02MiB .*quotas were disabled again"):
        btrfs.apply(runner, plan)
    assert runner.commands == [["btrfs", "quota", "enable", POOL], ["btrfs", "quota", "rescan", "-w", POOL],
                               ["btrfs", "quota", "disable", POOL]]


def test_removing_a_limit_with_quotas_off_changes_nothing():
    state = subvolume_state(quota_enabled=False, qgroup=None, usage_estimate=3 * MiB)
    assert btrfs.plan(observed_for(state), wanted(quota="none")) == []


def test_mode_given_as_an_unquoted_yaml_number_is_its_value():
    assert btrfs.parse_mode(0o700) == 0o700
    with pytest.raises(btrfs.BtrfsError, match="out of range"):
        btrfs.parse_mode(0o17777)


def test_options_of_other_states_are_refused():
    with pytest.raises(btrfs.BtrfsError, match="snapshot_dir, snapshot_keep only apply to state=snapshot"):
        btrfs.plan(observed_for(subvolume_state()), wanted(snapshot_dir=SNAPDIR, snapshot_keep=2))
    with pytest.raises(btrfs.BtrfsError, match="recursive only applies to state=absent"):
        btrfs.plan(observed_for(subvolume_state()), wanted(recursive=True))
