"""Address checks for URLs Herald fetches on a customer's behalf (SSRF protection).

The check runs on the resolved addresses, not the host name, and the caller
then connects to one of exactly those addresses: a name that resolves to a
public address once and to 127.0.0.1 a moment later cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(Exception):
    """The host is, or resolves to, an address that is not on the public internet."""


class UnresolvableHost(Exception):
    """The host name does not resolve."""


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast only: no loopback, private, link-local (cloud metadata), CGNAT, multicast or
    reserved ranges, including IPv4 addresses wrapped in IPv6 (mapped or 6to4)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None:
            return is_public(inner)
    return ip.is_global and not ip.is_multicast


async def resolve_public(host: str, port: int = 443) -> list[str]:
    """Every address `host` resolves to, if all of them are public; else BlockedAddress.

    A host with any non-public address is refused as a whole, so a mixed answer cannot be used to reach an
    internal service on a later attempt."""
    host = host.strip("[]")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnresolvableHost(f"{host} does not resolve") from exc
        # The zone of a scoped IPv6 address ("fe80::1%eth0") is not part of the address.
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))
    if not addresses:
        raise UnresolvableHost(f"{host} does not resolve")
    blocked = [str(a) for a in addresses if not is_public(a)]
    if blocked:
        raise BlockedAddress(f"{host} resolves to a non-public address")
    return [str(a) for a in addresses]
