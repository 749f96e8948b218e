"""Inside the sandbox: netlink dumps, read fast, for kernel_state.py.

pyroute2 declares every message read here — its fixed part (`fields`), its attributes
(`nla_map`) — and every constant, and lablib takes them from it. Its generic decoder,
though, costs about a millisecond of CPU a message (every attribute, nested ones too,
through asyncio), which for a lab of 100 namespaces was most of a snapshot. So a dump is
read here from a plain netlink socket made in the calling thread's namespace, and only
the attributes asked for are cut out of each message: the one thing written by hand is
the walk over netlink's type-length-value attributes.
"""
from __future__ import annotations

import os
import socket
import struct
from typing import Iterator

from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR

HEADER = struct.Struct("=IHHII")          # struct nlmsghdr: length, type, flags, sequence, port
ATTRIBUTE = struct.Struct("=HH")          # struct nlattr: length, type
NLA_TYPE_MASK = 0x3FFF                    # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
U8, U32, I32 = struct.Struct("=B"), struct.Struct("=I"), struct.Struct("=i")
RECEIVE = 1 << 17


class Layout:
    """A message's fixed part and attribute numbers, as a pyroute2 message class declares them."""

    def __init__(self, message_class) -> None:
        self.fields: dict[str, tuple[struct.Struct, int]] = {}
        offset = 0
        for name, kind in message_class.fields:
            order = kind[0] if kind[0] in "<>!=@" else "="
            packed = struct.Struct(order + kind.lstrip("<>!=@"))
            if not name.startswith("__"):
                self.fields[name] = (packed, offset)
            offset += packed.size
        self.size = offset
        self.attributes = attribute_numbers(message_class)

    def pack(self, **values) -> bytes:
        raw = bytearray(self.size)
        for name, value in values.items():
            packed, offset = self.fields[name]
            packed.pack_into(raw, offset, value)
        return bytes(raw)

    def field(self, message: "Message", name: str):
        packed, offset = self.fields[name]
        values = packed.unpack_from(message.data, message.start + offset)
        return values[0] if len(values) == 1 else values

    def raw_field(self, message: "Message", name: str) -> bytes:
        packed, offset = self.fields[name]
        start = message.start + offset
        return message.data[start:start + packed.size]


def attribute_numbers(message_class) -> dict[str, int]:
    """NAME -> number, from a pyroute2 nla_map (listed in order, or with explicit numbers)."""
    numbers = {}
    for position, entry in enumerate(message_class.nla_map):
        if isinstance(entry[0], int):
            numbers[entry[1]] = entry[0]
        else:
            numbers[entry[0]] = position
    return numbers


class Message:
    """One message of a dump: its fixed part at `start`, its attributes after it."""
    __slots__ = ("data", "start", "attributes")

    def __init__(self, data: bytes, start: int, end: int, layout: Layout) -> None:
        self.data, self.start = data, start
        self.attributes = attributes(data, start + layout.size, end)

    def get(self, number: int) -> bytes | None:
        span = self.attributes.get(number)
        return self.data[span[0]:span[1]] if span else None

    def text(self, number: int) -> str | None:
        raw = self.get(number)
        return raw.split(b"\0", 1)[0].decode(errors="replace") if raw is not None else None

    def u32(self, number: int) -> int | None:
        span = self.attributes.get(number)
        return U32.unpack_from(self.data, span[0])[0] if span else None

    def i32(self, number: int) -> int | None:
        span = self.attributes.get(number)
        return I32.unpack_from(self.data, span[0])[0] if span else None

    def u8(self, number: int) -> int | None:
        span = self.attributes.get(number)
        return U8.unpack_from(self.data, span[0])[0] if span else None

    def mac(self, number: int) -> str | None:
        raw = self.get(number)
        return ":".join(f"{byte:02x}" for byte in raw) if raw is not None else None

    def address(self, number: int, family: int) -> str | None:
        raw = self.get(number)
        return socket.inet_ntop(family, raw) if raw is not None else None

    def nested(self, number: int) -> dict[int, tuple[int, int]]:
        span = self.attributes.get(number)
        return attributes(self.data, *span) if span else {}


def attributes(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    """type -> (start, end) of each attribute's value in data[start:end]."""
    found = {}
    while start + 4 <= end:
        length, kind = ATTRIBUTE.unpack_from(data, start)
        if length < 4:
            break
        found[kind & NLA_TYPE_MASK] = (start + 4, start + length)
        start += (length + 3) & ~3
    return found


class Socket:
    """A netlink socket of the calling thread's network namespace."""

    def __init__(self, protocol: int) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        self.sock.bind((0, 0))
        self.sequence = 0

    def dump(self, message_type: int, layout: Layout, payload: bytes = b"") -> Iterator[Message]:
        """Every message of one dump request (`payload`: the request's fixed part)."""
        self.sequence += 1
        request = payload or bytes(layout.size)
        self.sock.send(HEADER.pack(HEADER.size + len(request), message_type, NLM_F_REQUEST | NLM_F_DUMP,
                                   self.sequence, 0) + request)
        while True:
            data = self.sock.recv(RECEIVE)
            offset = 0
            while offset + HEADER.size <= len(data):
                length, kind, _flags, sequence, _port = HEADER.unpack_from(data, offset)
                if length < HEADER.size:
                    return
                if sequence == self.sequence:
                    if kind == NLMSG_DONE:
                        return
                    if kind == NLMSG_ERROR:
                        error = -I32.unpack_from(data, offset + HEADER.size)[0]
                        if error:
                            raise OSError(error, os.strerror(error))
                        return
                    yield Message(data, offset + HEADER.size, offset + length, layout)
                offset += (length + 3) & ~3

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Socket":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
