"""What every crawler shares: runs and their items, resume, progress, outcome counting and a
record of every failed item, with the `errors` / `retry-errors` commands and the errors API
each app gets from it."""
