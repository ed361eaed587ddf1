"""The control socket answers what it can and refuses garbage without harming the kernel."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio

from ffo.actors.control import ControlServer, ask


@pytest.mark.asyncio
async def test_status_garbage_and_permissions(run_dir: Path) -> None:
    context = zmq.asyncio.Context()
    path = run_dir / "control.sock"
    server = ControlServer(context, path, {"status": lambda: {"node": "t"}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    serving = asyncio.create_task(server.serve())
    try:
        reply = await asyncio.to_thread(ask, path, "status")
        assert reply == {"ok": True, "status": {"node": "t"}}
        assert (await asyncio.to_thread(ask, path, "reboot"))["ok"] is False
        raw = zmq.Context().socket(zmq.REQ)
        raw.connect(f"ipc://{path}")

        def exchange(garbage: bytes) -> dict[str, object]:
            raw.send(garbage)
            assert raw.poll(5000)
            reply: dict[str, object] = msgpack.unpackb(raw.recv())
            return reply

        for garbage in (b"\xc1", msgpack.packb([1, 2]), b""):
            assert (await asyncio.to_thread(exchange, garbage))["ok"] is False
        raw.close(linger=0)
        assert not serving.done()
    finally:
        serving.cancel()
        server.close()
        context.destroy(linger=0)
