"""bootgpu: extreme-population bootstrap differential co-expression on NumPy or CuPy.

``bootgpu.open_results(path_or_dir)`` reads a study's results (``bootgpu.api``)."""

from bootgpu.version import __version__


def __getattr__(name: str):
    if name == "open_results":  # loaded on first use: `import bootgpu` stays light
        from bootgpu.api import open_results

        return open_results
    raise AttributeError(f"module 'bootgpu' has no attribute {name!r}")


__all__ = ["__version__", "open_results"]
