# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """How migration files are laid out and read: the options poststack_migrate and poststack_migrate_info share
    (their argument spec is migrations.task.FILES_ARGUMENT_SPEC)."""

    DOCUMENTATION = r"""
options:
  format:
    description:
      - How the files in O(path) are named and laid out, read in place without renaming.
      - V(poststack) is C(NNN_name.sql) with C(NNN_name.rollback.sql) and C(NNN_name.verify.sql).
      - V(golang-migrate) is C(NNN_title.up.sql) with C(NNN_title.down.sql).
      - V(dbmate) is one C(NNN_name.sql) per version with a C(-- migrate:up) and an optional C(-- migrate:down)
        part (C(transaction:false) on a marker line runs that part without a transaction).
      - V(flyway) is C(VNNN__description.sql) with the undo C(UNNN__description.sql); versions must be whole
        numbers. Its repeatable C(R__description.sql) migrations (also read with V(auto)) run after the versioned
        ones of a run to the end, in the order of their descriptions, whenever one is new or changed; they have
        no rollback, and a rollback of the versioned ones leaves them.
      - V(sqitch) is a Sqitch project (C(sqitch.plan), C(deploy/), C(revert/), C(verify/)); the plan's Nth change
        is version N. V(auto) takes a directory with C(sqitch.plan) as one.
      - V(auto) takes each file as its name and content say; with any other value a file of another layout is
        an error that names it.
    type: str
    choices: [auto, poststack, golang-migrate, dbmate, flyway, sqitch]
    default: auto
  checksum_cache:
    description:
      - Stat before read. A migration whose files have the same names, sizes, modification and change times and
        inodes as when an earlier run read them is not read again; its checksums come from a cache of the user
        that runs the module (C(~/.cache/poststack/migrations/), or under C($XDG_CACHE_HOME)). The texts of the
        steps that run are always read.
      - V(false) reads every file on every run, and the cache is neither read nor written. Use it where C(stat)
        can be stale, such as NFS with attribute caching.
      - Verifying and repairing (C(state=verified) and C(state=repaired) of M(poststack.core.poststack_migrate))
        always read every file.
    type: bool
    default: true
"""
