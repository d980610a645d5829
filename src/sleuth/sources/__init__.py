"""Connectors to the social networks artists post on: X, Mastodon and Bluesky."""
