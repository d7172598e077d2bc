"""Foundations: what may be shared: policies, their closure rules, agreements, taxonomy.

Pure: no IO but the bundled data files, no clock. May import: the standard
library, :mod:`crypto`, cryptography and joserfc only.
"""
