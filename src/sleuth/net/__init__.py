"""The one HTTP client of every source: SSRF guard, per-host politeness, rate-limit budgets
shared by all workers, source addresses, limits, retries, paging (see fetcher)."""

from sleuth.net.budgets import Budget, BudgetStore, MemoryBudgets, RedisBudgets, SqlBudgets
from sleuth.net.errors import REASONS, FetchError
from sleuth.net.fetcher import Fetcher, FetchResult, SourceProfile, Validators, parse_url
from sleuth.net.guard import Guard, classify_address
from sleuth.net.politeness import HostClock, MemoryHostClock, Politeness
from sleuth.net.ratelimit import RateLimit, parse_rate_limit, parse_retry_after

__all__ = [
    "REASONS",
    "Budget",
    "BudgetStore",
    "FetchError",
    "FetchResult",
    "Fetcher",
    "Guard",
    "HostClock",
    "MemoryBudgets",
    "MemoryHostClock",
    "Politeness",
    "RateLimit",
    "RedisBudgets",
    "SourceProfile",
    "SqlBudgets",
    "Validators",
    "classify_address",
    "parse_rate_limit",
    "parse_retry_after",
    "parse_url",
]
