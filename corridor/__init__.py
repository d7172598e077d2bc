"""The shared service base: plumbing every service uses, and no service.

Database engines and migrations (``db``, ``flaskdb``); the one error root
(``errors``) and its problem+json rendering in the Flask web layer (``web``);
signing keys on disk (``keystore``); the registry anchor (``anchor``); the
transparency-log storage (``tlog``) and its auditor API (``log_api``); the
agreement event store (``agreement_store``); web accounts, sessions and
sign-in throttling (``users``, ``users_cli``, ``pages``, ``login_guard``);
settings helpers (``config``); one run of a service command
(``cli_context``); files written whole (``files``); public-only outbound
HTTP (``outbound``); the streamed package writer (``package_writer``) and
the package file opened for the offline checks (``package_reader``); how
the auditor's tools recognise a service directory (``service_directory``);
the clock and the console.

May import: the foundations (:mod:`crypto`, :mod:`policies`). Never a
service (:mod:`node`, :mod:`registry`), :mod:`audit` or :mod:`deploy`.
"""
