"""The node's web pages and the people who sign in to them.

``pages`` (sign in, the inbox of requests, one request, the agreements, the
log), ``users`` (local accounts with one role each), ``users_cli``
(``corridor node users``) and the page templates in ``templates/``.

May import: :mod:`node.data`, :mod:`node.exchange`, :mod:`node.log`, the
node's schema, the shared base and the foundations. Nothing imports it but the
app factory and the node's command group.
"""
