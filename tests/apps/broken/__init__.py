"""App plugins that are wrong in each way discovery must refuse clearly."""
