"""What one array task asks a scheduler for in memory, from the planner (either scheduler).

Each task asks for the planner's predicted peak at ``--memory-budget`` plus the process's overhead
(``planner.job_memory_request``), plus room for BLAS threads on extra cores (and the CUDA driver's
address space where a Grid Engine GPU queue limits virtual memory: ``--cuda-vmem``), divided over the
cores and rounded up to MiB.  The run is then told ``--memory-budget`` = what that request leaves
after those overheads, so it plans within it.  How the request is written is the renderer's:
Grid Engine's ``h_vmem`` is per slot (``ulimit -v`` = h_vmem x slots), Slurm's ``--mem`` per task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Virtual memory each extra BLAS thread maps (OpenBLAS buffers and stack): measured 80 MiB per
# thread with NumPy's OpenBLAS 0.3.31; rounded up.  The job scripts run one thread per slot.
THREAD_VMEM_BYTES = 128 * 2**20


def memory_text(n_bytes: int) -> str:
    """Bytes as a scheduler memory value, rounded up to whole MiB ('1400M', '4G'): the form both
    Grid Engine (h_vmem) and Slurm (--mem) read."""
    mib = max(1, math.ceil(n_bytes / 2**20))
    return f"{mib // 1024}G" if mib % 1024 == 0 else f"{mib}M"


@dataclass(frozen=True)
class TaskRequest:
    """The memory of one array task, in bytes: ``budget`` it was planned with, ``need`` (planner
    peak + overheads), ``per_slot`` (h_vmem, whole MiB) and ``total`` (x slots), ``run_budget``
    (what the run may plan for inside ``total``), ``cuda`` (--cuda-vmem counted in)."""

    budget: int
    need: int
    per_slot: int
    total: int
    run_budget: int
    cuda: int
    slots: int

    @property
    def total_text(self) -> str:
        """The whole task's memory (Slurm's --mem)."""
        return memory_text(self.total)

    @property
    def h_vmem(self) -> str:
        return memory_text(self.per_slot)


def task_request(n_genes: int, n_samples: int, k_low: int, k_high: int, n_bootstrap: int, budget: int,
                 slots: int, cuda: int = 0, working_set_bytes: int | None = None, store: str = "minimal") -> TaskRequest:
    """h_vmem per slot and the run's budget for a task planned with ``budget`` (see the module
    docstring); `bootgpu plan` prints the same request.  ``working_set_bytes``: of the backend the
    task runs, by default NumPy's on CPU queues (``cuda`` 0) and none (CuPy) on GPU queues."""
    # imported here: the planner loads the core, and `bootgpu status` (which imports this module
    # through the submission model) loads no compute code
    from bootgpu.planner import PROCESS_OVERHEAD_BYTES, job_memory_request

    if working_set_bytes is None:
        # imported here: it loads SciPy, and every bootgpu command imports this module
        from bootgpu.backends.numpy_backend import NumpyBackend

        working_set_bytes = 0 if cuda else NumpyBackend.working_set_bytes
    peak_plus_overhead = job_memory_request(n_genes, n_samples, k_low, k_high, n_bootstrap, budget, slots,
                                            working_set_bytes, store)
    extra = THREAD_VMEM_BYTES * (slots - 1)
    need = peak_plus_overhead + extra + cuda
    per_slot_mib = math.ceil(need / slots / 2**20)
    total = per_slot_mib * 2**20 * slots
    run_budget = total - PROCESS_OVERHEAD_BYTES - extra - cuda - n_genes * n_samples * 8  # the matrix is loaded first
    return TaskRequest(budget=budget, need=need, per_slot=per_slot_mib * 2**20, total=total, run_budget=run_budget,
                       cuda=cuda, slots=slots)  # fmt: skip
