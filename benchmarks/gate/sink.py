#!/usr/bin/env python3
"""The pipe floor for compare-gate.sh: an HTTP/1.1 endpoint on 127.0.0.1 that takes a PUT body and does nothing
with it but copy it to a file (or drop it), then answers 201. No parsing beyond the request head, no inspection:
the least any upload endpoint behind the same kind of socket must do.

    sink.py PORT FILE|-        (- drops the bytes)
"""
import socket
import sys


def serve(port: int, target: str) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(8)
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    while True:
        connection, _ = listener.accept()
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                head += chunk
            header, _, body = head.partition(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
                if name.strip().lower() == b"expect" and value.strip().lower() == b"100-continue":
                    connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            sink = open(target, "wb") if target != "-" else None
            try:
                if sink:
                    sink.write(body)
                remaining = length - len(body)
                while remaining > 0:
                    n = connection.recv_into(view, min(len(buffer), remaining))
                    if n == 0:
                        break
                    if sink:
                        sink.write(view[:n])
                    remaining -= n
            finally:
                if sink:
                    sink.close()
            connection.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
