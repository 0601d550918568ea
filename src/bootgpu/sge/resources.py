"""What an array task asks Grid Engine for, in Grid Engine's terms: ``h_vmem`` (per slot; the job's
``ulimit -v`` is h_vmem x slots) from the scheduler-neutral memory request
(``bootgpu.cluster.resources``), ``h_rt``, and the ``--max-vmem`` refusal."""

from __future__ import annotations

import re

from bootgpu.cluster.resources import THREAD_VMEM_BYTES, TaskRequest, memory_text, task_request
from bootgpu.errors import BootgpuError
from bootgpu.planner import format_bytes, parse_size

sge_size = memory_text  # a Grid Engine memory value, rounded up to whole MiB ('1400M', '4G')


def check_runtime(text: str) -> str:
    """``--runtime`` as Grid Engine's h_rt: H:M:S, M:S or seconds."""
    if not re.fullmatch(r"\d+(:\d{1,2}){0,2}", text or ""):
        raise BootgpuError(f"--runtime must be H:M:S (or seconds), got {text!r}")
    return text


def check_max_vmem(request: TaskRequest, why: str, max_vmem: str, merge_vmem: str) -> None:
    """Refuse, before anything is written, a task or merge that would ask for more h_vmem per slot
    than ``--max-vmem``; ``why`` says what the task's memory comes from (shape, B, options)."""
    limit = parse_size(max_vmem, "--max-vmem", sge=True)
    if request.per_slot > limit:
        raise BootgpuError(
            f"each task needs {format_bytes(request.need)} ({why}): h_vmem={request.h_vmem} per slot x {request.slots} "
            f"slot(s), over --max-vmem {max_vmem} per slot; lower --memory-budget, add --slots, or ask for a queue "
            f"that allows more"
        )
    if parse_size(merge_vmem, "--merge-vmem", sge=True) > limit:
        raise BootgpuError(f"--merge-vmem {merge_vmem} is over --max-vmem {max_vmem}")


__all__ = ["THREAD_VMEM_BYTES", "TaskRequest", "check_max_vmem", "check_runtime", "sge_size", "task_request"]
