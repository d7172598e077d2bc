"""The auditor's tools: prove what the exchange logs say, and check packages offline.

``checks`` verifies one log (signed checkpoints, consistency, witnesses) and
reconciles what nodes sent with what recipients received and the registry
issued; ``sources`` reads a log through a service's auditor API or from a
service directory; ``cli`` and ``verify_cli`` are ``corridor audit`` and
``corridor verify``.

May import: the shared base (:mod:`corridor`) and the foundations
(:mod:`crypto`, :mod:`policies`). Never a service: a service directory is read
through :mod:`corridor.service_directory`.
"""
