"""ControllerWatch: real processes (a stand-in for ansible-playbook killed with SIGKILL) and a made-up /proc."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

from ansible_collections.poststack.core.plugins.module_utils.controller import ControllerWatch

CHILD = textwrap.dedent("""\
    import json, sys, time
    from ansible_collections.poststack.core.plugins.module_utils.controller import ControllerWatch
    watch = ControllerWatch()
    with open(sys.argv[1] + ".watched", "w") as out:
        json.dump([pid for pid, _start, _what in watch.watched], out)
    for _ in range(400):
        reason = watch.gone()
        if reason:
            with open(sys.argv[1] + ".gone", "w") as out:
                out.write(reason)
            break
        time.sleep(0.05)
""")


def wait_for_file(path, timeout=20):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < end, "%s never appeared" % path
        time.sleep(0.05)
    time.sleep(0.1)
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def start_chain(tmp_path, top_name):
    """<top_name> (a Python script) -> sh -c -> the module stand-in, as ansible-playbook's worker starts a module."""
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / top_name).write_text(textwrap.dedent("""\
        import subprocess, sys
        subprocess.run(["/bin/sh", "-c", '"$0" "$1" "$2" && true', sys.executable, sys.argv[1], sys.argv[2]])
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, str(tmp_path / top_name), str(tmp_path / "child.py"),
                             str(tmp_path / "result")], env=env)


def test_a_killed_ansible_process_is_noticed_by_the_module_it_started(tmp_path):
    top = start_chain(tmp_path, "ansible-playbook")
    try:
        watched = json.loads(wait_for_file(str(tmp_path / "result.watched")))
        assert watched[-1] == top.pid, "the watch goes up to the ansible process"
        assert os.getpid() not in watched, "and not beyond it"
        assert len(watched) == 2  # sh -c, then the ansible stand-in
        assert not os.path.exists(str(tmp_path / "result.gone"))
        top.send_signal(signal.SIGKILL)
        reason = wait_for_file(str(tmp_path / "result.gone"), 10)
        assert reason.startswith("ansible process python") and reason.endswith(
            " (pid %d), which started this module, ended" % top.pid), reason
    finally:
        top.kill()
        top.wait()
        subprocess.run(["pkill", "-f", str(tmp_path / "child.py")], check=False)


def test_without_ansible_among_the_ancestors_only_the_parent_is_watched(tmp_path):
    top = start_chain(tmp_path, "launcher")
    try:
        watched = json.loads(wait_for_file(str(tmp_path / "result.watched")))
        assert len(watched) == 1 and watched[0] != top.pid  # the sh -c between them
    finally:
        top.kill()
        top.wait()
        subprocess.run(["pkill", "-f", str(tmp_path / "child.py")], check=False)


def fake_process(proc, pid, ppid, start, argv, name="python3"):
    directory = proc / str(pid)
    directory.mkdir(parents=True, exist_ok=True)
    fields = ["S", str(ppid)] + ["0"] * 17 + [str(start)] + ["0"] * 10
    (directory / "stat").write_text("%d (%s) %s\n" % (pid, name, " ".join(fields)))
    (directory / "cmdline").write_bytes(b"\0".join(arg.encode() for arg in argv) + b"\0")


def test_a_reused_pid_counts_as_ended_and_the_chain_stops_above_ansible(tmp_path):
    proc = tmp_path / "proc"
    parent = os.getppid()
    fake_process(proc, parent, 900001, 10, ["/bin/sh", "-c", "python3 x"], name="sh")
    fake_process(proc, 900001, 900002, 11, ["python3", "/usr/bin/ansible-playbook", "site.yml"])
    fake_process(proc, 900002, 900003, 12, ["/usr/bin/ansible-playbook", "site.yml"], name="ansible-playboo")
    fake_process(proc, 900003, 1, 13, ["bash"], name="bash")
    watch = ControllerWatch(proc=str(proc))
    assert [pid for pid, _start, _what in watch.watched] == [parent, 900001, 900002]
    assert watch.gone() is None
    fake_process(proc, 900002, 1, 99, ["sleep", "5"], name="sleep")  # the pid now belongs to another process
    assert watch.gone() == "ansible process ansible-playboo (pid 900002), which started this module, ended"


def test_without_proc_nothing_is_watched(tmp_path):
    watch = ControllerWatch(proc=str(tmp_path / "nothing"))
    assert watch.watched == [] and watch.gone() is None
