#!/usr/bin/env python3
"""The baseline for `make bench`: a minimal JSON-RPC 2.0 server on a unix socket (asyncio,
one JSON text per line) answering daemon.status with an object like annexd's."""
import asyncio, json, os, sys, time

START = time.time()


def status():
    return {"version": "0.0-python", "pid": os.getpid(), "boot": "python", "uptime": time.time() - START,
            "state_dir": "/nonexistent", "socket": sys.argv[1], "tor": "none", "repos": 0,
            "connections": 0, "latest_event": 0}


async def serve(reader, writer):
    while line := await reader.readline():
        try:
            req = json.loads(line)
            if req.get("method") == "daemon.status":
                reply = {"jsonrpc": "2.0", "id": req.get("id"), "result": status()}
            else:
                reply = {"jsonrpc": "2.0", "id": req.get("id"), "error": {"code": -32601, "message": "Method not found"}}
        except ValueError:
            reply = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
    writer.close()


async def main(path):
    server = await asyncio.start_unix_server(serve, path, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
