"""sleuth: a self-hosted crawler and image finder."""

__version__ = "0.1.0"
