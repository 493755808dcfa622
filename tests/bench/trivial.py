"""The trivial endpoint of `make bench`: a raw asyncio (uvloop) HTTP/1.1 server that answers every
request with a fixed `200 ok`, to measure the ceiling of the load generator (wrk) in the same run.
It parses no more than it must (the end of the head and Content-Length), so it is faster than any
service; the ceiling it shows is a lower bound of wrk's own (on two cores, wrk and this server
each have one).

    python -m tests.bench.trivial PORT      # prints "ready" once it listens
"""

import asyncio
import sys

from tests.bench.lean import run_fast

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def count_requests(buf: bytes | bytearray) -> tuple[int, int]:
    """(complete requests in `buf`, bytes they take): heads up to the blank line, then a body of
    Content-Length bytes when the head names one."""
    count, pos = 0, 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return count, pos
        head = bytes(buf[pos:end]).lower()
        length = 0
        i = head.find(b"\r\ncontent-length:")
        if i >= 0:
            line_end = head.find(b"\r\n", i + 2)
            length = int(head[i + 17 : line_end if line_end > 0 else len(head)].strip())
        if len(buf) < end + 4 + length:
            return count, pos
        count += 1
        pos = end + 4 + length


class Trivial(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        count, used = count_requests(self.buf)
        if count:
            del self.buf[:used]
            self.transport.write(RESPONSE * count)  # type: ignore[attr-defined]


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Trivial, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    run_fast(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
