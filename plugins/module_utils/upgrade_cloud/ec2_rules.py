# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security group rules as EC2 describes them (``IpPermissions``), one source at a time.

``flatten`` turns a group's permissions into one readable line per (protocol, ports, source), for diffs.
``select`` picks, out of a group's permissions, the ones for exactly one protocol and port range, limited
to some sources when given, in the shape ``RevokeSecurityGroupIngress`` takes, so that revoking them
touches nothing else (amazon.aws.ec2_security_group would purge every rule it is not told about).
Plain Python, no Ansible import.
"""

from __future__ import annotations

import copy
import re

PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1", "icmpv6": "58", "all": "-1", "-1": "-1"}
SOURCE_KEYS = (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6"), ("UserIdGroupPairs", "GroupId"), ("PrefixListIds", "PrefixListId"))


def protocol_name(protocol):
    """``tcp``, ``udp``, ``icmp``, ``-1``... from a name or an IP protocol number."""
    value = str(protocol).lower()
    for name, number in PROTOCOL_NUMBERS.items():
        if value == number and name != "-1":
            return name
    return "-1" if value in ("all", "-1") else value


class RuleError(ValueError):
    """A rule the module refuses before calling EC2: the message names the option and the accepted values."""


_CIDR4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$", re.ASCII)


def check_rule(protocol, from_port, to_port, cidr_ip=(), cidr_ipv6=(), source_group_id=()):
    """The protocol name EC2 takes, after refusing an unknown protocol, ports outside 0-65535 or reversed, and
    malformed sources. ``state=absent`` gets the same checks: a typo must not report "nothing to revoke"."""
    name = protocol_name(protocol)
    known = sorted(set(PROTOCOL_NUMBERS) - {"-1"})
    if name not in PROTOCOL_NUMBERS and not (str(name).isdigit() and str(name).isascii() and 0 <= int(name) <= 255):
        raise RuleError("protocol is %r: use one of %s, -1 (all), or an IP protocol number 0-255." % (
            protocol, ", ".join(known)))
    if name in ("icmp", "icmpv6"):
        low, high = -1, 255
    else:
        low, high = 0, 65535
    for option, port in (("from_port", from_port), ("to_port", to_port)):
        if port is not None and not low <= port <= high:
            raise RuleError("%s is %s, outside the %s port range %d-%d: give a port in that range." % (
                option, port, name, low, high))
    if from_port is not None and to_port is not None and from_port > to_port and name not in ("icmp", "icmpv6"):
        raise RuleError("from_port %s is greater than to_port %s: give the range low to high (for one port, "
                        "from_port only)." % (from_port, to_port))
    for cidr in cidr_ip or ():
        match = _CIDR4.match(str(cidr))
        if not match or any(int(part) > 255 for part in match.groups()[:4]) or int(match.group(5)) > 32:
            raise RuleError("cidr_ip %r is not an IPv4 CIDR: give one such as 10.0.0.0/16." % (cidr,))
    for cidr in cidr_ipv6 or ():
        if not re.match(r"^[0-9A-Fa-f:]+/\d{1,3}$", str(cidr), re.ASCII) or int(str(cidr).rsplit("/", 1)[1]) > 128:
            raise RuleError("cidr_ipv6 %r is not an IPv6 CIDR: give one such as 2001:db8::/32." % (cidr,))
    for group in source_group_id or ():
        if not re.match(r"^sg-[0-9a-f]{8,17}$", str(group), re.ASCII):
            raise RuleError("source_group_id %r is not a security group ID: give one such as sg-0123456789abcdef0 (no "
                            "wildcards)." % (group,))
    return name


def _ports(permission):
    return permission.get("FromPort"), permission.get("ToPort")


def describe_rule(permission, entry, list_key, id_key):
    protocol = protocol_name(permission.get("IpProtocol", "-1"))
    from_port, to_port = _ports(permission)
    if protocol == "-1":
        ports = "all"
    elif from_port == to_port:
        ports = str(from_port)
    else:
        ports = "%s-%s" % (from_port, to_port)
    source = entry.get(id_key)
    if list_key == "UserIdGroupPairs" and entry.get("UserId"):
        source = "%s/%s" % (entry["UserId"], source)
    line = "%s %s %s" % (protocol, ports, source)
    if entry.get("Description"):
        line += " (%s)" % entry["Description"]
    return line


def flatten(permissions):
    """Sorted readable lines, one per source: ``tcp 2376 10.0.0.0/16 (Docker TLS)``."""
    lines = []
    for permission in permissions or []:
        for list_key, id_key in SOURCE_KEYS:
            for entry in permission.get(list_key) or []:
                lines.append(describe_rule(permission, entry, list_key, id_key))
    return sorted(lines)


def _same_ports(permission, protocol, from_port, to_port):
    if protocol_name(permission.get("IpProtocol", "-1")) != protocol_name(protocol):
        return False
    if protocol_name(protocol) == "-1":
        return True
    return _ports(permission) == (from_port, to_port)


def select(permissions, protocol, from_port, to_port, sources=None):
    """The permissions for exactly ``protocol`` ``from_port``-``to_port``, each keeping only matching sources.

    ``sources`` (CIDRs, IPv6 CIDRs, group or prefix-list IDs) limits the match; empty or None matches every
    source. A wider range that merely contains the ports (``2000-3000``) is not selected: it is a different
    rule. Descriptions are dropped from the result (EC2 matches rules without them).
    """
    wanted = set(sources or [])
    selected = []
    for permission in permissions or []:
        if not _same_ports(permission, protocol, from_port, to_port):
            continue
        kept = {"IpProtocol": permission.get("IpProtocol")}
        if "FromPort" in permission:
            kept["FromPort"] = permission["FromPort"]
        if "ToPort" in permission:
            kept["ToPort"] = permission["ToPort"]
        found = False
        for list_key, id_key in SOURCE_KEYS:
            entries = []
            for entry in permission.get(list_key) or []:
                if wanted and entry.get(id_key) not in wanted:
                    continue
                clean = {k: v for k, v in entry.items() if k != "Description"}
                entries.append(clean)
            if entries:
                kept[list_key] = entries
                found = True
        if found:
            selected.append(kept)
    return selected


def containing(permissions, protocol, port):
    """Lines of the other rules that also let ``port`` in: wider ranges and all-traffic rules (reported, never changed)."""
    lines = []
    for permission in permissions or []:
        proto = protocol_name(permission.get("IpProtocol", "-1"))
        if proto == "-1":
            lines.extend(flatten([permission]))
            continue
        from_port, to_port = _ports(permission)
        if proto != protocol_name(protocol) or from_port is None or to_port is None:
            continue
        if (from_port, to_port) != (port, port) and from_port <= port <= to_port:
            lines.extend(flatten([permission]))
    return lines


def missing(permissions, protocol, from_port, to_port, cidrs=(), cidrs_ipv6=(), description=None):
    """The permission to authorize so that the rule exists for every given source (None when nothing is missing)."""
    present = select(permissions, protocol, from_port, to_port, list(cidrs) + list(cidrs_ipv6))
    have = set()
    for permission in present:
        have.update(e.get("CidrIp") for e in permission.get("IpRanges") or [])
        have.update(e.get("CidrIpv6") for e in permission.get("Ipv6Ranges") or [])
    extra = {"Description": description} if description else {}
    permission = {"IpProtocol": protocol_name(protocol) if protocol_name(protocol) != "-1" else "-1"}
    if permission["IpProtocol"] != "-1":
        permission.update(FromPort=from_port, ToPort=to_port)
    ranges = [dict(CidrIp=c, **extra) for c in cidrs if c not in have]
    ranges6 = [dict(CidrIpv6=c, **extra) for c in cidrs_ipv6 if c not in have]
    if ranges:
        permission["IpRanges"] = ranges
    if ranges6:
        permission["Ipv6Ranges"] = ranges6
    return permission if (ranges or ranges6) else None


def without(permissions, removed):
    """``permissions`` minus the sources in ``removed`` (both IpPermissions lists): the group after a revoke."""
    result = copy.deepcopy(permissions or [])
    for gone in removed or []:
        for permission in result:
            if not _same_ports(permission, gone.get("IpProtocol"), gone.get("FromPort"), gone.get("ToPort")):
                continue
            for list_key, id_key in SOURCE_KEYS:
                ids = {e.get(id_key) for e in gone.get(list_key) or []}
                if ids:
                    permission[list_key] = [e for e in permission.get(list_key) or [] if e.get(id_key) not in ids]
    return result
