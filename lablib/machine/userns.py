"""Can this machine make user namespaces, and if not, the one-line fix."""
from __future__ import annotations

from dataclasses import dataclass

from ..model.names import sysctl_path

VM_HINT = "or use the disposable VM: vagrant up (see README)"


@dataclass
class Finding:
    ok: bool
    what: str
    fix: str = ""
    required: bool = True


def read_sysctl(name: str) -> str | None:
    """The machine's value of sysctl `name`, or None where this kernel has no such setting."""
    try:
        return sysctl_path(name).read_text().strip()
    except OSError:
        return None


def user_namespace_blockers() -> list[Finding]:
    """Kernel settings that stop an ordinary user creating a user namespace, each with its fix."""
    found = []
    if read_sysctl("kernel.unprivileged_userns_clone") == "0":
        found.append(Finding(False, "unprivileged user namespaces are off (kernel.unprivileged_userns_clone=0)",
                             f"sudo sysctl -w kernel.unprivileged_userns_clone=1, {VM_HINT}"))
    if read_sysctl("user.max_user_namespaces") == "0":
        found.append(Finding(False, "user namespaces are disabled (user.max_user_namespaces=0)",
                             f"sudo sysctl -w user.max_user_namespaces=15000, {VM_HINT}"))
    if read_sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
        found.append(Finding(False, "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+)",
                             "run ./labkit setup with sudo (installs an AppArmor profile for unshare), "
                             f"or sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, {VM_HINT}"))
    return found


def explain_start_failure(complaint: str) -> str:
    """One line saying why a lab host would not start, and what fixes it."""
    blockers = user_namespace_blockers()
    if blockers:
        return f"cannot start a lab host: {blockers[0].what}; fix: {blockers[0].fix}"
    first = next((line for line in complaint.splitlines() if line.strip()), "no error message")
    if "newuidmap" in complaint or "newgidmap" in complaint or "subuid" in complaint:
        return (f"cannot start a lab host: mapping your subordinate user ids failed ({first}); "
                "check /etc/subuid and /etc/subgid, or remove your line there to use a single-uid map")
    if "Operation not permitted" in complaint or "Permission denied" in complaint:
        return (f"cannot start a lab host: the kernel refused a namespace operation ({first}); "
                f"run python -m lablib doctor, {VM_HINT}")
    return f"cannot start a lab host: {first}; run python -m lablib doctor for details"
