"""The core layer: errors, atomic I/O and hashes, typed config parsing, the CPU kernel pin.

Imports nothing else of msdnet (nor torch): every other layer builds on it.
"""
