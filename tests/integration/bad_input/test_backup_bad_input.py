"""Bad input for poststack_backup and poststack_backup_info: refused with a message naming the option and its value,
and the backups, the databases and the containers are as they were (one playbook for all cases)."""
import os

import pytest

from bad_input_lab import PASSPHRASE, check_case, fill, module_case, run_cases, stack_script

AGE_SECRET = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ8BI"
BACKUP = "poststack.core.poststack_backup"
INFO = "poststack.core.poststack_backup_info"


BASE = {"container": "{container}", "database": "poststack", "backup_dir": "{backup_dir}"}
# (id, module, arguments, fragments of the message); {new_dir} and {outside} must never be created.
CASES = [
    ("no-such-container", BACKUP, dict(BASE, container="{name}-nope"),
     ["container '{name}-nope' not found", "start PostgreSQL first", "nothing was changed"]),
    ("no-such-database", BACKUP, dict(BASE, database="bi_no_such_db", backup_dir="{new_dir}"),
     ["database 'bi_no_such_db' does not exist in container '{container}'", "check the name", "nothing was changed"]),
    ("negative-keep-count", BACKUP, dict(BASE, keep_count=-1),
     ["keep_count -1 is negative: give 0 (no limit) or more; nothing was changed"]),
    ("negative-keep-days", BACKUP, dict(BASE, keep_days=-2.5),
     ["keep_days -2.5 is negative: give 0 (no limit) or more; nothing was changed"]),
    ("compression-too-high", BACKUP, dict(BASE, compression=12),
     ["compression must be between 0 and 9, not 12; nothing was changed"]),
    ("prefix-escapes-the-directory", BACKUP, dict(BASE, prefix="../escaped_"),
     ["prefix '../escaped_' is not usable in a file name", "nothing was changed"]),
    ("directory-format-outside-the-mount", BACKUP, dict(BASE, format="directory", backup_dir="{outside}"),
     ["format=directory needs backup_dir inside the container's backups mount", "{outside} is not",
      "nothing was changed"]),
    ("age-secret-key-as-recipient", BACKUP, dict(BASE, encryption="age", age_recipients=[AGE_SECRET]),
     ["age_recipients[0] is an age secret key, not a public key", "age-keygen -y", "nothing was changed"]),
    ("age-recipient-not-a-key", BACKUP, dict(BASE, encryption="age", age_recipients=["bob@example.com"]),
     ["age_recipients[0] 'bob@example.com' is not an age public key", "nothing was changed"]),
    ("openssl-without-passphrase", BACKUP, dict(BASE, encryption="openssl"),
     ["encryption is openssl but all of the following are missing: passphrase"]),
    ("encrypted-directory-format", BACKUP, dict(BASE, format="directory", encryption="openssl", passphrase=PASSPHRASE),
     ["encryption needs format=custom"]),
    ("unknown-format", BACKUP, dict(BASE, format="tar"), ["value of format must be one of: custom, directory, got: tar"]),
    ("info-without-directory-or-container", INFO, {"verify": "all"},
     ["one of the following is required: backup_dir, container"]),
    ("info-no-such-container", INFO, {"container": "{name}-nope"}, ["container '{name}-nope' not found", "nothing was changed"]),
    ("info-unknown-verify", INFO, {"backup_dir": "{backup_dir}", "verify": "some"},
     ["value of verify must be one of: none, newest, all, got: some"]),
]


@pytest.fixture(scope="module")
def cases(stack):
    names = {"container": stack.container, "name": stack.name, "backup_dir": stack.backup_dir,
             "new_dir": os.path.join(os.path.dirname(stack.backup_dir), "bi-never-made"),
             "outside": str(stack.dir / "outside")}
    run = run_cases([(case_id, module_case(case_id, module, fill(args, **names))) for case_id, module, args, _f in CASES],
                    stack.vars(), stack_script(stack, str(stack.dir)))
    run.table = {case[0]: fill(case[3], **names) for case in CASES}
    return run


@pytest.mark.parametrize("case_id", [case[0] for case in CASES])
def test_bad_backup_input_is_refused_and_changes_nothing(cases, case_id):
    check_case(cases, case_id, cases.table[case_id])


def test_the_good_backups_are_still_good(cases, stack):
    """The snapshots compare files; this says what they hold: the three backups of the stack, and no other."""
    assert cases.run.rc == 0, cases.run.stdout[-2000:]
    assert sorted(name for name in os.listdir(stack.backup_dir) if name.endswith(".manifest.json")) == sorted(
        os.path.basename(backup["manifest"]) for backup in stack.backups.values())
