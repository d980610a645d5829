"""Connectors to real APIs (social networks, art sites, link hubs), each on `sleuth.net.fetcher`."""
