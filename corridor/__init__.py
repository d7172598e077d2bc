"""The shared service base: plumbing every service uses, and no service.

Database engines and migrations (``db``, ``flaskdb``), the Flask web layer
and problem+json errors (``web``), signing keys on disk (``keystore``), the
registry anchor (``anchor``), the transparency-log storage (``tlog``) and its
auditor API (``log_api``), the agreement event store (``agreement_store``),
web accounts, sessions and sign-in throttling (``users``, ``users_cli``,
``pages``, ``login_guard``), settings helpers (``config``), the clock, the
console, public-only outbound HTTP (``outbound``), the streamed package
writer (``package_writer``) and how the auditor recognises a service
directory (``service_directory``).

May import: the foundations (:mod:`crypto`, :mod:`policies`). Never a
service (:mod:`node`, :mod:`registry`), :mod:`audit` or :mod:`deploy`.
"""
