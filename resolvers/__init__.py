"""Thin resolvers: who is calling (the context), which service to call, nothing more.

Each module mirrors a module of :mod:`schema`.  Query resolvers return domain objects
(or a ``Select`` for the schema to page through); mutation resolvers return the domain object
or the :class:`~billing.errors.UserError` that refused it, and the schema turns either
into a payload.  Inputs are only read here, never defined: the schema owns the API's shape.
"""
