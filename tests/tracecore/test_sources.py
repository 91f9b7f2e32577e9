"""Addresses and networks of public clients: what a client cannot choose as cheaply as a
cookie."""

import pytest

from tracecore.sources import address_of, network_of


@pytest.mark.parametrize(
    "address,expected_address,expected_network",
    [
        ("203.0.113.7", "203.0.113.7/32", "203.0.113.0/24"),
        ("203.0.113.250", "203.0.113.250/32", "203.0.113.0/24"),
        ("::ffff:203.0.113.7", "203.0.113.7/32", "203.0.113.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64", "2001:db8:1::/48"),
        ("2001:db8:1:ffff::1", "2001:db8:1:ffff::/64", "2001:db8:1::/48"),
    ],
)
def test_an_address_and_its_network_are_prefixes(address, expected_address, expected_network):
    """Is an IPv4 client counted by its address and /24, an IPv6 one by its /64 and /48?"""
    assert address_of(address) == expected_address
    assert network_of(address) == expected_network


def test_every_host_of_one_network_is_one_network_and_others_are_not():
    """Do 256 addresses of one /24 make one network, and a neighbouring /24 another?"""
    assert {network_of(f"198.51.100.{n}") for n in range(256)} == {"198.51.100.0/24"}
    assert network_of("198.51.101.1") != network_of("198.51.100.1")


@pytest.mark.parametrize("address", [None, "", "not an address", "127.0.0.1:80"])
def test_what_is_not_an_address_is_one_unknown_source(address):
    assert address_of(address) == network_of(address) == "unknown"
