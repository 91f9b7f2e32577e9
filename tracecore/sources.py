"""Where an untrusted input comes from: the address and the network of a public client.

Consumers' checks, shared places, reviews and complaints come from anonymous clients. A
client chooses its own cookie and browser string, so neither can tell one person from five;
its address it cannot choose as cheaply. The service therefore counts what a client sends by
its **address** (an IPv4 address; an IPv6 /64, what one home or phone is given) and by its
**network** (an IPv4 /24; an IPv6 /48, what one site or provider customer holds), never by
its cookie. See docs/consumer.md ("Untrusted input").
"""

from __future__ import annotations

import functools
import ipaddress

#: Prefix lengths of an address (what one subscriber holds) and of a network.
IPV4_ADDRESS, IPV4_NETWORK = 32, 24
IPV6_ADDRESS, IPV6_NETWORK = 64, 48


@functools.lru_cache(maxsize=4096)
def _prefix(address: str | None, v4: int, v6: int) -> str:
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        # Not an address (a test client, a misconfigured proxy): all such clients are one.
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = v4 if ip.version == 4 else v6
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def address_of(address: str | None) -> str:
    """The client's address as a limit counts it: an IPv4 address, or an IPv6 /64."""
    return _prefix(address, IPV4_ADDRESS, IPV6_ADDRESS)


def network_of(address: str | None) -> str:
    """The client's network: the IPv4 /24 or the IPv6 /48 its address is in."""
    return _prefix(address, IPV4_NETWORK, IPV6_NETWORK)
