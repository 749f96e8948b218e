"""The offline unit tests (tests/unit) need no user namespaces: proved by running them
where none can be made."""
from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

# A user namespace of our own whose limit of user namespaces is 0: nothing inside it can
# make another (the machine's own limit is untouched), as on a machine where they are off.
NO_USER_NAMESPACES = """
echo 0 > /proc/sys/user/max_user_namespaces
if unshare --user true 2>/dev/null; then echo "a user namespace could still be made"; exit 99; fi
exec "$0" -m pytest -p no:cacheprovider -q tests/unit
"""


def test_the_unit_tests_pass_where_no_user_namespace_can_be_made():
    done = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c", NO_USER_NAMESPACES, sys.executable],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
