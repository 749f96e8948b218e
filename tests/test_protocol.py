"""The notebook and the agent speak one protocol (model/protocol.py): every operation
has its handler, and what crosses the pipe comes out as it went in. Starts no sandbox."""
from __future__ import annotations

import dataclasses
import inspect
from multiprocessing import Pipe

import pytest

from lablib.inside.agent import HANDLERS
from lablib.model import errors, protocol
from lablib.notebook.results import CommandResult


def across_the_pipe(message: object) -> object:
    """`message` after a trip through a pipe like the sandbox's (a pickling Connection)."""
    receiving, sending = Pipe(duplex=False)
    with receiving, sending:
        sending.send((7, message))
        request_id, arrived = receiving.recv()
    assert request_id == 7
    return arrived


def test_every_operation_has_exactly_one_handler_in_the_agent():
    assert set(HANDLERS) == set(protocol.OPERATIONS)
    assert len(set(HANDLERS.values())) == len(HANDLERS)


@pytest.mark.parametrize("operation", protocol.OPERATIONS, ids=lambda op: op.__name__)
def test_every_operation_crosses_the_pipe_unchanged(operation):
    required = {field.name: {"int": 3, "str": "x", "dict": {"dockerd": "/usr/sbin/dockerd"}}[str(field.type)]
                for field in dataclasses.fields(operation) if field.default is dataclasses.MISSING}
    request = operation(**required)
    assert across_the_pipe(request) == request


def every_error_class() -> list[type[errors.LabError]]:
    return [kind for kind in vars(errors).values() if isinstance(kind, type) and issubclass(kind, errors.LabError)]


def an_instance_of(kind: type[errors.LabError]) -> errors.LabError:
    """One of `kind`, with every argument its constructor requires (a real CommandResult
    for those that carry a `result`)."""
    result = CommandResult("ping -c1 10.0.0.9", "c1", "", "connect: Network is unreachable\n", 2, 0.01,
                           ["a note"], b"")
    extra = {name: result for name in inspect.signature(kind.__init__).parameters if name == "result"}
    return kind(f"{kind.__name__} happened; do this", **extra)


def test_the_error_classes_are_all_here():
    names = {kind.__name__ for kind in every_error_class()}
    assert {"CommandFailed", "CommandTimeout", "WaitingForInput", "NamespaceNotFound", "AgentDied"} <= names


@pytest.mark.parametrize("kind", every_error_class(), ids=lambda kind: kind.__name__)
def test_every_error_class_is_rebuilt_across_the_pipe(kind):
    error = an_instance_of(kind)
    rebuilt = protocol.rebuild_error(across_the_pipe(protocol.encode_error(error)))
    assert type(rebuilt) is kind
    assert str(rebuilt) == str(error)
    assert getattr(rebuilt, "result", None) == getattr(error, "result", None)


def test_errors_that_carry_a_result_keep_it_across_the_pipe():
    carrying = [kind for kind in every_error_class() if "result" in inspect.signature(kind.__init__).parameters]
    assert {kind.__name__ for kind in carrying} == {"CommandFailed", "CommandTimeout", "WaitingForInput", "LimitReached"}
    for kind in carrying:
        rebuilt = protocol.rebuild_error(across_the_pipe(protocol.encode_error(an_instance_of(kind))))
        assert rebuilt.result.stderr == "connect: Network is unreachable\n" and rebuilt.result.exit_code == 2


def test_a_bug_in_the_agent_arrives_as_one_line_that_says_so():
    try:
        {}["missing"]
    except KeyError as bug:
        rebuilt = protocol.rebuild_error(across_the_pipe(protocol.encode_error(bug)))
    assert type(rebuilt) is errors.LabError
    assert str(rebuilt) == "lablib agent failed: KeyError('missing')"


def test_an_error_class_this_side_does_not_know_arrives_as_a_lab_error():
    rebuilt = protocol.rebuild_error(protocol.Failure("ErrorOfANewerAgent", "it went wrong"))
    assert type(rebuilt) is errors.LabError and str(rebuilt) == "it went wrong"
