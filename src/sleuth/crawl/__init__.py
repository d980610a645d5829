"""What every crawler shares: runs and their items, resume, progress, outcome counting and a
record of every failed item, with the `errors` / `retry-errors` commands and the errors API
each app gets from it.

An app that crawls (a URL list, seed accounts, API cursors, forum topics):
- names its runs (`runs.run_id_for`) and opens one (`runs.open_run(engine, run, app, name)`);
- adds items keyed naturally within the run (`runs.add_items`, with its `JobFor`: the job,
  with its dedup key, that works on an item), which queues only the unresolved ones, so
  resuming after Ctrl-C or kill -9 is adding the same items again; `runs.set_total` once all
  are listed;
- in each item's job, resolves or fails the item in the job's own transaction
  (`runs.resolve(conn, app, run, key, outcome)` / `runs.fail(..., reason, message)`), which
  counts the outcome once however often the job runs;
- follows the run from its command with `follow.follow_run`, and adds
  `cli.error_commands(app, job_for)` to its click group and `api.errors_blueprint(app)` to
  its web routes.
"""
