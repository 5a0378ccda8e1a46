"""The Alembic migrations (``env.py``, ``versions/``) and ``kassa migrate`` (:mod:`migrations.migrate`)."""
