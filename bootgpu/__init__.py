"""bootgpu: extreme-population bootstrap differential co-expression on NumPy or CuPy."""

__version__ = "0.1.0"
