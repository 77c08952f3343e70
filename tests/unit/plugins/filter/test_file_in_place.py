"""The file_in_place filter the postgres and project_containers roles use to skip file tasks after one find."""
from ansible_collections.poststack.core.plugins.filter.file_in_place import file_in_place

FOUND = [
    {"path": "/s", "isdir": True, "isreg": False, "uid": 0, "gid": 0, "mode": "0755"},
    {"path": "/s/secrets/password", "isdir": False, "isreg": True, "uid": 999, "gid": 999, "mode": "0400",
     "checksum": "abc"},
]


def test_directory_and_file_in_place():
    assert file_in_place(FOUND, "/s", owner="0", group="0", mode="0755", type="directory")
    assert file_in_place(FOUND, "/s/secrets/password", owner=999, group=999, mode="0400", checksum="abc")
    assert file_in_place(FOUND, "/s/secrets/password", owner=999, group=999, mode="0400")  # content not compared


def test_any_difference_means_not_in_place():
    assert not file_in_place(FOUND, "/s", owner=0, group=0, mode="0700", type="directory")
    assert not file_in_place(FOUND, "/s", owner=0, group=0, mode="0755")  # a directory, not a file
    assert not file_in_place(FOUND, "/s/secrets/password", owner=0, group=999, mode="0400", checksum="abc")
    assert not file_in_place(FOUND, "/s/secrets/password", owner=999, group=0, mode="0400", checksum="abc")
    assert not file_in_place(FOUND, "/s/secrets/password", owner=999, group=999, mode="0400", checksum="def")
    assert not file_in_place(FOUND, "/s/other", owner=999, group=999, mode="0400")
    assert not file_in_place([], "/s", owner=0, group=0, mode="0755", type="directory")
    assert not file_in_place(None, "/s", owner=0, group=0, mode="0755", type="directory")
