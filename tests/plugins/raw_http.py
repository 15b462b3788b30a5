"""A loopback TCP server that answers HTTP requests with bytes a test writes by hand.

For answers no real server would give on purpose: a body cut short, a
connection reset half-way, a broken compression. The server reads each
request whole (headers, then Content-Length bytes of body) before it calls
the test's `answer(conn)`, so the only surprises the client meets are the
ones the test wrote.
"""

import socket
import struct
import threading


def read_request(conn):
    """Read one HTTP request from `conn`; the raw bytes (empty if the client went away)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def serve_raw(answer):
    """Start the server; returns (listening socket, port). Close the socket to stop it.

    `answer(conn)` is called once per connection after the request was read;
    the connection is closed after it returns (unless `answer` closed it).
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def loop():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                try:
                    if read_request(conn):
                        answer(conn)
                except OSError:
                    pass

    threading.Thread(target=loop, daemon=True).start()
    return server, server.getsockname()[1]


def reset(conn):
    """Close `conn` with a TCP reset instead of an orderly shutdown."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
