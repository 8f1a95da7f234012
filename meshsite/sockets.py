"""Twisted TCP connections, read and written the way asyncio does it (`manage.py serve`).

Twisted's transport only queues a write and registers for writability, then sends on a later
loop iteration and unregisters: two epoll_ctl calls and a loop pass per write. Its asyncio
reactor also runs every read inside log.callWithLogger, which builds a log context (dict copies)
per read only so that legacy log lines can name the connection. Both showed up as several per
cent of the server's CPU: the room mesh's WebSocket connections and the metering proxy's HTTP
connections use these instead.
"""

from typing import Any


def is_plain_tcp(transport: Any) -> bool:
    """A plain TCP connection (twisted.internet.tcp.Connection), not TLS or another wrapper."""
    return getattr(transport, "TLS", True) is False and hasattr(transport, "socket")


def unsent_bytes(transport: Any) -> int:
    """What the connection holds that the kernel has not taken yet (0 for another kind of transport)."""
    # twisted.internet.abstract.FileDescriptor keeps it here
    try:
        return int(len(transport.dataBuffer) - transport.offset + transport._tempDataLen)
    except AttributeError:
        return 0


def write_now(transport: Any, data: bytes) -> None:
    """Writes at once what the kernel takes, as asyncio does, and leaves only the rest to Twisted.
    Anything Twisted already holds goes first, so order is kept."""
    if (
        is_plain_tcp(transport)
        and transport.connected
        and not transport.disconnecting
        and transport.offset == len(transport.dataBuffer)
        and not transport._tempDataLen
    ):
        try:
            sent = transport.socket.send(data)
        except OSError:  # would block, or a broken connection: twisted's own write path handles both
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


def read_without_log_context(transport: Any) -> None:
    """Has the event loop call the connection's reads directly, not inside log.callWithLogger.
    Read errors are still logged and still disconnect (the reactor's _readOrWrite does both).
    When Twisted stops and restarts reading (backpressure), its own registration returns:
    harmless."""
    from twisted.internet import reactor

    readers = getattr(reactor, "_readers", None)
    loop = getattr(reactor, "_asyncioEventloop", None)
    if readers is None or loop is None or transport not in readers:
        return  # not the asyncio reactor, or not reading: nothing to replace
    loop.add_reader(readers[transport], reactor._readOrWrite, transport, True)
