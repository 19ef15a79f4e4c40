"""The database: engine and migrations, and the run store with its tables and rows."""
