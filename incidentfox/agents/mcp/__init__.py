"""MCP servers per team (design §7): ``mcp_servers.{id}`` declares a stdio or streamable-HTTP server,
``agents.{name}.mcp_servers`` attaches it to the planner or a sub-agent. ``servers`` parses the config,
``connection`` starts and stops one server, ``tools`` wraps its tools in the toolset adapter,
``attach`` runs a run's servers, ``health`` checks them for the App Home."""
