"""The notebook and the agent speak one protocol (model/protocol.py): every operation
has its handler, and what crosses the pipe comes out as it went in. Starts no sandbox."""
from __future__ import annotations

import dataclasses
from multiprocessing import Pipe

import pytest

from lablib.inside.agent import HANDLERS
from lablib.model import protocol


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
    required = {field.name: {"int": 3, "str": "x"}[str(field.type)]
                for field in dataclasses.fields(operation) if field.default is dataclasses.MISSING}
    request = operation(**required)
    assert across_the_pipe(request) == request
