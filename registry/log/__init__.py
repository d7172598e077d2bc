"""The registry's exchange log, its own checkpoints, and the witness of members' checkpoints.

``exchange_log`` binds :class:`corridor.tlog.TransparencyLog` to the registry's
tables (and records refused requests), ``witness`` checks and cosigns the
checkpoints members submit (``witness_api``, ``/witness``) and signs the
registry's own, ``cli`` is ``corridor registry log|witness``, and
``directory`` describes a registry directory to the auditor's tools.

May import: the registry's schema, :mod:`registry.membership`, the shared
base and the foundations.
"""
