# -*- coding: utf-8 -*-
# Copyright: poststack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration modules' work as functions of their validated parameters: ``run(params, check_mode, diff)`` is
poststack_migrate's, ``run_info`` poststack_migrate_info's. Each returns the module's result (``failed`` and ``msg``
on failure, ``warnings`` when there are some) and never exits.

Two callers, one behaviour: the module (``plugins/modules/``) calls it in its own process, on any target; its action
plugin (``plugins/action/``, through ``plugin_utils/in_process.py``) calls it in Ansible's worker process when the
target is the controller itself, which spares building the module's payload and starting Python (about half a second
of a run that has nothing to do). The argument specs live here so that both validate alike.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Optional

from ansible_collections.poststack.core.plugins.module_utils.controller import ControllerWatch
from ansible_collections.poststack.core.plugins.module_utils.database import (
    ConnectionSettingsError, connect, connection_argument_spec, settings_from_params,
)
from ansible_collections.poststack.core.plugins.module_utils.migrations import (
    FORMAT_ARGUMENT_SPEC, Engine, MigrationError, Settings, Step, current_version,
)

ACTIONS = {"applied": "apply", "rolled_back": "rollback", "baselined": "baseline", "repaired": "repair"}
RESULT_KEYS = {"apply": "applied", "rollback": "rolled_back", "baseline": "baselined", "repair": "repaired"}

REQUIRED_IF = [
    ("state", "applied", ("path", "streams"), True),
    ("state", "rolled_back", ("path", "target_version")),
    ("state", "verified", ("path",)),
    ("state", "baselined", ("path",)),
    ("state", "baselined", ("target_version", "baseline_from"), True),
    ("state", "repaired", ("path",)),
]
MUTUALLY_EXCLUSIVE = [("target_version", "baseline_from"), ("streams", "path"), ("streams", "target_version")]
# Stat before read (checksum_cache.py); documented with the layouts (doc fragment poststack.core.migration_files).
FILES_ARGUMENT_SPEC = dict(FORMAT_ARGUMENT_SPEC, checksum_cache=dict(type="bool", default=True))


def argument_spec() -> Dict[str, Dict[str, Any]]:
    spec = dict(
        path=dict(type="path"),
        streams=dict(type="list", elements="dict", options=dict(
            stream=dict(type="str", required=True),
            path=dict(type="path", required=True),
            format=FORMAT_ARGUMENT_SPEC["format"],
            lint=dict(type="str", default="warn", choices=["error", "warn", "off"]),
            target_version=dict(type="int"),
        )),
        state=dict(type="str", default="applied",
                   choices=["applied", "rolled_back", "verified", "baselined", "unlocked", "repaired"]),
        target_version=dict(type="int"),
        tracking_schema=dict(type="str", default="poststack"),
        stream=dict(type="str", default="project"),
        **FILES_ARGUMENT_SPEC,
        lint=dict(type="str", default="warn", choices=["error", "warn", "off"]),
        baseline_from=dict(type="str", choices=["golang-migrate", "dbmate", "flyway", "sqitch", "schema"]),
        baseline_table=dict(type="str"),
        baseline_container=dict(type="str"),
        runtime=dict(type="str", default="podman", choices=["podman", "docker"]),
        dry_run=dict(type="bool", default=False),
        allow_out_of_order=dict(type="bool", default=False),
        lock_wait_timeout=dict(type="float", default=60.0),
        lock_timeout=dict(type="str", default="10s"),
        statement_timeout=dict(type="str", default="0"),
        retries=dict(type="int", default=3),
        retry_backoff=dict(type="float", default=0.5),
        terminate_holder=dict(type="bool", default=False),
        log_file=dict(type="path"),
    )
    spec.update(connection_argument_spec())
    return spec


def info_argument_spec() -> Dict[str, Dict[str, Any]]:
    spec = dict(
        path=dict(type="path"),
        tracking_schema=dict(type="str", default="poststack"),
        stream=dict(type="str", default="project"),
        **FILES_ARGUMENT_SPEC,
    )
    spec.update(connection_argument_spec())
    return spec


def run_info(params: Dict[str, Any], check_mode: bool = False, diff: bool = False) -> Dict[str, Any]:
    """poststack_migrate_info: the stream's status (read only)."""
    connection = settings_from_params(params, "poststack_migrate_info")
    result: Dict[str, Any] = dict(changed=False)
    try:
        result["dsn"] = connection.describe()
        with connect(connection) as conn:
            engine = Engine(conn, Settings(params["path"], params["tracking_schema"], params["stream"],
                                           layout=params["format"], checksum_cache=params["checksum_cache"]))
            result.update(asdict(engine.status()))
    except (ConnectionSettingsError, MigrationError) as exc:
        result.update(failed=True, msg=str(exc))
    except Exception as exc:  # a database error (no access to the tracking schema...): report it, never the password
        result.update(failed=True, msg="unexpected error: %s" % exc, exception=traceback.format_exc())
    return result


class Failed(Exception):
    """The task fails with this message; the result so far goes with it."""

    def __init__(self, msg: str, exception: Optional[str] = None) -> None:
        super().__init__(msg)
        self.exception = exception


@dataclass
class Call:
    params: Dict[str, Any]
    check_mode: bool
    diff: bool
    warnings: List[str] = field(default_factory=list)


def run(params: Dict[str, Any], check_mode: bool, diff: bool) -> Dict[str, Any]:
    """The module's result for validated ``params``; a failure is ``failed: true`` with ``msg`` (and ``exception``
    for an unexpected error), beside what really happened before it."""
    call = Call(params, check_mode, diff)
    result = dict(changed=False, state=params["state"], plan=[], applied=[], rolled_back=[], baselined=[],
                  repaired=[], previous_version=0, current_version=0, pending=[], timings_ms={}, total_ms=0,
                  dry_run_skipped=[])
    try:
        _run(call, result)
    except Failed as exc:
        result.update(failed=True, msg=str(exc))
        if exc.exception:
            result["exception"] = exc.exception
    if call.warnings:
        result["warnings"] = call.warnings
    return result


def _settings(params: Dict[str, Any]) -> Settings:
    return Settings(
        migrations_dir=params["path"], tracking_schema=params["tracking_schema"], stream=params["stream"],
        lock_wait_timeout=params["lock_wait_timeout"], lock_timeout=params["lock_timeout"],
        statement_timeout=params["statement_timeout"], retries=params["retries"], retry_backoff=params["retry_backoff"],
        allow_out_of_order=params["allow_out_of_order"], log_file=params["log_file"],
        layout=params["format"],
        lint=params["lint"],
        baseline_from=params["baseline_from"], baseline_table=params["baseline_table"],
        checksum_cache=params["checksum_cache"],
    )


def _run(call: Call, result: Dict[str, Any]) -> None:
    params = call.params
    state = params["state"]
    connection = settings_from_params(params, "poststack_migrate")
    settings = _settings(params)
    try:
        result["dsn"] = connection.describe()
        conn = connect(connection)
    except ConnectionSettingsError as exc:
        raise Failed(str(exc))
    if params["streams"]:
        if state != "applied":
            conn.close()
            raise Failed("streams is for state=applied only; nothing was changed")
        _run_streams(call, conn, settings, result)
        return
    try:
        with conn:
            engine = _open_engine(conn, settings, state, result["dsn"], ControllerWatch(), result)
            if state == "baselined" and params["baseline_from"] == "schema":
                _run_schema_baseline(call, engine, connection, result)
            elif state in ACTIONS:
                _run_migration_state(call, engine, ACTIONS[state], result, params["target_version"])
            elif state == "verified":
                report = engine.verify()
                result.update(verify=report, current_version=report["current_version"],
                              previous_version=report["current_version"])
                if not report["ok"]:
                    problems = [item["file"] + ": " + item["kind"] for item in report["drift"]]
                    problems += [item["error"] for item in report["verify_scripts"] if not item["ok"]]
                    raise Failed("verification failed: %s" % "; ".join(problems))
            elif state == "unlocked":
                report = engine.unlock(params["terminate_holder"], check_mode=call.check_mode)
                result.update(changed=report["changed"], lock_holders=report["holders"])
    except MigrationError as exc:
        _record_failure(result, exc, state if state in ACTIONS else None)
        raise Failed(str(exc))
    except Failed:
        raise
    except Exception as exc:  # a database error outside a step: report it, never the password
        raise Failed("unexpected error: %s" % exc, traceback.format_exc())


def _run_migration_state(call: Call, engine: Engine, action: str, result: Dict[str, Any],
                         target_version: Optional[int]) -> None:
    params = call.params
    history = engine.history()
    before = sorted(history)
    if call.check_mode and not params["dry_run"]:
        plan = engine.plan(action, target_version)[0]
        done, timings, skipped, total, after_version = plan.versions, {}, [], 0, plan.current_version
        findings = [asdict(finding) for finding in engine.findings]
        repeated = [step.name for step in plan.repeatables]
    else:
        outcome = engine.run(action, target_version, dry_run=params["dry_run"])
        plan = outcome.plan
        done, timings, skipped, total = outcome.done, outcome.timings_ms, outcome.skipped, outcome.total_ms
        after_version = outcome.after_version
        findings = outcome.lint
        repeated = outcome.repeated
    result.update(
        changed=bool(plan.steps or plan.repeatables),
        plan=plan.as_dicts(),
        repeatables_plan=[step.as_dict() for step in plan.repeatables],
        repeated=repeated,
        previous_version=plan.current_version,
        current_version=after_version,
        timings_ms=timings,
        total_ms=total,
        dry_run_skipped=skipped,
        lint=findings,
    )
    for finding in findings:
        call.warnings.append("%s line %d [%s]: %s; instead: %s"
                             % (finding["file"], finding["line"], finding["rule"], finding["problem"],
                                finding["safer"]))
    result[RESULT_KEYS[action]] = done
    planned_after = plan.applied_after(before)
    if call.check_mode or params["dry_run"]:
        files = engine.files()
        result["pending"] = [item.version for item in files if item.version not in planned_after]
    else:
        status = engine.status()
        result["pending"] = status.pending
    if call.diff:
        result["diff"] = {
            "before": {"current_version": current_version(before), "applied": before},
            "after": {"current_version": current_version(planned_after), "applied": planned_after},
        }


def _run_schema_baseline(call: Call, engine: Engine, connection, result: Dict[str, Any]) -> None:
    """O(baseline_from=schema): the live schema written as the stream's first migration and recorded."""
    # Imported here: only a baseline needs it (with the backup package it pulls in, 60 ms of every no-op run).
    from ansible_collections.poststack.core.plugins.module_utils.migrations.schema_baseline import Dumper, take

    params = call.params
    dumper = Dumper(database=engine.conn.info.dbname, tracking_schema=params["tracking_schema"],
                    container=params["baseline_container"], runtime=params["runtime"],
                    conninfo=connection.resolved_keywords(), lock_wait_timeout=params["lock_timeout"])
    baseline = take(engine, dumper, check_only=call.check_mode or params["dry_run"])
    result.update(schema_baseline=baseline.as_dict(), commands=baseline.commands)
    if baseline.run is not None:
        result.update(changed=True, plan=baseline.run.plan.as_dicts(), baselined=baseline.run.done,
                      previous_version=baseline.run.plan.current_version, current_version=baseline.run.after_version,
                      total_ms=baseline.run.total_ms, lint=baseline.run.lint)
    elif baseline.already is not None:
        result.update(previous_version=baseline.already, current_version=baseline.already)
    else:  # check mode or a dry run: what would be written and recorded
        step = Step("baseline", baseline.version, "baseline", file=os.path.basename(baseline.file),
                    reason="the live schema, written to this file")
        result.update(changed=True, baselined=[baseline.version], plan=[step.as_dict()])


def _open_engine(conn, settings: Settings, state: str, dsn: str, watch: ControllerWatch,
                 result: Dict[str, Any]) -> Engine:
    """An engine on the connection, its run logged and its session prepared (bad timeouts fail here)."""
    engine = Engine(conn, settings, should_stop=watch.gone)
    engine.log("state=%s connected to %s (stream %s)" % (state, dsn, settings.stream))
    result["tracking_table"] = engine.table
    engine.prepare_session()
    return engine


def _record_failure(result: Dict[str, Any], exc: MigrationError, done_key: Optional[str]) -> None:
    """What really happened before the failing step: those steps stay done, and the result says so (under
    ``done_key``). current_version is None when the connection was lost: the version is not known until the server
    is back, and 0 (the default) would be a lie."""
    details = dict(exc.details)
    if "done" in details and done_key:
        result[done_key] = details.pop("done")
    result.update(details)


def _run_streams(call: Call, conn, settings: Settings, result: Dict[str, Any]) -> None:
    """O(streams): each stream in order on the one connection; a failed stream fails the task."""
    template = dict(result)
    done: List[Dict[str, Any]] = []
    watch = ControllerWatch()
    try:
        with conn:
            for entry in call.params["streams"]:
                stream_result = dict(template, stream=entry["stream"])
                done.append(stream_result)
                stream_settings = replace(settings, migrations_dir=entry["path"], stream=entry["stream"],
                                          layout=entry["format"], lint=entry["lint"])
                try:
                    engine = _open_engine(conn, stream_settings, "applied", result["dsn"], watch, stream_result)
                    _run_migration_state(call, engine, "apply", stream_result, entry["target_version"])
                except MigrationError as exc:
                    _record_failure(stream_result, exc, "applied")
                    stream_result.update(failed=True, msg=str(exc))
                    raise
    except MigrationError as exc:
        result.update({k: v for k, v in done[-1].items() if k not in ("failed", "msg")}, streams=done,
                      changed=any(r.get("changed") or r.get("applied") for r in done))
        raise Failed("stream %s: %s" % (done[-1]["stream"], exc))
    except Exception as exc:  # a database error outside a step: report it, never the password
        result["streams"] = done
        raise Failed("unexpected error: %s" % exc, traceback.format_exc())
    result.update(done[-1] if done else {}, streams=done, changed=any(r["changed"] for r in done))
    if call.diff:
        result["diff"] = {side: {r["stream"]: r["diff"][side] for r in done if "diff" in r}
                          for side in ("before", "after")}
