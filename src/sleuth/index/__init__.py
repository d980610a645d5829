"""Hamming-distance index over 64-bit hashes: exact radius and k-nearest search.

`HammingIndex` is the index (multi-index hashing tables, a delta for recent additions,
tombstones, named groups, a memory-mapped saved form); `brute_force_radius` and
`brute_force_knn` are the references it is tested and benchmarked against.
"""

from sleuth.index.brute import brute_force_knn, brute_force_radius
from sleuth.index.hamming import HammingIndex, SearchResults
from sleuth.index.persist import IndexFileError

__all__ = [
    "HammingIndex",
    "IndexFileError",
    "SearchResults",
    "brute_force_knn",
    "brute_force_radius",
]
