"""Connectors: each reads one kind of source over `sleuth.net.fetcher` into plain values."""
