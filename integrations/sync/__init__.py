"""The sync engine: start, run, finish, reap and schedule sessions."""
