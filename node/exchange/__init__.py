"""What happens when a partner fetches a package, from both sides.

Agreements and their events (``agreements``, ``agreement_sync``,
``agreements_cli``), the registry and OAuth clients (``registry_client``,
``oauth_client``), access tokens checked at the node (``auth``), the pinned
anchor and trust list (``trust_store``) and the thread that keeps them fresh
(``refresher``); on the provider's side what a plan releases (``release``),
the rows read back out (``rows``), the signed package (``package``) streamed
to the partner (``streaming``, ``agreements_api``); on the requester's side
the download, verification and receipt (``fetch``).

May import: :mod:`node.data`, :mod:`node.log`, the node's schema, the shared
base and the foundations.
"""
