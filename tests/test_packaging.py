"""Set-up stays true: one list of dependencies, README commands that CI really runs."""
from __future__ import annotations

import re
import tomllib

from conftest import ROOT


def pinned(lines: list[str]) -> set[str]:
    return {line.strip().lower() for line in lines}


def test_environment_yml_lists_exactly_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = pinned(project["dependencies"] + project["optional-dependencies"]["test"])
    listed = re.findall(r"^\s+- ([A-Za-z0-9_.-]+==\S+)\s*$", (ROOT / "environment.yml").read_text(), re.M)
    assert pinned(listed) == wanted


def test_readme_has_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "./labkit lab" in readme and "./labkit test" in readme
    assert re.search(r"^\./labkit test\b", (ROOT / ".ci" / "run").read_text(), re.M)


def test_every_system_package_names_the_tools_it_brings():
    from lablib import tools
    packages = tools.packages()
    for tool in ("ip", "iptables", "nft", "tcpdump", "dnsmasq", "conntrack", "dig", "unshare", "dot"):
        assert tool in packages
