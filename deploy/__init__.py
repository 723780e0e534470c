"""The demo-site topology: servers and the launcher."""
