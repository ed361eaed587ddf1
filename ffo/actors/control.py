"""The kernel's control socket: how `ffo status` (and later the RPC actor) asks a running node questions.

A ZeroMQ ROUTER on `ipc://<run_dir>/control.sock`, created with umask 077 and then chmod 0600 inside a 0700
run directory: only the daemon's user (root) can connect. Requests and replies are msgpack maps; a request
that does not decode gets an error reply, never an exception.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgpack
import zmq
import zmq.asyncio

log = logging.getLogger("ffo.control")
MAX_REQUEST_BYTES = 64 * 1024


class ControlServer:
    def __init__(
        self, context: zmq.asyncio.Context, path: Path, answers: Mapping[str, Callable[[], dict[str, Any]]]
    ) -> None:
        """`answers` maps each command (``status``, ``cluster``) to what builds its reply."""
        self.path = path
        self._answers = answers
        self._socket = context.socket(zmq.ROUTER)
        self._socket.linger = 0
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale socket from a previous run
        previous = os.umask(0o077)
        try:
            self._socket.bind(f"ipc://{path}")
        finally:
            os.umask(previous)
        os.chmod(path, 0o600)

    async def serve(self) -> None:
        while True:
            frames = await self._socket.recv_multipart()
            if len(frames) < 3:
                continue
            identity, body = frames[0], frames[-1]
            reply = self._answer(body)
            await self._socket.send_multipart([identity, b"", msgpack.packb(reply)])

    def _answer(self, body: bytes) -> dict[str, Any]:
        try:
            request = msgpack.unpackb(body, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException) as error:
            return {"ok": False, "error": f"request does not decode: {error}"}
        command = request.get("cmd") if isinstance(request, dict) else None
        answer = self._answers.get(command) if isinstance(command, str) else None
        if answer is not None:
            return {"ok": True, "status": answer()}
        return {"ok": False, "error": f"unknown command {command!r}"}

    def close(self) -> None:
        self._socket.close(linger=0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def ask(path: Path, command: str, timeout_ms: int = 3000) -> dict[str, Any]:
    """Send one request to a running kernel. Raises ConnectionError when nobody answers."""
    if not path.exists():
        raise ConnectionError(f"no control socket at {path}: is `ffo run` running?")
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    sock.linger = 0
    try:
        sock.connect(f"ipc://{path}")
        sock.send(msgpack.packb({"cmd": command}))
        if not sock.poll(timeout_ms):
            raise ConnectionError(f"the daemon did not answer on {path} within {timeout_ms} ms")
        reply = msgpack.unpackb(sock.recv(), raw=False)
    finally:
        sock.close()
        context.term()
    if not isinstance(reply, dict):
        raise ConnectionError("the daemon sent a malformed reply")
    return reply
