"""IPv4 ranges and addresses as a stack file writes them: parsed once, with the reason when they are not.

Validation, the data sources and the DNS allow-list all read ranges from the stack; one parser
keeps their messages the same.
"""

from __future__ import annotations

import ipaddress

__all__ = ["PRIVATE_RANGES", "is_ipv4_address", "is_private", "parse_range"]

# RFC 1918. Python's own is_private also counts loopback, link-local and documentation ranges,
# which no virtual network or trust LAN can use.
PRIVATE_RANGES = tuple(ipaddress.IPv4Network(r) for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def parse_range(value: str) -> ipaddress.IPv4Network | str:
    """The range, or what is wrong with it, worded to follow the field's name in a message."""
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        try:
            loose = ipaddress.IPv4Network(value, strict=False)
        except ValueError:
            return f"is not a valid IPv4 range: {error}"
        return f"has host bits set; did you mean {loose}?"


def is_private(network: ipaddress.IPv4Network) -> bool:
    return any(network.subnet_of(private) for private in PRIVATE_RANGES)


def is_ipv4_address(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True
