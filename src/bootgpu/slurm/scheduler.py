"""Slurm as a ``bootgpu.cluster.scheduler.Scheduler``: its renderer and client commands."""

from __future__ import annotations

from bootgpu.cluster.scheduler import Scheduler
from bootgpu.slurm import sbatch
from bootgpu.slurm.submission import LABEL, SlurmRenderer

SLURM = Scheduler(name=SlurmRenderer.name, label=LABEL, submit_tool="sbatch", query_tool="squeue",
                  cancel_tool="scancel", renderer=SlurmRenderer, submit=sbatch.submit, jobs=sbatch.job_states,
                  cancel=sbatch.cancel,
                  ended="squeue no longer lists it; sacct -j {job} has its exit status where the site keeps accounting")
