"""Entry point: parse the action, load parameters, run, map errors to OCF codes."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, Dict, List

from . import ocf, params
from .actions import Agent
from .cluster import Cluster
from .ocf import AgentError, Logger
from .postgres import make_runner
from .runner import HostRunner

USAGE = "usage: pgtwin {start|stop|monitor|promote|demote|notify|meta-data|validate-all|methods}"
# The OCF actions that need the parameters, and the agent's method that carries each out.
ACTIONS: Dict[str, Callable[[Agent], int]] = {
    "start": Agent.start, "stop": Agent.stop, "monitor": Agent.monitor, "promote": Agent.promote,
    "demote": Agent.demote, "notify": Agent.notify, "validate-all": Agent.validate,
}


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write(USAGE + "\n")
        return ocf.OCF_ERR_ARGS
    action = argv[0]
    if action == "meta-data":
        # Imported here: xml.sax pulls in urllib and email, about 20 ms that no other action needs.
        from .metadata import metadata_xml  # pylint: disable=import-outside-toplevel
        sys.stdout.write(metadata_xml())
        return ocf.OCF_SUCCESS
    if action == "methods":
        sys.stdout.write("\n".join(tuple(ACTIONS) + ("meta-data", "methods")) + "\n")
        return ocf.OCF_SUCCESS
    if action not in ACTIONS:
        sys.stderr.write(USAGE + "\n")
        return ocf.OCF_ERR_UNIMPLEMENTED
    log = Logger("pgtwin", os.environ.get("OCF_RESKEY_agent_log", ""))
    began = time.monotonic()
    try:
        loaded = params.load()
        host = HostRunner(loaded.user)
        node = Cluster.local_node(host)
        config = loaded.for_node(node)
        agent = Agent(config, log, host, make_runner(config, host, log, ocf.operation_timeout()), node)
        if action in ("start", "promote", "demote"):
            agent.validate()
        rc = ACTIONS[action](agent)
    except AgentError as exc:
        # Stop must not fail on configuration problems when nothing can be running (Pacemaker would fence).
        if action == "stop" and exc.rc in (ocf.OCF_ERR_CONFIGURED, ocf.OCF_ERR_INSTALLED):
            log.warning("stop: %s; nothing to stop" % exc)
            return ocf.OCF_SUCCESS
        if action == "monitor" and exc.rc in (ocf.OCF_ERR_CONFIGURED, ocf.OCF_ERR_INSTALLED):
            log.error("monitor: %s" % exc)
            return exc.rc
        log.error("%s: %s" % (action, exc))
        return exc.rc
    level = log.info if action != "monitor" else log.debug
    level("%s: %s in %.2f s" % (action, ocf.RC_NAMES.get(rc, str(rc)), time.monotonic() - began))
    return rc
