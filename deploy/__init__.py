"""The composition root: the ``corridor`` command and the local loopback federation.

``cli`` mounts every service's command group (found through entry points);
``demo`` runs a registry and two nodes on loopback through one agreement and
its audit; ``loopback`` serves a WSGI app over real HTTP for the demo, the
tests and the benchmarks. The other files here (gunicorn, systemd, nginx) are
how the services run in production.

May import anything. Nothing imports it.
"""
