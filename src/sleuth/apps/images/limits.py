"""The bounds of a similarity search, shared by the search, its API and its command.

A module of its own because the command's options need them when `sleuth images` is built,
before any search runs: the crawl's process never imports the search (numpy, the index)."""

# From bench/search_quality.py (bench/RESULTS.md): recall of transformed copies 89.9% at 6
# (AOTF's value), 92.9% at 8, 95.3% at 10; the closest pair of unrelated photos is at 12. pHashes
# always have 32 ones, so distances are even and 10 behaves like 11.
DEFAULT_MAX_DISTANCE = 10
MAX_DISTANCE = 32  # half the bits: beyond it pHashes say nothing about likeness
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
