"""Grid Engine: `bootgpu sge submit` (a study as array jobs plus a merge job held on them, -hold_jid).

The submission itself is scheduler-neutral (``bootgpu.cluster``); this package is Grid Engine's part:

- ``submission``: the renderer (``#$`` directives held once, rendered as script lines and qsub
  arguments; the job environment's GPU grant variable) and ``Submission`` built with it;
- ``resources``: h_vmem, h_rt and the --max-vmem refusal;
- ``qsub``: qsub, qstat and qdel, through ``bootgpu.cluster.client.call``;
- ``scheduler``: ``SGE``, Grid Engine as a ``bootgpu.cluster.scheduler.Scheduler``;
- ``commands``: `bootgpu sge submit` and its site options;
- ``progress``: the former name of ``bootgpu.cluster.progress``.

The job scripts are in the project's ``sge/`` folder; a study's copies in ``DIR/sge/``.
"""


def register_commands(subparsers) -> None:
    """Add `bootgpu sge submit` to the CLI's subparsers (the commands module is loaded here, not on
    import, so ``bootgpu.sge`` alone loads no compute code)."""
    from bootgpu.sge.commands import register_commands as register

    register(subparsers)


__all__ = ["register_commands"]
