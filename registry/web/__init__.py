"""The registry's web pages and the accounts (auditors, admins) that sign in to them.

``pages`` (the witness page and the log pages), ``users``, ``users_cli``
(``corridor registry users``) and the templates in ``templates/``.

May import: :mod:`registry.log`, the registry's schema, the shared base and the
foundations. Nothing imports it but the app factory and the command group.
"""
