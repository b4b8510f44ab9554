"""e3-api-server: the original engine's HTTP API over a local repository (see e3-api-server(1))."""
