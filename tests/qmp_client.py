#!/usr/bin/env python3
"""Drives `vmdma run --qmp` with QEMU's own QMP client (PyPI `qemu.qmp`).

Usage: qmp_client.py SOCKET. Run by tests/qmp.rs against a running vmdma;
exits 0 when every check holds, else prints what failed and exits 1.
Checks: query-status (running), stop (STOP event, paused), query-block and
query-blockstats (device ide0-hd0), an unknown command (CommandNotFound),
cont (RESUME event, running), quit (SHUTDOWN event).
"""

import asyncio
import sys
import traceback

from qemu.qmp import ExecuteError, QMPClient


async def next_event(events, name):
    """The next event called NAME (others are skipped), within 5 s."""
    while True:
        ev = await asyncio.wait_for(events.get(), timeout=5)
        if ev["event"] == name:
            return ev


async def main(path):
    qmp = QMPClient("vmdma-test")
    events = qmp.events  # every event, in order
    await qmp.connect(path)
    version = qmp.greeting.QMP.version
    assert version["qemu"]["major"] == 7, qmp.greeting

    status = await qmp.execute("query-status")
    assert status["running"] is True and status["status"] == "running", status

    await qmp.execute("stop")
    await next_event(events, "STOP")
    status = await qmp.execute("query-status")
    assert status["running"] is False and status["status"] == "paused", status

    block = await qmp.execute("query-block")
    assert block[0]["device"] == "ide0-hd0", block
    assert block[0]["inserted"]["image"]["virtual-size"] == 1 << 20, block
    stats = await qmp.execute("query-blockstats")
    assert stats[0]["device"] == "ide0-hd0", stats
    for key in ("rd_bytes", "wr_bytes", "rd_operations", "wr_operations", "flush_operations"):
        assert isinstance(stats[0]["stats"][key], int), stats

    try:
        await qmp.execute("system_reset")
        raise AssertionError("system_reset should fail")
    except ExecuteError as e:
        assert e.error_class == "CommandNotFound", e.error_class

    await qmp.execute("cont")
    await next_event(events, "RESUME")
    status = await qmp.execute("query-status")
    assert status["running"] is True, status

    await qmp.execute("quit")
    ev = await next_event(events, "SHUTDOWN")
    assert ev["data"]["reason"] == "host-qmp-quit", ev
    try:
        await qmp.disconnect()
    except EOFError:
        # The server closed the connection after quit, as QEMU does; the
        # client reports that end of stream when it disconnects.
        pass
    print("qmp_client: all checks passed")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except Exception as e:  # noqa: BLE001 - report any failure as one line
        traceback.print_exc()
        print(f"qmp_client: FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)
