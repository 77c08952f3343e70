"""The bar of issue 14: at least 40 real bad-input cases over the components, none of them without its own check."""
import test_backup_bad_input
import test_btrfs_bad_input
import test_pgbouncer_bad_input
import test_pgtwin_resource_bad_input
import test_project_containers_bad_input
import test_restore_bad_input

MODULES = (test_backup_bad_input, test_restore_bad_input, test_btrfs_bad_input, test_pgbouncer_bad_input,
           test_project_containers_bad_input, test_pgtwin_resource_bad_input)


def test_case_count_meets_the_bar():
    counts = {module.__name__: len(module.CASES) for module in MODULES}
    assert sum(counts.values()) >= 40, counts
    assert all(count >= 5 for count in counts.values()), counts


def test_every_case_has_a_unique_id_and_a_message_to_match():
    for module in MODULES:
        ids = [case[0] for case in module.CASES]
        assert len(ids) == len(set(ids)), module.__name__
        assert all(case[-1] and all(fragment for fragment in case[-1]) for case in module.CASES), module.__name__
