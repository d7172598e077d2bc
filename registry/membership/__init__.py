"""Who belongs to the federation: join requests, members and their keys, the trust list.

``members`` (signed join requests, admission and suspension, node URL rules,
key rotation) and ``trust`` (the signed, versioned trust list published on
every change).

May import: :mod:`registry.log`'s exchange log, the registry's schema, the
shared base and the foundations.
"""
