"""The progress callback's failure message: what one of the collection's plugins refused, without the path Ansible
took to it; other messages as they are."""
import pytest

from ansible_collections.poststack.core.plugins.callback.progress import _message, _render

REFUSAL = ("/tmp/p (the current directory) is not a poststack project: it has none of .env, poststack.yml, "
           "migrations, containers")


@pytest.mark.parametrize("wrapped", [
    "Validating arguments against arg spec 'main' - Run PostgreSQL in a container per project: Task failed: "
    "The lookup plugin 'poststack.core.project' failed: " + REFUSAL,
    "Task failed: Finalization of task args for 'ansible.builtin.set_fact' failed: Error while resolving value for "
    "'__migrations_project_is_core': The lookup plugin 'poststack.core.project' failed: " + REFUSAL,
    "Task failed: The filter plugin 'poststack.core.ports_to_check' failed: " + REFUSAL,
])
def test_own_plugin_refusal_is_shown_without_the_wrapping(wrapped):
    assert _message({"msg": wrapped}) == REFUSAL


def test_other_messages_are_kept_whole():
    other = ("Task failed: Error while resolving value for 'login_user': The filter plugin 'ansible.builtin.urldecode'"
             " failed: 'NoneType' object has no attribute 'replace'")
    assert _message({"msg": other}) == other
    assert _message({"stderr": "  boom\n"}) == "boom"
    assert _message({}) == "failed (no message)"


def test_a_status_record_is_shown_a_key_a_line():
    record = {"node": "node1", "mode": "host", "containers": [], "cluster": ["Node List:", "  * Online: [ node1 ]"]}
    assert _render(record) == "node: node1\nmode: host\ncontainers: (none)\ncluster:\n  Node List:\n    * Online: [ node1 ]"
    assert _render(["a", 1]) == "a\n1" and _render("text") == "text"
