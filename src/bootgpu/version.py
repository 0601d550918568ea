"""The package version, in a module of its own so that any module can import it without importing
the package's lazy re-exports (``bootgpu.open_results``).  Keep it equal to pyproject.toml's."""

__version__ = "0.1.0"
