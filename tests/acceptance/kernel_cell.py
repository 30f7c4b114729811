"""Run one cell in a running Jupyter kernel over its WebSocket, with the standard library alone.

The test host has no tornado (jupyter_session.py runs inside the VMs, where JupyterHub brings it), and
the Bastion path's JupyterLab is reached from the client namespace through a forwarded port: this is
the same kernel protocol JupyterLab's browser page speaks (JSON messages on
/api/kernels/<id>/channels), over a plain ws:// connection to that port.

usage: python -m tests.acceptance.kernel_cell BASE_URL TOKEN KERNEL_ID CODE   (prints the cell's output)
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import sys
import time
import uuid
from urllib.parse import urlsplit

TIMEOUT = 120.0


class Channel:
    """A client WebSocket (RFC 6455): masked text frames out, any frames in."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), 30)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise SystemExit(f"the kernel's WebSocket closed during the handshake: {head!r}")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"the kernel's WebSocket refused the upgrade: {head.splitlines()[0]!r}")

    def _exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise SystemExit("the kernel's WebSocket closed")
            data += chunk
        return data

    def send(self, payload: dict, opcode: int = 1) -> None:
        data = json.dumps(payload).encode() if opcode == 1 else payload  # type: ignore[assignment]
        length = len(data)
        header = bytes([0x80 | opcode])
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def receive(self) -> dict:
        message = b""
        while True:
            first, second = self._exact(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._exact(8))[0]
            data = self._exact(length)
            opcode = first & 0x0F
            if opcode == 8:
                raise SystemExit("the kernel's WebSocket was closed by the server")
            if opcode == 9:  # ping: answer, keep reading
                self.send(data, opcode=10)  # type: ignore[arg-type]
                continue
            if opcode == 10:
                continue
            message += data
            if first & 0x80:
                return json.loads(message)


def run_cell(base: str, token: str, kernel: str, code: str) -> str:
    session = uuid.uuid4().hex
    url = base.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels?session_id={session}&token={token}"
    channel = Channel(url)
    channel.sock.settimeout(TIMEOUT)

    def request(msg_type: str, content: dict) -> str:
        msg_id = uuid.uuid4().hex
        channel.send({"header": {"msg_id": msg_id, "msg_type": msg_type, "session": session, "username": "",
                                 "version": "5.3", "date": ""},
                      "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [], "content": content})
        return msg_id

    # Output arrives on iopub only once the server has subscribed to it: ask for kernel info until
    # anything arrives there, so the cell's output cannot be lost.
    deadline = time.monotonic() + TIMEOUT
    channel.sock.settimeout(1)
    while True:
        request("kernel_info_request", {})
        try:
            if channel.receive().get("channel") == "iopub":
                break
        except TimeoutError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("no message on the kernel's iopub channel")
    channel.sock.settimeout(TIMEOUT)
    msg_id = request("execute_request", {"code": code, "silent": False, "store_history": False,
                                         "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    output, replied, idle = [], False, False
    while not (replied and idle):
        message = channel.receive()
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            output.append(content["text"])
        elif kind in ("execute_result", "display_data"):
            output.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            output.append(f"{content['ename']}: {content['evalue']}")
        elif kind == "execute_reply":
            replied = True
        elif kind == "status" and content.get("execution_state") == "idle":
            idle = True
    channel.sock.close()
    return "".join(output).strip()


if __name__ == "__main__":
    print(run_cell(*sys.argv[1:5]))
