"""`--json`: the data a verb's playbook works out, read from the json callback's record of the run (the task that
gathers it, by name), instead of the table it prints. Values are as the modules return them; secrets are masked
there already (the runtime summary holds no environment, the configuration masks the password)."""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple


def _status(result: Dict[str, Any]) -> Any:
    return result.get("containers", [])


def _migrations(result: Dict[str, Any]) -> Any:
    keys = ("stream", "current_version", "applied", "pending", "drift", "lock_holder")
    return [{key: item.get(key) for key in keys} for item in result.get("results", [])]


def _config(result: Dict[str, Any]) -> Any:
    return result.get("ansible_facts", {}).get("config_report")


# playbook -> (the task whose result holds the data, without its role prefix; how to take it)
REPORTS: Dict[str, Tuple[str, Callable[[Dict[str, Any]], Any]]] = {
    "status": ("Collect the containers poststack runs", _status),
    "migration-status": ("Read the status of the core schema and of the project's migrations", _migrations),
    "config": ("Work out the effective configuration", _config),
}


def _results(output: Dict[str, Any]) -> Iterator[Tuple[str, str, Dict[str, Any]]]:
    """(task name, host, result) of every task of the json callback's document, in order."""
    for play in output.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                yield task["task"]["name"], host, result


def extract(playbook: str, stdout: str) -> Tuple[Optional[Dict[str, Any]], List[str]]:
    """({host: data} or None when the run printed no document, the failures)."""
    try:
        output = json.loads(stdout)
    except ValueError:
        return None, ["the run printed no report: run the command again without --json to see what happened"]
    task_name, take = REPORTS[playbook]
    data: Dict[str, Any] = {}
    failed: List[str] = []
    for name, host, result in _results(output):
        if result.get("failed"):
            failed.append("%s (%s): %s" % (name, host, result.get("msg", "failed")))
        elif name.split(" : ")[-1] == task_name and not result.get("skipped"):
            data[host] = take(result)
    return data, failed
