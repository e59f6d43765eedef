"""One PostgreSQL state shared by several runners and watch replicas, end to end: real CLI
processes in separate working directories, sharing nothing but the state's URL, against the
emulator and the suite's PostgreSQL server (tests/pg_server.py)."""
