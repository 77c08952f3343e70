"""Logical backups and restores against a real PostgreSQL container, through Ansible (modules and role entry points).

Shows: each change twice (changed, then not changed); a corrupt or truncated backup is refused by checksum with a
clear message and the target is untouched; a restore that fails half-way never drops the target; the restore drill
(verify-backup) finds a difference; encryption keeps plaintext and secrets out of files and output; the scheduled
(cron) command really makes a backup.
"""
import json
import os
import shlex
import subprocess

from ansible_run import run_playbook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def play(tasks, **variables):
    return [{"name": "backup test", "hosts": "localhost", "gather_facts": False, "vars": variables, "tasks": tasks}]


def module(name, register="out", **args):
    return {"name": register, f"poststack.core.{name}": args, "register": register}


def role(tasks_from="main", **variables):
    include = {"name": "poststack.core.backup", "tasks_from": tasks_from}
    return {"name": f"role {tasks_from}", "ansible.builtin.include_role": include, "vars": variables}


def ok(run):
    assert run.rc == 0 and run.failed == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run


def failed_msg(run, task):
    assert run.rc != 0, "the playbook should have failed"
    return run.results(task)["msg"]


def in_role(name):
    return "poststack.core.backup : " + name


def manifests(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".manifest.json"))


def test_backup_is_a_change_each_time_check_mode_writes_nothing_and_retention_settles(lab, backup_dir):
    lab.seed("shop")
    args = dict(container=lab.name, database="shop", backup_dir=backup_dir, keep_count=5)
    checked = ok(run_playbook(play([module("poststack_backup", **args)]), check=True))
    assert checked.results("out")["changed"] and checked.results("out")["backup"]["path"].startswith(backup_dir)
    assert checked.results("out")["created_dir"] is True, "the directory is missing: a real run creates it"
    assert not os.path.exists(backup_dir)

    first = ok(run_playbook(play([module("poststack_backup", **args), module("poststack_backup", "again", **args)])))
    made = [first.results("out"), first.results("again")]
    assert all(result["changed"] for result in made)
    assert len(manifests(backup_dir)) == 2
    for result in made:
        backup = result["backup"]
        digest = subprocess.run(["sha256sum", backup["path"]], capture_output=True, text=True, check=True).stdout.split()[0]
        assert digest == backup["sha256"] and backup["database"] == "shop" and backup["owner"] == "poststack"
        assert backup["pg_version"].startswith("15.") and backup["size"] == os.path.getsize(backup["path"])

    prune = {**args, "create": False, "keep_count": 1}
    # check mode of a prune says what the prune will do, and that no backup would be made
    would = ok(run_playbook(play([module("poststack_backup", **prune)]), check=True)).results("out")
    assert would["backup"] is None and would["changed"] and not would["created_dir"]
    assert sorted(would["deleted"]) == sorted([made[0]["backup"]["path"], made[0]["backup"]["manifest"]])
    assert len(manifests(backup_dir)) == 2
    pruned = ok(run_playbook(play([module("poststack_backup", **prune), module("poststack_backup", "again", **prune)])))
    assert pruned.results("out")["changed"] and len(pruned.results("out")["deleted"]) == 2
    assert not pruned.results("again")["changed"] and pruned.results("again")["deleted"] == []
    assert sorted(pruned.results("out")["deleted"]) == sorted(would["deleted"])
    assert manifests(backup_dir) == [made[1]["backup"]["name"] + ".manifest.json"]

    listed = ok(run_playbook(play([module("poststack_backup_info", backup_dir=backup_dir, verify="all")])))
    assert listed.results("out")["good"] == 1 and not listed.results("out")["changed"]


def test_corrupt_or_truncated_backup_is_refused_and_the_target_is_untouched(lab, backup_dir):
    lab.seed("orders")
    made = ok(run_playbook(play([module("poststack_backup", container=lab.name, database="orders", backup_dir=backup_dir),
                                 module("poststack_backup", "second", container=lab.name, database="orders",
                                        backup_dir=backup_dir, prefix="b-")])))
    corrupt, truncated = made.results("out")["backup"], made.results("second")["backup"]
    with open(corrupt["path"], "r+b") as handle:
        handle.seek(corrupt["size"] // 2)
        byte = handle.read(1)
        handle.seek(corrupt["size"] // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with open(truncated["path"], "r+b") as handle:
        handle.truncate(truncated["size"] - 100)
    before = lab.fingerprint("orders")
    lab.psql("orders", "INSERT INTO items VALUES (-1, 'written after the backup')")
    marker = lab.fingerprint("orders")
    assert marker != before

    restore = dict(container=lab.name, backup_dir=backup_dir, target="orders", replace=True)
    refused = run_playbook(play([module("poststack_backup_restore", backup=corrupt["name"], **restore)]))
    message = failed_msg(refused, "out")
    assert f"refusing to restore backup {corrupt['name']}" in message and "corrupt" in message
    assert "database 'orders' is untouched" in message

    refused = run_playbook(play([module("poststack_backup_restore", backup=truncated["path"], **restore)]))
    message = failed_msg(refused, "out")
    assert f"{truncated['size'] - 100} bytes, the manifest says {truncated['size']}: truncated" in message

    refused = run_playbook(play([module("poststack_backup_restore", database="orders", **restore)]))
    assert "no good backup of database 'orders'" in failed_msg(refused, "out")

    assert lab.fingerprint("orders") == marker
    assert not [name for name in lab.databases() if "__restore_" in name]


def test_a_restore_that_fails_half_way_never_drops_the_target(lab, backup_dir):
    lab.seed("ledger")
    lab.psql("ledger", "CREATE ROLE ghost; CREATE TABLE ghost_owned (x int); ALTER TABLE ghost_owned OWNER TO ghost;")
    ok(run_playbook(play([module("poststack_backup", container=lab.name, database="ledger", backup_dir=backup_dir)])))
    lab.psql("ledger", "DROP TABLE ghost_owned; DROP ROLE ghost; INSERT INTO items VALUES (-1, 'keep me')")
    marker = lab.fingerprint("ledger")

    run = run_playbook(play([module("poststack_backup_restore", container=lab.name, backup_dir=backup_dir,
                                    database="ledger", target="ledger", replace=True)]))
    message = failed_msg(run, "out")
    assert 'role "ghost" does not exist' in message
    assert lab.fingerprint("ledger") == marker
    assert not [name for name in lab.databases() if "__restore_" in name]
    # The target still takes connections (the swap had not started).
    assert lab.psql("ledger", "SELECT datallowconn FROM pg_database WHERE datname = 'ledger'") == "t"


def test_restore_into_a_new_database_replace_guard_and_the_verify_drill(either_lab, backup_dir):
    """On podman and on Docker: a backup, a restore into a new database (check mode first), the replace guard,
    and the restore drill that finds a changed row."""
    lab = either_lab
    lab.seed("crm", rows=3000)
    common = dict(backup_container_name=lab.name, backup_runtime=lab.runtime, backup_dir=backup_dir,
                  backup_database="crm", backup_format="directory", backup_jobs=2, backup_pgbackrest_enabled=False)
    made = ok(run_playbook(os.path.join(ROOT, "playbooks/backup.yml"), inventory="inventories/local",
                           extra_vars=dict(common, backup_scheduler="none")))
    assert made.results(in_role("Take a logical backup of crm"))["backup"]["format"] == "directory"
    assert "bytes, sha256" in made.results("Report the logical backup")["msg"]

    restore_vars = dict(common, backup_restore_target="crm_copy")
    checked = ok(run_playbook(play([role("restore")], **restore_vars), check=True))
    assert checked.results(in_role("Validate and restore a logical backup into crm_copy"))["changed"]
    assert "crm_copy" not in lab.databases() and not [name for name in lab.databases() if "__restore_" in name]
    restored = ok(run_playbook(play([role("restore")], **restore_vars)))
    result = restored.results(in_role("Validate and restore a logical backup into crm_copy"))
    assert result["changed"] and not result["replaced"]
    assert lab.fingerprint("crm_copy") == lab.fingerprint("crm")
    assert lab.psql("crm_copy", 'SELECT count(*) FROM "odd|name"."Mixed Case"') == "3"
    assert lab.psql("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'crm_copy'") == "poststack"

    again = run_playbook(play([role("restore")], **restore_vars))
    assert "database 'crm_copy' exists: set replace=true" in failed_msg(
        again, in_role("Validate and restore a logical backup into crm_copy"))
    lab.psql("crm_copy", "DELETE FROM items WHERE id > 10")
    replaced = ok(run_playbook(play([role("restore")], **dict(restore_vars, backup_restore_replace=True))))
    assert replaced.results(in_role("Validate and restore a logical backup into crm_copy"))["replaced"]
    assert lab.fingerprint("crm_copy") == lab.fingerprint("crm")

    drill = ok(run_playbook(os.path.join(ROOT, "playbooks/verify-backup.yml"), inventory="inventories/local",
                            extra_vars=common))
    task = in_role("Restore the newest good backup into a scratch database and compare every table with crm")
    comparison = drill.results(task)["comparison"]
    assert comparison["equal"] and comparison["tables"] == 2 and comparison["rows"] == 3003
    assert "crm_verify" not in lab.databases()

    lab.psql("crm", "UPDATE items SET note = 'changed' WHERE id = 7")
    drill = run_playbook(os.path.join(ROOT, "playbooks/verify-backup.yml"), inventory="inventories/local",
                         extra_vars=common)
    assert "differs from 'crm' in 1 table(s)" in failed_msg(drill, task)
    differences = drill.results(task)["comparison"]["differences"]
    assert [item["table"] for item in differences] == ["public.items"]
    assert differences[0]["source"]["rows"] == differences[0]["restored"]["rows"] == "3000"


def test_restore_playbook_needs_an_explicit_confirmation(lab, backup_dir):
    lab.seed("guarded", rows=10)
    marker = lab.fingerprint("guarded")
    run = run_playbook(os.path.join(ROOT, "playbooks/restore.yml"), inventory="inventories/local",
                       extra_vars=dict(backup_container_name=lab.name, backup_dir=backup_dir,
                                       backup_database="guarded", backup_restore_replace=True))
    assert "run again with -e restore_confirm=true" in failed_msg(run, "Require an explicit confirmation")
    assert lab.fingerprint("guarded") == marker


def test_encrypted_backups_hold_no_plaintext_and_secrets_stay_out_of_output(lab, backup_dir, tmp_path):
    lab.seed("vault", rows=200)
    key = tmp_path / "age.key"
    subprocess.run(["age-keygen", "-o", str(key)], capture_output=True, check=True)
    identity = key.read_text()
    recipient = [line.split(": ")[1] for line in identity.splitlines() if "public key" in line][0]
    passphrase = "open'ssl \"pass\" $phrase"

    run = ok(run_playbook(play([
        module("poststack_backup", container=lab.name, database="vault", backup_dir=backup_dir, encryption="age",
               age_recipients=[recipient]),
        module("poststack_backup_restore", "restore", container=lab.name, backup_dir=backup_dir, database="vault",
               target="vault_age", age_identity="{{ identity }}"),
        module("poststack_backup", "enc", container=lab.name, database="vault", backup_dir=backup_dir,
               encryption="openssl", passphrase="{{ passphrase }}"),
        module("poststack_backup_restore", "restore_enc", container=lab.name, backup_dir=backup_dir,
               database="vault", target="vault_enc", passphrase="{{ passphrase }}"),
    ], identity=identity, passphrase=passphrase)))
    for task in ("out", "enc"):
        with open(run.results(task)["backup"]["path"], "rb") as handle:
            assert not handle.read(5).startswith(b"PGDMP")
    assert run.results("out")["backup"]["path"].endswith(".dump.age")
    assert lab.fingerprint("vault_age") == lab.fingerprint("vault") == lab.fingerprint("vault_enc")
    secret_line = [line for line in identity.splitlines() if line.startswith("AGE-SECRET-KEY")][0]
    for text in (run.stdout, run.stderr):
        assert secret_line not in text and passphrase not in text

    marker = lab.fingerprint("vault_enc")
    wrong = run_playbook(play([module("poststack_backup_restore", container=lab.name, backup_dir=backup_dir,
                                      database="vault", target="vault_enc", replace=True, passphrase="wrong")]))
    # AES-CBC itself misses about one wrong key in 256: the manifest's passphrase check answers first.
    assert "the passphrase does not decrypt backup vault_" in failed_msg(wrong, "out")
    assert "Nothing was changed; database 'vault_enc' is untouched." in failed_msg(wrong, "out")
    assert lab.fingerprint("vault_enc") == marker
    # A manifest written before the check existed: openssl (or, by bad luck, pg_restore) fails, with a hint.
    manifest_path = run.results("enc")["backup"]["manifest"]
    with open(manifest_path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    assert manifest["key_check"].startswith("pbkdf2-sha256$") and passphrase not in manifest["key_check"]
    with open(manifest_path, "w", encoding="utf-8") as handle:
        json.dump(dict(manifest, key_check=""), handle)
    old = run_playbook(play([module("poststack_backup_restore", container=lab.name, backup_dir=backup_dir,
                                    database="vault", target="vault_enc", replace=True, passphrase="not-it-4f2a")]))
    message = failed_msg(old, "out")
    assert "bad decrypt" in message or "not appear to be a valid archive" in message, message
    assert "openssl does not always notice a wrong passphrase" in message
    assert lab.fingerprint("vault_enc") == marker


def test_scheduled_backup_runs_the_same_code_from_cron_and_renders_timers(lab, backup_dir, tmp_path):
    lab.seed("sched", rows=50)
    dirs = {name: str(tmp_path / name) for name in ("cron", "units", "lib", "etc", "log")}
    for path in (dirs["cron"], dirs["units"]):
        os.makedirs(path)
    common = dict(backup_container_name=lab.name, backup_runtime="podman", backup_dir=backup_dir,
                  backup_database="sched", backup_keep_count=1, backup_cron_dir=dirs["cron"],
                  backup_script_dir=dirs["lib"], backup_config_dir=dirs["etc"], backup_log_dir=dirs["log"],
                  backup_schedule_environment={"CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", "")})
    cron_vars = dict(common, backup_scheduler="cron", backup_name="it sched")
    # The systemd variant removes the cron file of the same name: give it its own cron directory.
    timer_vars = {**common, "backup_scheduler": "systemd", "backup_systemd_activate": False,
                  "backup_systemd_unit_dir": dirs["units"], "backup_name": "it sched", "backup_cron_dir": dirs["units"]}
    first = ok(run_playbook(play([role("main", **cron_vars), role("main", **timer_vars)])))
    assert first.changed > 0
    second = ok(run_playbook(play([role("main", **cron_vars), role("main", **timer_vars)])))
    assert second.changed == 0, [t["task"]["name"] for t in second.tasks if any(
        h.get("changed") for h in t["hosts"].values())]

    assert os.listdir(dirs["lib"]) == ["poststack-backup"], "the backup command is one file"
    cron_file = os.path.join(dirs["cron"], "poststack-backup-it_sched")
    with open(cron_file, encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle if line.strip() and not line.startswith("#")]
    environment = dict(line.split("=", 1) for line in lines if "=" in line.split(" ", 1)[0])
    jobs = [line for line in lines if " root " in line]
    assert len(jobs) == 1 and jobs[0].startswith("15 2 * * * root ")
    command = jobs[0].split(" root ", 1)[1]
    assert f">>{dirs['log']}/it_sched-logical.log 2>&1" in command
    with open(os.path.join(dirs["etc"], "it_sched.json"), encoding="utf-8") as handle:
        assert json.load(handle)["backup_dir"] == backup_dir
    assert oct(os.stat(os.path.join(dirs["etc"], "it_sched.json")).st_mode & 0o777) == "0o600"

    for attempt in range(2):
        proc = subprocess.run(["sh", "-c", command], env=dict(environment, HOME="/root"), capture_output=True,
                              text=True, check=False)
        with open(os.path.join(dirs["log"], "it_sched-logical.log"), encoding="utf-8") as log:
            assert proc.returncode == 0, f"run {attempt + 1}: {log.read()}"
    assert len(manifests(backup_dir)) == 1  # keep_count=1: the second run removed the first backup
    listed = ok(run_playbook(play([module("poststack_backup_info", backup_dir=backup_dir, verify="all")])))
    assert listed.results("out")["good"] == 1 and listed.results("out")["bad"] == 0

    service = os.path.join(dirs["units"], "poststack-backup-it_sched-logical.service")
    with open(service, encoding="utf-8") as handle:
        exec_start = [line for line in handle if line.startswith("ExecStart=")][0]
    assert shlex.split(exec_start[len("ExecStart="):]) == shlex.split(command.split(" >>", 1)[0])
    analyze = subprocess.run(["systemd-analyze", "calendar", "*-*-* 02:15:00"], capture_output=True, check=False)
    assert analyze.returncode == 0
    assert os.path.exists(os.path.join(dirs["units"], "poststack-backup-it_sched-logical.timer"))
