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
    from lablib.machine import tools
    packages = tools.packages()
    for tool in ("ip", "iptables", "nft", "tcpdump", "dnsmasq", "conntrack", "dig", "unshare", "dot"):
        assert tool in packages


def test_the_set_up_left_every_system_tool_installed():
    """CI runs ./labkit setup (the VM's provisioning too) before the tests: check its result."""
    from lablib.machine import tools
    assert tools.missing() == {}


def test_the_vagrantfile_validates():
    import shutil
    import subprocess

    import pytest
    if shutil.which("vagrant") is None:
        pytest.skip("vagrant is not installed here (.ci/run installs it from Debian's packages)")
    done = subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (ROOT / "Vagrantfile").read_text()
    assert "./labkit setup" in text and 'host_ip: "127.0.0.1"' in text
    assert 'provider "virtualbox"' in text and 'provider "libvirt"' in text


def test_the_browser_tests_packages_are_installed_by_labkit_test_only():
    """Learners' ./labkit lab never needs Chromium; ./labkit test (and CI) installs it."""
    labkit = (ROOT / "labkit").read_text()
    listed = [line.split()[0] for line in (ROOT / "lablib" / "machine" / "test-packages.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert listed == ["chromium", "chromium-driver"]
    test_branch = labkit[labkit.index("\n  test)"):]
    test_branch = test_branch[:test_branch.index(";;")]
    assert "install_system_packages lablib/machine/test-packages.txt" in test_branch
    assert labkit.count("test-packages.txt") == 1
    import shutil
    assert shutil.which("chromium") and shutil.which("chromedriver")
