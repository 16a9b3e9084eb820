"""MSDNet: a reference reproduction of Multi-Scale Dense Networks (Huang et al., ICLR 2018)."""

__version__ = "0.1.0"
