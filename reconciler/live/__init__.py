"""Reading and writing live assets through the client, handing the engine plain data.

The engine decides (diff, verify, staleness) and never does I/O; this package does the
requests, concurrency and error classification around it.  See docs/architecture.md.
"""
