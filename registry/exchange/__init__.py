"""The registry's part in an exchange: what partners find, agree to, and get tokens for.

The catalog of signed dataset descriptions (``catalog``, ``catalog_api``), the
agreements it brokers without holding data (``agreements``,
``agreements_api``), the OAuth2 authorization server that issues fetch and
API tokens (``oauth``) and the check of tokens for its own API (``auth``).

May import: :mod:`registry.membership`, :mod:`registry.log`, the registry's
schema, the shared base and the foundations.
"""
