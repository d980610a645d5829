"""The forum app: Discourse forums and bB XML forums crawled into SQL, for their statistics."""
