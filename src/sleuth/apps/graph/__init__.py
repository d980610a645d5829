"""The graph app: the Mastodon, Bluesky and X follow graphs crawled from seeds (Twittomatic)."""
