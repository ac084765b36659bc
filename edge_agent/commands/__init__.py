"""One module per CLI command; see edge_agent.cli."""
