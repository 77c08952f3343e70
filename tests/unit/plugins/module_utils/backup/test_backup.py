"""Unit tests of plugins/module_utils/backup/: manifest, catalog, checksums, retention, commands, settings.

Everything here is pure Python on temporary files; the integration tests run the same code against PostgreSQL.
"""
import datetime as dt
from collections import namedtuple
import hashlib
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.poststack.core.plugins.module_utils import backup as bk
from ansible_collections.poststack.core.plugins.plugin_utils import backup_bundle

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
Made = namedtuple("Made", "name path")


def make_backup(directory, database, when, content=b"PGDMP fake dump", fmt="custom", encryption="none",
                manifest=True, prefix=""):
    """A backup file plus (optionally) its manifest, as poststack_backup writes them."""
    name = bk.backup_name(prefix, database, when)
    filename = bk.backup_filename(name, fmt, encryption)
    path = os.path.join(directory, filename)
    files = []
    if fmt == "directory":
        os.makedirs(path)
        for rel, data in (("toc.dat", content), ("3001.dat.gz", content * 2)):
            with open(os.path.join(path, rel), "wb") as handle:
                handle.write(data)
        files = bk.tree_files(path)
        size, digest = bk.tree_digest(files)
    else:
        with open(path, "wb") as handle:
            handle.write(content)
        size, digest = len(content), hashlib.sha256(content).hexdigest()
    if manifest:
        data = bk.Manifest(name=name, database=database, format=fmt, path=filename, created_at=bk.iso(when),
                           finished_at=bk.iso(when), duration_seconds=0.1, size=size, sha256=digest,
                           pg_version="15.20", pg_dump_version="15.20", encryption=encryption, owner="app", files=files)
        bk.write_atomic(os.path.join(directory, name + bk.MANIFEST_SUFFIX), data.to_json())
    return Made(name, path)


# --- names, manifest ---------------------------------------------------------------------------------------------

def test_names_sort_by_time_and_carry_the_format():
    name = bk.backup_name("daily-", "app", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert name == "daily-app_20260102T030405Z"
    assert bk.backup_filename(name, "custom", "none") == name + ".dump"
    assert bk.backup_filename(name, "custom", "age") == name + ".dump.age"
    assert bk.backup_filename(name, "custom", "openssl") == name + ".dump.enc"
    assert bk.backup_filename(name, "directory", "none") == name + ".dir"


def test_manifest_round_trip_and_required_fields(tmp_path):
    name = make_backup(str(tmp_path), "app", NOW).name
    with open(tmp_path / (name + bk.MANIFEST_SUFFIX), encoding="utf-8") as handle:
        data = json.load(handle)
    manifest = bk.Manifest.from_dict(data)
    assert manifest.database == "app" and manifest.size == len(b"PGDMP fake dump")
    assert manifest.created == NOW
    assert oct(os.stat(tmp_path / (name + bk.MANIFEST_SUFFIX)).st_mode & 0o777) == "0o600"
    del data["sha256"]
    with pytest.raises(bk.BackupError, match="manifest lacks sha256"):
        bk.Manifest.from_dict(data)


def test_parse_time_treats_naive_times_as_utc():
    assert bk.parse_time("2026-11-25T12:00:00") == NOW
    assert bk.parse_time("2026-11-25T12:00:00Z") == NOW
    assert bk.parse_time("2026-11-25T13:00:00+01:00") == NOW


# --- catalog and validation ----------------------------------------------------------------------------------------

def test_scan_lists_newest_first_and_flags_files_without_manifest(tmp_path):
    make_backup(str(tmp_path), "app", NOW - dt.timedelta(days=2))
    newest = make_backup(str(tmp_path), "app", NOW).name
    make_backup(str(tmp_path), "app", NOW - dt.timedelta(days=1), manifest=False)
    make_backup(str(tmp_path), "other", NOW)
    (tmp_path / "app_20261125T130000Z.dump.partial").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("not a backup")
    entries = bk.scan(str(tmp_path), "app")
    assert [entry.name for entry in entries][0] == "app_20261125T130000Z.dump.partial"
    assert [entry.good for entry in entries] == [False, True, False, True]
    assert entries[1].name == newest
    assert "no manifest" in entries[2].problems[0]
    assert "unfinished" in entries[0].problems[0]
    assert len(bk.scan(str(tmp_path))) == 5
    assert bk.scan(str(tmp_path / "missing")) == []


def test_check_detects_truncation_and_corruption(tmp_path):
    truncated = make_backup(str(tmp_path), "app", NOW - dt.timedelta(hours=2), content=b"A" * 1000).path
    corrupt = make_backup(str(tmp_path), "app", NOW - dt.timedelta(hours=1), content=b"B" * 1000).path
    good_name = make_backup(str(tmp_path), "app", NOW - dt.timedelta(hours=3), content=b"C" * 1000).name
    with open(truncated, "r+b") as handle:
        handle.truncate(600)
    with open(corrupt, "r+b") as handle:
        handle.seek(500)
        handle.write(b"X")
    entries = {entry.path: bk.check_entry(entry) for entry in bk.scan(str(tmp_path))}
    assert "600 bytes, the manifest says 1000: truncated" in entries[truncated].problems[0]
    assert "corrupt" in entries[corrupt].problems[0]
    best = bk.newest_good(bk.scan(str(tmp_path)))
    assert best is not None and best.name == good_name


def test_check_of_a_directory_dump_names_the_changed_file(tmp_path):
    path = make_backup(str(tmp_path), "app", NOW, fmt="directory").path
    entry = bk.check_entry(bk.scan(str(tmp_path))[0])
    assert entry.good, entry.problems
    with open(os.path.join(path, "toc.dat"), "ab") as handle:
        handle.write(b"!")
    os.unlink(os.path.join(path, "3001.dat.gz"))
    entry = bk.check_entry(bk.scan(str(tmp_path))[0])
    assert not entry.good
    assert any("toc.dat: changed" in problem for problem in entry.problems)
    assert any("3001.dat.gz: missing" in problem for problem in entry.problems)


def test_missing_backup_file_and_unreadable_manifest(tmp_path):
    path = make_backup(str(tmp_path), "app", NOW).path
    os.unlink(path)
    entry = bk.check_entry(bk.scan(str(tmp_path))[0])
    assert "is missing (the manifest names it)" in entry.problems[0]
    (tmp_path / "app_20261124T000000Z.manifest.json").write_text("{not json")
    broken = [entry for entry in bk.scan(str(tmp_path)) if entry.manifest is None]
    assert broken and "unreadable" in broken[0].problems[0]


def test_inventory_summarises_good_and_bad(tmp_path):
    make_backup(str(tmp_path), "app", NOW - dt.timedelta(days=1))
    newest = make_backup(str(tmp_path), "app", NOW).path
    with open(newest, "ab") as handle:
        handle.write(b"tail")
    result = bk.backup_inventory(str(tmp_path), "app", verify="newest")
    assert result["good"] == 1 and result["bad"] == 1
    assert result["newest_good"]["created_at"] == bk.iso(NOW - dt.timedelta(days=1))
    trusting = bk.backup_inventory(str(tmp_path), "app", verify="none")
    assert trusting["newest_good"]["created_at"] == bk.iso(NOW)
    with pytest.raises(bk.BackupError, match="verify must be"):
        bk.backup_inventory(str(tmp_path), verify="some")
    with pytest.raises(bk.BackupError, match="give backup_dir"):
        bk.backup_inventory("")


# --- retention ---------------------------------------------------------------------------------------------------

def entries_at(tmp_path, ages_days, bad=()):
    for index, age in enumerate(ages_days):
        path = make_backup(str(tmp_path), "app", NOW - dt.timedelta(days=age), content=b"dump%d" % index).path
        if index in bad:
            with open(path, "ab") as handle:
                handle.write(b"corruption")
    entries = bk.scan(str(tmp_path), "app")
    for entry in entries:
        bk.check_entry(entry)
    return entries


def deleted_ages(plan):
    return sorted(round((NOW - bk.parse_time(decision.created_at)).days) for decision in plan.delete)


def test_retention_by_count(tmp_path):
    plan = bk.plan_retention(entries_at(tmp_path, [0, 1, 2, 3, 4]), NOW, keep_count=2)
    assert deleted_ages(plan) == [2, 3, 4]
    assert all("beyond the newest 2" in decision.reason for decision in plan.delete)


def test_retention_by_age(tmp_path):
    plan = bk.plan_retention(entries_at(tmp_path, [0, 1, 8, 9]), NOW, keep_days=7)
    assert deleted_ages(plan) == [8, 9]


def test_retention_never_deletes_the_newest_good_backup(tmp_path):
    # Every backup is older than the limit, and the two newest are corrupt: the newest good one stays.
    entries = entries_at(tmp_path, [10, 11, 12], bad=(0, 1))
    plan = bk.plan_retention(entries, NOW, keep_count=1, keep_days=7)
    kept = plan.keep
    assert len(kept) == 1 and kept[0].reason == "newest good backup"
    assert round((NOW - bk.parse_time(kept[0].created_at)).days) == 12


def test_bad_backups_do_not_count_and_stay_until_old(tmp_path):
    entries = entries_at(tmp_path, [0, 1, 2, 3], bad=(1,))
    plan = bk.plan_retention(entries, NOW, keep_count=2)
    assert deleted_ages(plan) == [3]
    reasons = {round((NOW - bk.parse_time(d.created_at)).days): d.reason for d in plan.decisions}
    assert reasons[1] == "not good; kept until it is old"


def test_retention_protects_the_backup_just_made_and_zero_disables(tmp_path):
    entries = entries_at(tmp_path, [0, 1, 2])
    assert bk.plan_retention(entries, NOW).delete == []
    protect = entries[2].name
    plan = bk.plan_retention(entries, NOW, keep_count=1, protect=protect)
    assert protect not in [decision.name for decision in plan.delete]
    with pytest.raises(bk.BackupError, match=">= 0"):
        bk.plan_retention(entries, NOW, keep_count=-1)


def test_apply_retention_removes_file_and_manifest(tmp_path):
    entries = entries_at(tmp_path, [0, 1])
    plan = bk.plan_retention(entries, NOW, keep_count=1)
    removed = bk.apply_retention(plan, str(tmp_path))
    assert len(removed) == 2 and all(not os.path.exists(path) for path in removed)
    assert len(os.listdir(tmp_path)) == 2


# --- commands ----------------------------------------------------------------------------------------------------

def test_exec_and_dump_argv_use_the_socket_and_no_password():
    argv = bk.exec_argv("/usr/bin/podman", "pg", bk.pg_dump_argv("app db", "custom", 6, 1, None), interactive=False)
    assert argv[:5] == ["/usr/bin/podman", "exec", "--user", "postgres", "pg"]
    assert "--format=c" in argv and argv[-2:] == ["--dbname", "app db"] and "--no-password" in argv
    directory = bk.pg_dump_argv("app", "directory", 0, 4, "/data/postgres/backups/x.dir.partial")
    assert "--format=d" in directory and "--jobs=4" in directory and "/data/postgres/backups/x.dir.partial" in directory
    assert bk.pg_restore_argv("db", 3, None)[-1] == "db"
    assert bk.pg_restore_argv("db", 3, "/data/x.dump")[-2:] == ["--jobs=3", "/data/x.dump"]


def test_encryption_commands_keep_secrets_out_of_argv():
    assert bk.encrypt_argv("none", []) is None
    assert bk.encrypt_argv("age", ["age1abc", "age1def"]) == ["age", "-r", "age1abc", "-r", "age1def"]
    openssl = bk.encrypt_argv("openssl", [])
    assert openssl[-2:] == ["-pass", "env:" + bk.PASSPHRASE_ENV]
    assert bk.decrypt_argv("age", "/tmp/id")[-2:] == ["-i", "/tmp/id"]
    with pytest.raises(bk.BackupError, match="identity"):
        bk.decrypt_argv("age", None)
    with pytest.raises(bk.BackupError, match="recipient"):
        bk.encrypt_argv("age", [])


def test_container_path_maps_only_below_the_mount(tmp_path):
    root = str(tmp_path)
    assert bk.container_path(os.path.join(root, "logical", "a.dump"), root) == "/data/postgres/backups/logical/a.dump"
    assert bk.container_path(root, root) == "/data/postgres/backups"
    assert bk.container_path("/elsewhere/a.dump", root) is None
    assert bk.container_path("/elsewhere/a.dump", None) is None


def test_default_backup_dir():
    assert bk.default_backup_dir("/srv/b", None, "pg") == "/srv/b"
    assert bk.default_backup_dir("", "/var/lib/vol", "pg") == "/var/lib/vol/logical"
    with pytest.raises(bk.BackupError, match="no mount at /data/postgres/backups"):
        bk.default_backup_dir("", None, "pg")


def test_resolve_runtime():
    assert bk.resolve_runtime("auto", {"docker": "/usr/bin/docker"}.get) == "/usr/bin/docker"
    assert bk.resolve_runtime("auto", {"podman": "/p", "docker": "/d"}.get) == "/p"
    with pytest.raises(bk.BackupError, match="not found"):
        bk.resolve_runtime("podman", {}.get)
    with pytest.raises(bk.BackupError, match="unknown container runtime"):
        bk.resolve_runtime("lxc", {}.get)


def test_resolve_runtime_takes_an_absolute_path(tmp_path):
    binary = tmp_path / "podman"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert bk.resolve_runtime(str(binary), {}.get) == str(binary)
    with pytest.raises(bk.BackupError, match="not an executable podman or docker"):
        bk.resolve_runtime(str(tmp_path / "lxc"), {}.get)


def test_swap_renames_in_one_transaction_and_quotes_names():
    statements = bk.swap_sql('my"db', "my_db__restore_x", "my_db__replaced_y")
    assert statements[0] == 'ALTER DATABASE "my""db" ALLOW_CONNECTIONS false;'
    assert "'my\"db'" in statements[1] and "pg_terminate_backend" in statements[1]
    assert statements[2].startswith("BEGIN;") and statements[2].endswith("COMMIT;")
    assert statements[3] == 'DROP DATABASE "my_db__replaced_y" WITH (FORCE);'
    assert statements[4] == 'ALTER DATABASE "my""db" ALLOW_CONNECTIONS true;'
    assert bk.swap_sql("db", "new", None) == ['ALTER DATABASE "new" RENAME TO "db";']


def test_scratch_names_fit_in_an_identifier():
    name = bk.scratch_name("x" * 80, "restore_")
    assert len(name) <= bk.MAX_IDENTIFIER and "__restore_" in name
    assert bk.scratch_name("db", "restore_") != bk.scratch_name("db", "restore_")


def test_table_stats_sql_and_comparison():
    sql = bk.table_stats_sql(['public."Tab"', "s.t"])
    assert sql.count("UNION ALL") == 1 and 'FROM public."Tab" AS t' in sql and sql.endswith(";")
    assert "'public.\"Tab\"'" in sql
    assert bk.table_stats_sql([]) == ""
    source = {"a": {"rows": "1", "checksum": "5"}, "b": {"rows": "2", "checksum": "7"}}
    restored = {"a": {"rows": "1", "checksum": "5"}, "b": {"rows": "2", "checksum": "8"}, "c": {"rows": "0", "checksum": "0"}}
    differences = bk.compare_stats(source, restored)
    assert [item.table for item in differences] == ["b", "c"]
    assert differences[1].source is None
    assert bk.compare_stats(source, dict(source)) == []


def test_parse_rows_uses_the_unit_separator():
    assert bk.parse_rows("a|b\x1f1\x1f2\n\n", 3) == [["a|b", "1", "2"]]
    with pytest.raises(bk.BackupError, match="unexpected psql output"):
        bk.parse_rows("a\x1fb", 3)


# --- settings ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"format": "tar"}, "format must be one of"),
    ({"encryption": "rot13"}, "encryption must be one of"),
    ({"format": "directory", "encryption": "age", "age_recipients": ["age1x"]}, "encryption needs format=custom"),
    ({"encryption": "openssl"}, "needs a passphrase"),
    ({"encryption": "age"}, "needs age_recipients"),
    ({"compression": 10}, "between 0 and 9"),
    ({"jobs": 0}, "at least 1"),
    ({"database": ""}, "database is empty"),
])
def test_settings_validation(changes, message):
    settings = bk.DumpSettings(container="pg", database="app", backup_dir="/b")
    for key, value in changes.items():
        setattr(settings, key, value)
    with pytest.raises(bk.BackupError, match=message):
        settings.validate()


def test_settings_from_config_reads_the_passphrase_file(tmp_path):
    secret = tmp_path / "pass"
    secret.write_text("s3cret 'x'\n")
    settings = bk.settings_from_config({"container": "pg", "database": "app", "encryption": "openssl",
                                        "passphrase_file": str(secret)})
    assert settings.passphrase == "s3cret 'x'"
    assert "s3cret" not in repr(settings)
    with pytest.raises(bk.BackupError, match="unknown settings in the backup configuration: colour"):
        bk.settings_from_config({"container": "pg", "database": "app", "colour": "red"})


def test_command_line_reports_a_bad_configuration(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"container": "pg", "database": "app", "format": "zip"}))
    assert bk.cli(["--config", str(config)]) == (
        1, "", "poststack backup failed: format must be one of custom, directory, not 'zip'\n")
    rc, out, err = bk.cli(["--config", str(tmp_path / "missing.json")])
    assert rc == 1 and out == "" and "No such file" in err


def test_installed_command_is_one_file_that_runs_alone(tmp_path):
    """What the role installs: the bundle (backup package and runtime.py in one file), run from a directory
    where nothing of the collection is importable, as the cron job or timer runs it."""
    path, written = backup_bundle.write(str(tmp_path / "cache"))
    assert written and backup_bundle.write(str(tmp_path / "cache")) == (path, False), "the bytes depend on the sources"
    installed = tmp_path / "bin" / "poststack-backup"
    installed.parent.mkdir()
    installed.write_bytes(open(path, "rb").read())
    installed.chmod(0o755)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"container": "pg", "database": "app", "jobs": 0}))
    env = {"PATH": os.environ["PATH"]}  # no PYTHONPATH: only the bundle's own code
    for argv in ([str(installed)], [sys.executable, str(installed)]):
        proc = subprocess.run(argv + ["--config", str(config)], capture_output=True, text=True, check=False,
                              cwd="/", env=env)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr == "poststack backup failed: jobs must be at least 1\n"


def test_pipeline_to_file_hashes_what_it_writes_and_reports_failures(tmp_path):
    executor = bk.Executor()
    target = str(tmp_path / "out")
    size, digest = executor.pipeline_to_file([["printf", "hello"], ["tr", "a-z", "A-Z"]], target)
    assert (size, digest) == (5, hashlib.sha256(b"HELLO").hexdigest())
    assert open(target, "rb").read() == b"HELLO"
    assert oct(os.stat(target).st_mode & 0o777) == "0o600"
    with pytest.raises(bk.BackupError, match=r"sh -c .* failed \(rc=3\): boom"):
        executor.pipeline_to_file([["sh", "-c", "echo boom >&2; exit 3"], ["cat"]], target)
    assert [command.rc for command in executor.commands][-2:] == [3, 0]


@pytest.mark.parametrize("changes, message", [
    ({"keep_count": -1}, "keep_count -1 is negative: give 0 (no limit) or more; nothing was changed"),
    ({"keep_days": -0.5}, "keep_days -0.5 is negative"),
    ({"compression": 10}, "compression must be between 0 and 9, not 10; nothing was changed"),
    ({"prefix": "../up_"}, "prefix '../up_' is not usable in a file name"),
    ({"prefix": ".hidden_"}, "prefix '.hidden_' is not usable in a file name"),
    ({"database": "a/b"}, "database 'a/b' holds a '/'"),
    ({"encryption": "age", "age_recipients": ["not-a-key"]}, "age_recipients[0] 'not-a-key' is not an age public key"),
])
def test_bad_dump_settings_are_refused_before_anything_runs(changes, message):
    settings = bk.DumpSettings(**dict({"container": "c", "database": "db"}, **changes))
    with pytest.raises(bk.BackupError) as info:
        settings.validate()
    assert message in str(info.value)


def test_an_age_secret_key_given_as_recipient_is_refused_without_echoing_it():
    secret = "AGE-SECRET-KEY-1" + "Q" * 58
    with pytest.raises(bk.BackupError) as info:
        bk.DumpSettings(container="c", database="db", encryption="age", age_recipients=[secret]).validate()
    assert "age_recipients[0] is an age secret key" in str(info.value) and secret not in str(info.value)


def test_good_recipients_and_prefixes_pass():
    bk.DumpSettings(container="c", database="db", prefix="nightly-1.", encryption="age",
                    age_recipients=["age1" + "q" * 58, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@host"]).validate()


@pytest.mark.parametrize("changes, message", [
    ({"target": "x" * 64}, "is 64 bytes long; PostgreSQL names have at most 63 bytes"),
    ({"target": "template1"}, "target 'template1' is a maintenance database"),
    ({"target": "app", "compare_with": "app"}, "compare_with 'app' is the target itself"),
    ({"target": ""}, "target is empty"),
])
def test_bad_restore_names_are_refused(changes, message):
    settings = bk.RestoreSettings(container="c", **changes)
    with pytest.raises(bk.BackupError) as info:
        bk.check_restore_names(settings)
    assert message in str(info.value)
    bk.check_restore_names(bk.RestoreSettings(container="c", target="x" * 63, compare_with="app"))


def test_key_check_tells_the_right_passphrase_from_a_wrong_one():
    check = bk.key_check("correct horse")
    assert "correct horse" not in check
    assert check.startswith(f"pbkdf2-sha256${bk.OPENSSL_ITERATIONS}$")
    assert bk.key_matches("correct horse", check) is True
    assert bk.key_matches("correct horsE", check) is False
    assert bk.key_check("correct horse") != check  # salted


@pytest.mark.parametrize("check", ["", "pbkdf2-sha256$x$00$00", "md5$1$00$00", "pbkdf2-sha256$1$zz$00", "a$b"])
def test_key_check_unknown_or_damaged_means_no_answer(check):
    assert bk.key_matches("anything", check) is None


def test_old_manifest_without_key_check_reads():
    data = {"name": "app-20261125T120000Z", "database": "app", "format": "custom", "path": "x.dump.enc",
            "created_at": "2026-11-25T12:00:00Z", "size": 1, "sha256": "00", "encryption": "openssl"}
    assert bk.Manifest.from_dict(data).key_check == ""
