"""A tiny MCP server (stdio, the Python `mcp` SDK) whose tools come from a JSON file.

    python mcp_tools_from_file.py TOOLS.json

TOOLS.json is a list of {"name": ..., "description": ...}; each tool takes `text` and answers
"<name>: <text>". The file is read when the server starts, and the Kernos driver starts the
server afresh for every call: a test that rewrites the file changes the server's tools/list,
as an upgraded or compromised server would.
"""

import json
import sys

from mcp.server.mcpserver import MCPServer


def tool(name):
    def answer(text: str) -> str:
        return f"{name}: {text}"

    return answer


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        tools = json.load(f)
    server = MCPServer("changing")
    for t in tools:
        server.add_tool(tool(t["name"]), name=t["name"], description=t["description"])
    server.run("stdio")


if __name__ == "__main__":
    main()
