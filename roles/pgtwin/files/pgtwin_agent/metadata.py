"""OCF meta-data (ra-api-1.dtd) generated from the parameter table."""
from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from . import VERSION
from .params import SPECS

# Defaults Pacemaker shows to tools; the promoted monitor is faster so that a dead primary is noticed first.
ACTIONS = (
    ("start", {"timeout": "120s"}),
    ("stop", {"timeout": "60s"}),
    ("promote", {"timeout": "60s"}),
    ("demote", {"timeout": "60s"}),
    ("monitor", {"timeout": "20s", "interval": "2s", "depth": "0", "role": "Promoted"}),
    ("monitor", {"timeout": "20s", "interval": "3s", "depth": "0", "role": "Unpromoted"}),
    ("notify", {"timeout": "20s"}),
    ("meta-data", {"timeout": "5s"}),
    ("validate-all", {"timeout": "10s"}),
)

LONGDESC = (
    "pgtwin manages one PostgreSQL instance of a two-node cluster as a promotable clone: streaming "
    "replication with per-node slots, synchronous replication that follows the standby, a record of whether "
    "the standby was in sync (promotion refuses a standby that may have lost acknowledged commits), "
    "pg_rewind then pg_basebackup to rebuild a diverged former primary, and promotion scores so that the "
    "most advanced standby wins. restart_after_crash=off, hot_standby=on and wal_log_hints=on are enforced "
    "on the command line of the server."
)


def metadata_xml() -> str:
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">',
        '<resource-agent name="pgtwin" version=%s>' % quoteattr(VERSION),
        "<version>1.0</version>",
        '<longdesc lang="en">%s</longdesc>' % escape(LONGDESC),
        '<shortdesc lang="en">Two-node PostgreSQL with streaming replication</shortdesc>',
        "<parameters>",
    ]
    for spec in SPECS:
        lines.append('<parameter name=%s unique="%d" required="%d">'
                     % (quoteattr(spec.name), int(spec.unique), int(spec.required)))
        lines.append('<longdesc lang="en">%s</longdesc>' % escape(spec.longdesc))
        lines.append('<shortdesc lang="en">%s</shortdesc>' % escape(spec.shortdesc))
        lines.append('<content type="%s" default=%s />' % (spec.kind, quoteattr(spec.default)))
        lines.append("</parameter>")
    lines.append("</parameters>")
    lines.append("<actions>")
    for name, attrs in ACTIONS:
        rendered = " ".join("%s=%s" % (key, quoteattr(value)) for key, value in attrs.items())
        lines.append('<action name="%s" %s />' % (name, rendered))
    lines.append("</actions>")
    lines.append("</resource-agent>")
    return "\n".join(lines) + "\n"
