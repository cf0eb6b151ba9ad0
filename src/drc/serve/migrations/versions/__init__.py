"""Alembic revisions, oldest first: 0001 initial, 0002 job batch stats, 0003 worker heartbeats,
0004 tenant quotas and job parts."""
