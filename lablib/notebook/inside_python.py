"""Python functions a learner writes in the notebook, run inside the lab host.

Netlink (pyroute2) must run where the namespaces are: inside the sandbox. So a function
decorated with `@lab.python` is kept as source, and `lab.call("name", args...)` runs every
kept function in a fresh `python3` inside the lab host (as its root, with pyroute2 at hand)
and calls that one — the same as saving them to a file there and running it.

    @lab.python
    def create_bridge(name, cidr):
        with IPRoute() as ip:
            ...
    lab.call("create_bridge", "br0", "192.168.100.1/24")
"""
from __future__ import annotations

import inspect
import json
import textwrap

from ..model.errors import LabError

PRELUDE = """\
import json, sys, traceback
from pyroute2 import IPRoute, NetNS, netns
"""
MARK = "LABLIB_PYTHON_EOF"


class PythonFunctions:
    """The functions kept for one lab host, by name (defining one again replaces it)."""

    def __init__(self) -> None:
        self.sources: dict[str, str] = {}

    def keep(self, function):
        try:
            source = textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError):
            raise LabError(f"cannot read the source of {function!r}: define it in a notebook cell") from None
        lines = source.splitlines()
        while lines and lines[0].lstrip().startswith("@"):   # the decorator itself stays here
            lines.pop(0)
        self.sources[function.__name__] = "\n".join(lines)
        return function

    def script(self, name: str, args: tuple, kwargs: dict) -> str:
        if name not in self.sources:
            known = ", ".join(self.sources) or "none yet"
            raise LabError(f"no function {name!r} defined with @lab.python; defined: {known}")
        call = json.dumps([list(args), kwargs])
        return "\n\n".join([PRELUDE, *self.sources.values(), f"""\
_args, _kwargs = json.loads({call!r})
try:
    _value = {name}(*_args, **_kwargs)
except Exception:
    traceback.print_exc()
    sys.exit(1)
print("LABLIB-RESULT " + json.dumps(_value if isinstance(_value, (type(None), bool, int, float, str, list, dict)) else repr(_value)))
"""])

    def call(self, lab, name: str, args: tuple, kwargs: dict, timeout: float):
        script = self.script(name, args, kwargs)
        if MARK in script:
            raise LabError(f"your code contains {MARK}, which lablib uses itself; rename it")
        result = lab.sh(f"python3 - <<'{MARK}'\n{script}\n{MARK}", check=False, timeout=timeout)
        printed = [line for line in result.stdout.splitlines() if not line.startswith("LABLIB-RESULT ")]
        if printed:
            print("\n".join(printed))
        if not result.ok:
            raise LabError(f"{name}() failed inside the lab host: {_where_it_failed(result.stderr, script)}")
        value = next((line[len("LABLIB-RESULT "):] for line in result.stdout.splitlines()
                      if line.startswith("LABLIB-RESULT ")), "null")
        return json.loads(value)


def _where_it_failed(stderr: str, script: str) -> str:
    """The error, and the learner's own line that raised it (not pyroute2's insides)."""
    lines = stderr.strip().splitlines()
    if not lines:
        return "it exited without a message"
    error = lines[-1].split(".")[-1] if lines[-1].startswith("pyroute2.") else lines[-1]
    theirs = [(i, line) for i, line in enumerate(lines) if line.strip().startswith('File "<stdin>"')]
    if not theirs:
        return error
    _, frame = theirs[-1]
    function = frame.rsplit(" in ", 1)[-1]
    number = int(frame.split("line ", 1)[1].split(",", 1)[0])
    source = script.splitlines()
    code = source[number - 1].strip() if 0 < number <= len(source) else ""
    return f"{error}, at `{code}` in {function}()" if code else f"{error}, in {function}()"
