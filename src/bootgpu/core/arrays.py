"""Type names shared by the core and the backends.

``Array`` is an array of whichever array-API namespace a backend holds (``Backend.xp``: NumPy,
array_api_strict, CuPy): the core is written against the standard, so no library's array class
can stand for all of them; the alias documents intent in signatures."""

from __future__ import annotations

from typing import Any

Array = Any  # an array of ``Backend.xp``, on the backend's device
Namespace = Any  # an array-API namespace (``Backend.xp``)
