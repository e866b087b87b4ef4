"""Where webhooks may be sent: public addresses only, checked at registration
and again at every delivery, after DNS resolution.

A webhook URL is the one place an account makes didhub open a connection of
its choosing, so a URL naming loopback, a private range, link-local (cloud
metadata at 169.254.169.254) or any other non-global address would let it
reach the platform's own network and, from the delivery's outcome, tell open
ports from closed ones. Hosts are resolved and every address checked; the
delivery then connects to the address that was checked (the Host header and
TLS name stay the URL's), so a DNS answer that changes between the check and
the connection (a rebind) can't redirect it. ``DIDHUB_WEBHOOK_ALLOW_PRIVATE``
lifts the rule for labs and tests.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from didhub.errors import ValidationFailed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL's host is not a public address (or can't be resolved); the
    message says which kind, never what answered."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    # IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks)
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and not is_public(inner):
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def _literal(host: str) -> Address | None:
    """The address a host names literally, in any form a resolver accepts:
    dotted, decimal (2130706433), hex (0x7f.1), octal, short (127.1), IPv6."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        # inet_aton is what getaddrinfo applies to numeric hosts, with every
        # legacy form; a name it can't read as a number raises.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _kind(ip: Address) -> str:
    inner = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    probe = inner or ip
    if probe.is_loopback:
        return "a loopback address"
    if probe.is_link_local:
        return "a link-local address (such as cloud metadata)"
    if probe.is_private:
        return "a private network address"
    if probe.is_multicast:
        return "a multicast address"
    return "not a public address"


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` stands for, or TargetRefused when it has none."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise TargetRefused(f"the host {host} could not be resolved") from None
    found: list[Address] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    if not found:
        raise TargetRefused(f"the host {host} could not be resolved")
    return found


@dataclass(frozen=True)
class Target:
    """A delivery's connection: the URL with its host replaced by the checked
    address, and the name to present as Host and for TLS."""

    url: str
    host_header: str
    tls_name: str | None


def _split(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, host, port


def check(url: str, allow_private: bool) -> Address:
    """The address a delivery to ``url`` would connect to; TargetRefused if
    any address the host resolves to is not public (unless allowed)."""
    _, host, port = _split(url)
    local = host.lower() == "localhost" or host.lower().endswith(".localhost")
    if local and not allow_private:
        raise TargetRefused("the URL points at this machine (localhost)")
    addresses = resolve(host, port)
    if not allow_private:
        for ip in addresses:
            if not is_public(ip):
                raise TargetRefused(f"the URL's host resolves to {_kind(ip)}")
    return addresses[0]


def check_for_registration(url: str, allow_private: bool) -> None:
    """:func:`check` as a 422 naming ``url``."""
    try:
        check(url, allow_private)
    except TargetRefused as exc:
        raise ValidationFailed(
            f"{exc}; webhooks are sent to public addresses only", field="url"
        ) from None


def pin(url: str, allow_private: bool) -> Target:
    """Resolve and check ``url`` now, for one delivery."""
    scheme, host, port = _split(url)
    ip = check(url, allow_private)
    parts = urlsplit(url)
    literal = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    netloc = literal if parts.port is None else f"{literal}:{port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return Target(
        urlunsplit((scheme, netloc, parts.path, parts.query, "")),
        host_header,
        host if scheme == "https" and _literal(host) is None else None,
    )
