"""Pacemaker command line: promotion scores, permanent node attributes (the data records), membership."""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Optional

from .ocf import AgentError, Logger
from .runner import HostRunner


def resource_name(instance: str) -> str:
    """'pgtwin:1' (clone instance) -> 'pgtwin'."""
    return re.sub(r":\d+$", "", instance)


def parse_attribute_query(stdout: str) -> Optional[str]:
    """crm_attribute --query --quiet prints the value, or nothing when the attribute does not exist."""
    value = stdout.strip()
    return value or None


@dataclass(frozen=True)
class NodeStatus:
    online: bool
    unclean: bool


def parse_node_status(xml_text: str, node: str) -> Optional[NodeStatus]:
    """Status of ``node`` from ``crm_mon --output-as=xml``."""
    root = ET.fromstring(xml_text)
    for element in root.iter("node"):
        if element.get("name") == node and element.get("online") is not None:
            return NodeStatus(element.get("online") == "true", element.get("unclean") == "true")
    return None


class Cluster:
    def __init__(self, runner: HostRunner, log: Logger, instance: str) -> None:
        self.run = runner
        self.log = log
        self.resource = resource_name(instance)
        self.record_attribute = "%s-data" % self.resource

    @staticmethod
    def local_node(runner: HostRunner) -> str:
        name = os.environ.get("OCF_RESKEY_CRM_meta_on_node", "")
        if name:
            return name
        result = runner.run(["crm_node", "-n"], timeout=10)
        if result.ok and result.stdout.strip():
            return result.stdout.strip()
        return os.uname()[1]

    def set_score(self, node: str, score: int) -> None:
        result = self.run.run(["crm_attribute", "--promotion=%s" % self.resource, "--node", node,
                               "--update", str(score)], timeout=15)
        if not result.ok:
            self.log.warning("could not set the promotion score: " + result.summary())

    def get_record(self, node: str) -> Optional[str]:
        result = self.run.run(["crm_attribute", "--node", node, "--name", self.record_attribute,
                               "--lifetime", "forever", "--query", "--quiet"], timeout=15)
        if result.ok:
            return parse_attribute_query(result.stdout)
        if "No such device or address" in result.stderr or result.rc == 105:
            return None
        raise AgentError("cannot read the data record of %s: %s" % (node, result.summary()))

    def set_record(self, node: str, value: str) -> None:
        result = self.run.run(["crm_attribute", "--node", node, "--name", self.record_attribute,
                               "--lifetime", "forever", "--update", value], timeout=30)
        if not result.ok:
            raise AgentError("cannot write the data record %s=%s: %s" % (node, value, result.summary()))
        self.log.info("data record of %s set to %s" % (node, value))

    def peer_in_partition(self, peer: str) -> bool:
        result = self.run.run(["crm_node", "--partition"], timeout=10)
        return result.ok and peer in result.stdout.split()

    def peer_cleanly_down(self, peer: str) -> bool:
        result = self.run.run(["crm_mon", "--one-shot", "--output-as=xml"], timeout=15)
        if not result.ok:
            return False
        try:
            status = parse_node_status(result.stdout, peer)
        except ET.ParseError:
            return False
        return status is not None and not status.online and not status.unclean
