"""A real MCP client (the Python `mcp` SDK from PyPI) driving Kernos's MCP server.

Usage: client.py stdio|http MODE SCENARIO DIR [URL KEY]
  MODE      legacy (initialize handshake; approvals arrive as elicitation requests) or
            auto (2026-07-28 discover; approvals arrive as input-required results)
  SCENARIO  full: list, read, bad arguments, a write approved here, its undo, a write
            declined here, history, resources, prompts;
            queue: a client that cannot ask anyone writes d.txt (the step waits in the
            daemon's approval queue);
            viewer: a viewer's key lists and tries to read;
            requests: kernos_request for each text of $KERNOS_MCP_REQUESTS (a JSON list),
            approving what it is asked
  DIR       a directory of the test's own tree: a.txt is read, b.txt written and undone,
            c.txt declined
Prints one JSON document with what it saw; the Rust test asserts on it and on the files.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
import mcp_types as types


def dump(result):
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


async def main():
    transport, mode, scenario, work = sys.argv[1:5]
    answers = []  # what the person answers, in order: "accept" / "decline"
    asked = []  # the questions the server asked

    async def elicit(context, params):
        asked.append(params.message)
        action = answers.pop(0) if answers else "cancel"
        if action == "accept":
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="decline")

    if transport == "stdio":
        server = StdioServerParameters(
            command=os.environ["KERNOS_BIN"], args=["mcp", "serve"], env=dict(os.environ)
        )
    else:
        url, key = sys.argv[5], sys.argv[6]
        http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(60.0)
        )
        server = streamable_http_client(url, http_client=http)

    out = {"mode": mode}
    info = types.Implementation(name="kernos-test-client", version="1.0")
    callback = None if scenario == "queue" else elicit
    async with Client(
        server, mode=mode, elicitation_callback=callback, client_info=info, read_timeout_seconds=60
    ) as c:
        out["protocol"] = c.session.protocol_version
        if scenario == "queue":
            d = os.path.join(work, "d.txt")
            out["write"] = dump(await c.call_tool("fs.write", {"path": d, "content": "queued"}))
            print(json.dumps(out))
            return
        if scenario == "requests":
            out["results"] = []
            for text in json.loads(os.environ["KERNOS_MCP_REQUESTS"]):
                answers.append("accept")
                out["results"].append(
                    dump(await c.call_tool("kernos_request", {"request": text, "cwd": work}))
                )
            print(json.dumps(out))
            return
        if scenario == "viewer":
            out["tools"] = [t.name for t in (await c.list_tools()).tools]
            out["read"] = dump(await c.call_tool("fs.read", {"path": os.path.join(work, "a.txt")}))
            out["history"] = dump(await c.call_tool("kernos_history", {}))
            print(json.dumps(out))
            return
        tools = await c.list_tools()
        out["tools"] = {t.name: dump(t) for t in tools.tools}

        a = os.path.join(work, "a.txt")
        out["read"] = dump(await c.call_tool("fs.read", {"path": a}))
        out["bad_args"] = dump(await c.call_tool("fs.read", {"nope": 1}))

        answers.append("accept")
        b = os.path.join(work, "b.txt")
        out["write"] = dump(await c.call_tool("fs.write", {"path": b, "content": "from mcp"}))
        out["b_after_write"] = open(b).read() if os.path.exists(b) else None

        tx = out["write"].get("structuredContent", {}).get("transaction")
        answers.append("accept")
        out["undo"] = dump(await c.call_tool("kernos_undo", {"transaction": tx}))

        answers.append("decline")
        cpath = os.path.join(work, "c.txt")
        out["declined"] = dump(
            await c.call_tool("fs.write", {"path": cpath, "content": "never"})
        )

        out["history"] = dump(await c.call_tool("kernos_history", {"limit": 5}))
        res = await c.read_resource("kernos://history")
        out["history_resource"] = dump(res)
        out["machine"] = dump(await c.read_resource("kernos://machine"))
        out["prompts"] = [p.name for p in (await c.list_prompts()).prompts]
    out["asked"] = asked
    print(json.dumps(out))


asyncio.run(main())
