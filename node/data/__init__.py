"""The node's holdings: importing, validating and reading its own data.

Camtrap DP and Darwin Core imports (``sources``, ``validation``, ``importer``),
the Camtrap DP to Darwin Core mapping (``dwc``), datasets and their metadata
(``datasets``, ``schemas``), the owner's policies (``policy_store``), the
signed catalog entry (``catalog``) and the seeded demo data (``demo_data``).
The Camtrap DP 1.0.2 table schemas are in ``camtrap-dp-1.0.2/``.

May import: the node's schema (:mod:`node.models`, :mod:`node.db`,
:mod:`node.settings`, :mod:`node.errors`), the shared base and the
foundations. Nothing about partners, agreements or pages.
"""
