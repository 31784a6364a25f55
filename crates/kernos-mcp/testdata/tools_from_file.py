"""A tiny MCP server (the Python `mcp` SDK) whose tools come from a JSON file.

    python tools_from_file.py TOOLS.json            stdio
    python tools_from_file.py TOOLS.json PORT       streamable HTTP on 127.0.0.1:PORT/mcp

TOOLS.json is a list of {"name": ..., "description": ..., "fails": false, "env": false}; each
tool takes `text` and answers "<name>: <text>", or reports an error (isError) saying "<name>
failed: <text>" when `fails` is true, or answers "<name>: <value>" of the environment
variable named `text` ("<unset>" when the server has no such variable) when `env` is true. The file is read when the server starts, and the Kernos driver
starts a stdio server afresh for every call: a test that rewrites the file changes the
server's tools/list, as an upgraded or compromised server would.
"""

import json
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def tool(name, fails, env):
    def answer(text: str) -> str:
        if fails:
            raise ToolError(f"{name} failed: {text}")
        if env:
            return f"{name}: {os.environ.get(text, '<unset>')}"
        return f"{name}: {text}"

    return answer


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        tools = json.load(f)
    server = MCPServer("from-file")
    for t in tools:
        server.add_tool(
            tool(t["name"], t.get("fails", False), t.get("env", False)),
            name=t["name"],
            description=t["description"],
        )
    if len(sys.argv) > 2:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
