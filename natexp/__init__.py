"""natexp: evaluate programmes that went live area by area as natural experiments."""

__version__ = "0.1.0"
