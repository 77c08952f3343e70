"""Stat before read: a run whose migration files did not change reads none of them; a changed, new or too recent
file is read; the texts come when a step needs them, checked against the kept checksums."""
import json
import os
import stat
import time

import pytest

from ansible_collections.poststack.core.plugins.module_utils.migrations import DiscoveryError, discover
from ansible_collections.poststack.core.plugins.module_utils.migrations.checksum_cache import ChecksumCache
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
    return ChecksumCache(str(tmp_path / "cache" / "m.json"), now=time.time() + later)


@pytest.fixture
def opened(monkeypatch):
    """Every file discovery opens, by name."""
    seen = []
    real = open

    def spy(path, *args, **kwargs):
        seen.append(os.path.basename(str(path)))
        return real(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    return seen


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
    directory = tmp_path / "m"
    directory.mkdir()
    write(directory, FILES)
    cache = cache_at(tmp_path)
    discover(str(directory), "auto", cache)
    cache.save()
    # changed "just now" as the next run sees it: within 2 s of its clock
    write(directory, {"003_c.sql": "CREATE TABLE c (id bigint);\n"}, when=time.time() + 4)
    cache = cache_at(tmp_path)
    found = {m.version: m for m in discover(str(directory), "auto", cache)}
    assert found[3].sql == "CREATE TABLE c (id bigint);\n" and found[1].sql is None
    cache.save()
    kept = json.load(open(cache.path, encoding="utf-8"))["entries"]
    assert len(kept) == 2, "the recent file's entry was kept (or another was lost)"


def test_an_entry_of_a_file_that_went_is_dropped(tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    write(directory, FILES)
    cache = cache_at(tmp_path)
    discover(str(directory), "auto", cache)
    cache.save()
    os.unlink(str(directory / "003_c.sql"))
    cache = cache_at(tmp_path)
    discover(str(directory), "auto", cache)
    cache.save()
    assert len(json.load(open(cache.path, encoding="utf-8"))["entries"]) == 2


def test_a_file_changed_between_discovery_and_load_is_refused(tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    write(directory, FILES)
    cache = cache_at(tmp_path)
    discover(str(directory), "auto", cache)
    cache.save()
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
