"""Grid Engine as a ``bootgpu.cluster.scheduler.Scheduler``: its renderer and client commands."""

from __future__ import annotations

from bootgpu.cluster.scheduler import Scheduler
from bootgpu.sge import qsub
from bootgpu.sge.submission import LABEL, SgeRenderer

SGE = Scheduler(name=SgeRenderer.name, label=LABEL, submit_tool="qsub", query_tool="qstat",
                cancel_tool="qdel", renderer=SgeRenderer, submit=qsub.submit, jobs=qsub.job_states, cancel=qsub.cancel,
                ended="qacct -j {job} has its exit status")  # fmt: skip
