"""The cross-border match ledger: which animal of this node is which animal of a partner's.

The signed messages (``messages``), the ledger kept in the node's database
(``ledger``; its rules are pure, in :mod:`policies.links`), the endpoint
partner nodes deliver messages to (``api``: ``POST /links``) and
``corridor node links`` (``cli``).

May import: :mod:`node.exchange` (tokens, trust list, registry client),
:mod:`node.log`, the node's schema, the shared base and the foundations.
"""
