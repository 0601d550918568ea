"""A study on a cluster, for either scheduler: the submission as data and everything about it that
does not depend on the scheduler.  Grid Engine (``bootgpu.sge``) and Slurm (``bootgpu.slurm``)
are each a renderer of this model plus their client commands; no module here knows a scheduler's
flags.

Task K of the array runs `bootgpu run --shard K/N` on every N-th focus gene from the K-th; the
merge job, which waits for the arrays, runs `bootgpu merge`.  With ``--permutations N`` a second
array runs the permutation null (task K: `bootgpu null --replicates A:B`, the task script with the
argument ``null``) and the merge then gathers it (`bootgpu null --gather-only`).  A submission's
files are in ``DIR/sge/`` or ``DIR/slurm/`` (``StudyLayout.cluster``).

- ``model``: the ``Submission``, built without I/O: the jobs as neutral ``JobSpec``s (tasks,
  ``Resources``: cores, memory, GPUs, run time; what the merge waits for), rendered by the
  scheduler's renderer; the job environment; what each task runs; the tasks still to run;
- ``resources``: each task's memory request, from the planner;
- ``scheduler``: what a scheduler is to this package (``Scheduler``, ``JobState``);
- ``client``: the one wrapper for every scheduler client command;
- ``jobfiles``: writing and reading the submission's files;
- ``progress``: what of a study is done; ``status``: `bootgpu status`;
- ``options`` and ``submit``: the options and flow the two submit commands share.
"""


def register_commands(subparsers) -> None:
    """Add `bootgpu status` to the CLI's subparsers (loaded here, not on import)."""
    from bootgpu.cluster.status import register_status

    register_status(subparsers)


__all__ = ["register_commands"]
