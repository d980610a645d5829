"""Connectors to real APIs (social networks, art sites, link hubs, forums), on the fetcher."""
