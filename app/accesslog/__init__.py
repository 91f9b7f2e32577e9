"""The access log: who looked at, exported or changed what, and whether it showed personal
data. Append-only (the database refuses edits)."""
