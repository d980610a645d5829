"""The one SQLAlchemy `MetaData` every layer and app declares its tables on."""

from sqlalchemy import MetaData

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

fulltext_objects: set[str] = set()
"""Names of the full-text search objects a migration makes for one dialect only (an SQLite
FTS5 table and its shadow tables, a PostgreSQL GIN or MariaDB FULLTEXT index), which no table
declared for every dialect can hold: comparisons of the metadata with a database skip them."""
