"""A Corridor node: one institution's sovereign store and its side of every exchange.

Rooms: :mod:`node.data` (its own data), :mod:`node.exchange` (agreements and
packages, both sides), :mod:`node.web` (pages and accounts), :mod:`node.log`
(its exchange log). At the top: the schema (``models``, ``db``, migrations),
settings, errors, the read API, the app factory, the WSGI entry point and the
``corridor node`` command group.

May import: the shared base (:mod:`corridor`) and the foundations
(:mod:`crypto`, :mod:`policies`). Never :mod:`registry`, :mod:`audit` or
:mod:`deploy`.
"""
