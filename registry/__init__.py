"""The registry: members, keys, the trust list, the catalog, OAuth2 and agreement brokering.

It never holds raw data. Rooms: :mod:`registry.membership` (join requests,
members, the trust list), :mod:`registry.exchange` (catalog, agreements,
tokens), :mod:`registry.log` (its exchange log and the witness),
:mod:`registry.web` (pages and accounts). At the top: the schema (``models``,
``db``, migrations), settings, the request context, the API blueprints, the
app factory, the WSGI entry point and the ``corridor registry`` group.

May import: the shared base (:mod:`corridor`) and the foundations
(:mod:`crypto`, :mod:`policies`). Never :mod:`node`, :mod:`audit` or
:mod:`deploy`.
"""
