"""Connectors to real APIs (art sites, link hubs, social networks), each on `sleuth.net.fetcher`."""
