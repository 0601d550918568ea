"""Slurm: `bootgpu slurm submit` (a study as array jobs plus a merge job, --dependency=afterok on them).

The submission itself is scheduler-neutral (``bootgpu.cluster``); this package is Slurm's part:

- ``submission``: the renderer (``#SBATCH`` directives held once, rendered as script lines and
  sbatch arguments; arrays of exactly the tasks to do, --array-throttle; afterok by job id;
  --sbatch-extra) and ``Submission`` built with it;
- ``sbatch``: sbatch, squeue and scancel, through ``bootgpu.cluster.client.call``;
- ``scheduler``: ``SLURM``, Slurm as a ``bootgpu.cluster.scheduler.Scheduler``;
- ``commands``: `bootgpu slurm submit` and its site options.

The job scripts are in the project's ``slurm/`` folder; a study's copies in ``DIR/slurm/``.
"""


def register_commands(subparsers) -> None:
    """Add `bootgpu slurm submit` to the CLI's subparsers (loaded here, not on import)."""
    from bootgpu.slurm.commands import register_commands as register

    register(subparsers)


__all__ = ["register_commands"]
