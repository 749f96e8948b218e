"""How namespaces and sysctls are named, the same on both sides (model/names.py). Starts no sandbox."""
from __future__ import annotations

from pathlib import Path

from lablib.model.names import (
    HOST,
    canonical_ns,
    is_world,
    sysctl_path,
    world_host,
    world_ns,
)
from lablib.model.world import World


def test_the_lab_host_has_one_name_however_it_is_given():
    assert [canonical_ns(ns) for ns in (None, "", "host", "c1", "world:web")] == [HOST, HOST, HOST, "c1", "world:web"]


def test_an_outside_host_is_named_and_recognised_the_same_way():
    assert world_ns("client") == World().client.ns == "world:client"
    assert world_host(world_ns("web")) == "web"
    assert [is_world(ns) for ns in ("world:web", "c1", "host", None, "")] == [True, False, False, False, False]


def test_a_sysctl_key_names_its_proc_file_as_sysctl_does():
    assert sysctl_path("net.ipv4.ip_forward") == Path("/proc/sys/net/ipv4/ip_forward")
    assert sysctl_path("net.ipv4.ip_forward").exists()
    # An interface name with a dot (a VLAN, eth0.100) is written with a slash in the key.
    assert sysctl_path("net.ipv4.conf.eth0/100.forwarding") == Path("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
