"""The node's exchange log, its checkpoints and their witnessing by the registry.

``exchange_log`` binds :class:`corridor.tlog.TransparencyLog` to the node's
tables, ``witness`` signs checkpoints and has the registry cosign them,
``cli`` is ``corridor node log``, and ``directory`` describes a node
directory to the auditor's tools.

May import: the node's schema, :mod:`node.exchange` (for the registry client
and trust store), the shared base and the foundations.
"""
