"""Stat before read: a run whose migration files did not change reads none of them; a changed, new or too recent
file is read; the texts come when a step needs them, checked against the kept checksums."""
import json
import os
import stat
import time

import pytest

from ansible_collections.poststack.core.plugins.module_utils.migrations import DiscoveryError, discover
from ansible_collections.poststack.core.plugins.module_utils.migrations.checksum_cache import ChecksumCache
from ansible_collections.poststack.core.plugins.module_utils.migrations.files import CODE_VERSION
from ansible_collections.poststack.core.plugins.module_utils.migrations.plan import AppliedMigration, plan_rollback

FILES = {"001_a.sql": "CREATE TABLE a (id int);\n", "001_a.rollback.sql": "DROP TABLE a;\n",
         "001_a.verify.sql": "SELECT id FROM a;\n", "002_b.sql": "-- migrate:up\nCREATE TABLE b (id int);\n"
         "-- migrate:down\nDROP TABLE b;\n", "003_c.sql": "CREATE TABLE c (id int);\n"}
AN_HOUR_AGO = time.time() - 3600


def write(directory, files, when=AN_HOUR_AGO):
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        os.utime(str(path), (when, when))
    return str(directory)


def cache_at(tmp_path, later=5.0):
    """The cache as a run ``later`` seconds from now sees it (a file's change time cannot be set back, and one
    changed within the last 2 s is not kept)."""
    return ChecksumCache(str(tmp_path / "cache" / "m.json"), CODE_VERSION, now=time.time() + later)


def saved(tmp_path):
    """A directory of FILES an hour old, read once through a cache that was saved: (the directory, the cache)."""
    directory = tmp_path / "m"
    directory.mkdir()
    write(directory, FILES)
    cache = cache_at(tmp_path)
    discover(str(directory), "auto", cache)
    cache.save()
    return str(directory), cache.path


def test_unchanged_files_are_not_read_again_and_their_texts_come_on_load(tmp_path, opened):
    (tmp_path / "m").mkdir()
    directory = write(tmp_path / "m", FILES)
    writer = cache_at(tmp_path)
    first = discover(directory, "auto", writer)
    assert not os.path.exists(writer.path), "discover saved the cache (its caller does)"
    writer.save()
    assert stat.S_IMODE(os.stat(writer.path).st_mode) == 0o600
    del opened[:]
    again = discover(directory, "auto", cache_at(tmp_path))
    assert [name for name in opened if name.endswith(".sql")] == [], "a file was read"
    assert [(m.version, m.checksum, m.rollback_checksum, m.no_transaction) for m in again] == \
        [(m.version, m.checksum, m.rollback_checksum, m.no_transaction) for m in first]
    assert again[0].sql is None and again[0].rollback_path.endswith("001_a.rollback.sql")
    assert again[1].rollback_path == again[1].path  # dbmate's down part
    for cached, read in zip(again, first):
        cached.load()
        assert (cached.sql, cached.rollback_sql, cached.verify_sql) == (read.sql, read.rollback_sql, read.verify_sql)


def test_a_changed_file_is_read_and_a_recent_one_is_not_kept(tmp_path):
    directory = tmp_path / saved(tmp_path)[0]
    # changed "just now" as the next run sees it: within 2 s of its clock
    write(directory, {"003_c.sql": "CREATE TABLE c (id bigint);\n"}, when=time.time() + 4)
    cache = cache_at(tmp_path)
    found = {m.version: m for m in discover(str(directory), "auto", cache)}
    assert found[3].sql == "CREATE TABLE c (id bigint);\n" and found[1].sql is None
    cache.save()
    kept = json.load(open(cache.path, encoding="utf-8"))["entries"]
    assert len(kept) == 2, "the recent file's entry was kept (or another was lost)"


def test_an_entry_of_a_file_that_went_is_dropped(tmp_path):
    directory = tmp_path / saved(tmp_path)[0]
    os.unlink(str(directory / "003_c.sql"))
    cache = cache_at(tmp_path)
    discover(str(directory), "auto", cache)
    cache.save()
    assert len(json.load(open(cache.path, encoding="utf-8"))["entries"]) == 2


def test_a_file_changed_between_discovery_and_load_is_refused(tmp_path):
    directory = tmp_path / saved(tmp_path)[0]
    item = discover(str(directory), "auto", cache_at(tmp_path))[2]
    write(directory, {"003_c.sql": "CREATE TABLE c (id text);\n"})
    with pytest.raises(DiscoveryError, match="003_c.sql changed while this run read it"):
        item.load()


def test_a_cache_that_cannot_be_read_is_only_a_cache(tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    write(directory, FILES)
    cache = cache_at(tmp_path)
    os.makedirs(os.path.dirname(cache.path))
    with open(cache.path, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    found = discover(str(directory), "auto", cache_at(tmp_path))
    assert all(item.sql is not None for item in found)


def test_rollback_planning_sees_a_rollback_file_it_has_not_read(tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    write(directory, {"001_a.sql": "CREATE TABLE a (id int);\n", "001_a.rollback.sql": "DROP TABLE a;\n"})
    cache = cache_at(tmp_path)
    discover(str(directory), "auto", cache)
    cache.save()
    files = discover(str(directory), "auto", cache_at(tmp_path))
    assert files[0].rollback_sql is None and files[0].rollback_checksum is not None

    row = AppliedMigration(1, "a", files[0].checksum, None, None, False, False, False, "", "", 0)  # no rollback SQL kept
    plan = plan_rollback(files, {1: row}, 0)
    assert [step.version for step in plan.steps] == [1]


def all_read(directory, tmp_path):
    return all(item.sql is not None for item in discover(directory, "auto", cache_at(tmp_path)))


def test_an_edit_that_keeps_size_and_mtime_is_seen(tmp_path):
    directory, _path = saved(tmp_path)
    target = os.path.join(directory, "003_c.sql")
    info = os.stat(target)
    with open(target, "w", encoding="utf-8") as handle:
        handle.write("CREATE TABLE x (id int);\n")  # the same length
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    found = {m.version: m for m in discover(directory, "auto", cache_at(tmp_path, later=5))}
    assert found[3].sql == "CREATE TABLE x (id int);\n", "the change time did not give the edit away"


def test_a_rollback_file_added_or_removed_is_seen(tmp_path):
    directory, _path = saved(tmp_path)
    write(tmp_path / "m", {"003_c.rollback.sql": "DROP TABLE c;\n"})
    found = {m.version: m for m in discover(directory, "auto", cache_at(tmp_path))}
    assert found[3].rollback_sql == "DROP TABLE c;\n"
    os.unlink(os.path.join(directory, "001_a.rollback.sql"))
    found = {m.version: m for m in discover(directory, "auto", cache_at(tmp_path))}
    assert found[1].rollback_checksum is None


WRONG_TYPE = {"checksum": 1, "no_transaction": False, "rollback": None, "rollback_checksum": None,
              "rollback_no_transaction": False}


@pytest.mark.parametrize("entry", [{"checksum": "x"}, [1], WRONG_TYPE])
def test_an_entry_of_another_shape_is_not_used(tmp_path, entry):
    directory, path = saved(tmp_path)
    data = json.load(open(path, encoding="utf-8"))
    data["entries"] = {key: entry for key in data["entries"]}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    assert all_read(directory, tmp_path)


def test_a_cache_of_other_code_or_that_others_can_write_is_not_used(tmp_path):
    directory, path = saved(tmp_path)
    assert not all_read(directory, tmp_path), "the cache was not used at all"
    os.chmod(path, 0o666)
    assert all_read(directory, tmp_path)
    os.chmod(path, 0o600)
    assert all(item.sql is not None for item in discover(directory, "auto", ChecksumCache(
        path, "another-version", now=time.time() + 5)))


def test_cache_files_unused_for_a_month_go(tmp_path):
    _directory, path = saved(tmp_path)
    old = os.path.join(os.path.dirname(path), "0" * 32 + ".json")
    with open(old, "w", encoding="utf-8") as handle:
        handle.write("{}")
    os.utime(old, (time.time() - 40 * 86400, time.time() - 40 * 86400))
    cache = cache_at(tmp_path)
    cache.put("something", {})
    cache.save()
    assert not os.path.exists(old) and os.path.exists(path)
