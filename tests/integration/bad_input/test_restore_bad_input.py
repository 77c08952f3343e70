"""Bad input for poststack_backup_restore: refused before any database is created, renamed or dropped, with a message
that names the backup or database and says the target is untouched; no passphrase is ever printed."""
import pytest

from bad_input_lab import PASSPHRASE, check_case, fill, module_case, run_cases, stack_script

RESTORE = "poststack.core.poststack_backup_restore"
BASE = {"container": "{container}", "backup_dir": "{backup_dir}", "target": "bi_restored"}
UNTOUCHED = "Nothing was changed; database 'bi_restored' is untouched."
# (id, arguments, fragments of the message)
CASES = [
    ("backup-not-found", dict(BASE, backup="poststack_19990101T000000Z"),
     ["backup 'poststack_19990101T000000Z' not found in {backup_dir}", "poststack_backup_info lists them", UNTOUCHED]),
    ("corrupt-backup", dict(BASE, backup="{corrupt}"),
     ["refusing to restore backup {corrupt}", "the manifest says", "corrupt", UNTOUCHED]),
    ("no-backup-of-that-database", dict(BASE, database="bi_never_backed_up"),
     ["no backup of database 'bi_never_backed_up' in {backup_dir}", UNTOUCHED]),
    ("target-exists-without-replace", dict(BASE, backup="{plain}", target="poststack"),
     ["database 'poststack' exists: set replace=true to replace it", "(nothing was changed)"]),
    ("target-too-long", dict(BASE, backup="{plain}", target="bi_" + "x" * 70),
     ["target 'bi_" + "x" * 70 + "' is 73 bytes long", "at most 63 bytes", "choose a shorter name; nothing was changed"]),
    ("target-is-a-maintenance-database", dict(BASE, backup="{plain}", target="postgres", replace=True),
     ["target 'postgres' is a maintenance database", "restore into another database; nothing was changed"]),
    ("compare-with-missing-database", dict(BASE, backup="{plain}", compare_with="bi_no_such_db"),
     ["compare_with database 'bi_no_such_db' does not exist in container '{container}'", UNTOUCHED]),
    ("compare-with-the-target-itself", dict(BASE, backup="{plain}", target="poststack", replace=True,
                                            compare_with="poststack"),
     ["compare_with 'poststack' is the target itself", "nothing was changed"]),
    ("encrypted-without-passphrase", dict(BASE, backup="{openssl}"),
     ["backup {openssl} is encrypted with openssl: give passphrase to decrypt it", UNTOUCHED]),
    ("wrong-passphrase", dict(BASE, backup="{openssl}", passphrase="bi-wrong-" + PASSPHRASE[::-1]),
     ["the passphrase does not decrypt backup {openssl}: it is not the one the backup was made with", UNTOUCHED]),
    ("no-such-container", dict(BASE, container="{name}-nope", backup="{plain}"),
     ["container '{name}-nope' not found", "nothing was changed"]),
    ("neither-backup-nor-database", dict(BASE), ["one of the following is required: backup, database"]),
]


@pytest.fixture(scope="module")
def cases(stack):
    names = {"container": stack.container, "name": stack.name, "backup_dir": stack.backup_dir,
             **{kind: backup["name"] for kind, backup in stack.backups.items()}}
    run = run_cases([(case_id, module_case(case_id, RESTORE, fill(args, **names))) for case_id, args, _f in CASES],
                    stack.vars(), stack_script(stack))
    run.table = {case_id: fill(fragments, **names) for case_id, _a, fragments in CASES}
    return run


@pytest.mark.parametrize("case_id", [case[0] for case in CASES])
def test_bad_restore_input_is_refused_and_changes_nothing(cases, case_id):
    check_case(cases, case_id, cases.table[case_id], secrets=(PASSPHRASE, PASSPHRASE[::-1]))


def test_the_databases_are_those_of_before(cases, stack):
    """No scratch database (<target>__restore_...) is left behind, and the data is what the stack wrote."""
    databases = stack.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database").split(",")
    assert sorted(databases) == ["postgres", "poststack", "template0", "template1"], databases
    assert stack.psql("SELECT count(*) FROM kept") == "500"
    assert cases.run.rc == 0
