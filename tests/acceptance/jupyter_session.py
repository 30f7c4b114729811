"""One analyst's session without a browser, run inside an analytics VM by test_analytics.py.

Starts the user's server through JupyterHub's REST API, opens a kernel of each requested kind
through the user's Jupyter server (the same REST and WebSocket calls JupyterLab makes) and
runs one cell in it. Prints one JSON object: kernel name -> the cell's text output.
Only the Python standard library and tornado (a JupyterHub dependency) are used.

usage: python3 jupyter_session.py HUB_URL USER TOKEN KERNEL=CODE [KERNEL=CODE ...]
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import uuid
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

TIMEOUT = 180.0


async def call(url: str, token: str, method: str = "GET", body: dict | None = None,
               host: str | None = None) -> dict:
    headers = {"Authorization": f"token {token}", **({"Host": host} if host else {})}
    request = HTTPRequest(url, method=method, headers=headers,
                          body=None if body is None else json.dumps(body),
                          allow_nonstandard_methods=True, request_timeout=60,
                          ssl_options=ssl.create_default_context())
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    if response.code >= 400:
        raise SystemExit(f"{method} {url}: HTTP {response.code}: {response.body.decode(errors='replace')}")
    return json.loads(response.body) if response.body else {}


def server_base(hub: str, server_url: str) -> tuple[str, str | None]:
    """Where requests for the user's server go, and the Host header they name.

    With a host of its own per analyst (the hub's ``url`` for the server is then absolute), the
    hub's proxy routes by the Host header: requests go to the hub's address naming that host."""
    server = urlsplit(server_url)
    hub_parts = urlsplit(hub)
    return f"{hub_parts.scheme}://{hub_parts.netloc}{server.path.rstrip('/')}", server.netloc or None


async def start_server(hub: str, user: str, token: str) -> tuple[str, str | None]:
    # A server still running from an earlier session is the user's server as the hub's page would open it.
    if not (await call(f"{hub}/hub/api/users/{user}", token)).get("servers", {}).get(""):
        await call(f"{hub}/hub/api/users/{user}/server", token, "POST", {})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while loop.time() < deadline:
        model = await call(f"{hub}/hub/api/users/{user}", token)
        server = model.get("servers", {}).get("", {})
        if server.get("ready"):
            return server_base(hub, server["url"])
        await asyncio.sleep(2)
    raise SystemExit(f"the server of {user} was not ready within {TIMEOUT:.0f} s")


async def wait_for_output_channel(socket, send) -> None:
    """Ask for kernel_info until a reply's status arrives on the output channel: output sent
    before the server has subscribed to that channel for this connection would be lost."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while loop.time() < deadline:
        asked = send("kernel_info_request", {})
        try:
            while True:
                raw = await asyncio.wait_for(socket.read_message(), 2)
                if raw is None:
                    raise SystemExit("the kernel connection closed before the kernel answered")
                message = json.loads(raw)
                if (message.get("channel") == "iopub" and message["msg_type"] == "status"
                        and message.get("parent_header", {}).get("msg_id") == asked):
                    return
        except TimeoutError:
            continue
    raise SystemExit(f"the kernel's output channel was not ready within {TIMEOUT:.0f} s")


async def run_cell(server: tuple[str, str | None], user: str, token: str, kernel_name: str, code: str) -> str:
    server_url, host = server
    base = f"{server_url}/api/kernels"
    kernel = await call(base, token, "POST", {"name": kernel_name}, host)
    session = uuid.uuid4().hex
    request = HTTPRequest(f"{base}/{kernel['id']}/channels?session_id={session}".replace("https://", "wss://"),
                          headers={"Authorization": f"token {token}", **({"Host": host} if host else {})},
                          ssl_options=ssl.create_default_context(), request_timeout=60)
    socket = await websocket_connect(request)

    def send(msg_type: str, content: dict) -> str:
        msg_id = uuid.uuid4().hex
        socket.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": msg_type, "session": session, "username": user,
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [], "content": content}))
        return msg_id

    await wait_for_output_channel(socket, send)
    msg_id = send("execute_request", {"code": code, "silent": False, "store_history": False,
                                      "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    output: list[str] = []
    # The reply (shell channel) may overtake the output (iopub channel): the request is done only
    # when both its reply and the kernel's "idle" status for it, sent after all its output, arrived.
    replied = idle = False
    try:
        while not (replied and idle):
            raw = await asyncio.wait_for(socket.read_message(), TIMEOUT)
            if raw is None:
                raise SystemExit(f"{kernel_name}: the kernel connection closed")
            message = json.loads(raw)
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
    finally:
        socket.close()
        await call(f"{base}/{kernel['id']}", token, "DELETE", host=host)
    return "".join(output).strip()


async def main(hub: str, user: str, token: str, cells: list[str]) -> None:
    server = await start_server(hub, user, token)
    results = {}
    for cell in cells:
        kernel_name, _, code = cell.partition("=")
        results[kernel_name] = await run_cell(server, user, token, kernel_name, code)
    print(json.dumps(results))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    asyncio.run(main(sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], sys.argv[4:]))
