"""The apps built on the engine. Each owns its tables, migrations, job kinds, blueprint and CLI."""

from pathlib import Path

APPS_DIR = Path(__file__).parent

# Alembic version folders of every installed app, applied with the core migrations.
MIGRATION_DIRS = [APPS_DIR / "images" / "migrations"]
