"""The registry: members, keys, the trust list, the catalog, OAuth2 and agreement brokering.

It never holds raw data. May import: the shared base (:mod:`corridor`) and the
foundations (:mod:`crypto`, :mod:`policies`). Never :mod:`node`, :mod:`audit`
or :mod:`deploy`.
"""
