"""An app plugin whose module fails when imported, as one with a missing dependency does."""

raise ImportError("No module named 'a_dependency_not_installed'")
