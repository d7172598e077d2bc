"""Foundations: signatures, keys, tokens, packages, Merkle logs and checkpoints.

Pure where it can be: bytes and values in, values out; ``now`` comes in.
May import: the standard library, cryptography, joserfc and PyNaCl (libsodium's
group operations, for the private overlap count) only.
"""
