"""Grid Engine: `bootgpu sge submit` (a study as one array job plus a merge job) and `bootgpu status`.

Task K of the array runs `bootgpu run --shard K/N` on every N-th focus gene from the K-th (strided,
so heavy and light genes mix in every task);
the merge job, held on the array (-hold_jid), runs `bootgpu merge`.  With ``--permutations N`` a
second array job runs the permutation null (task K: `bootgpu null --replicates A:B`, the task
script with the argument ``null``), the merge is held on both and then gathers the null
(`bootgpu null --gather-only`).  Besides what those write, a
study directory holds ``DIR/sge/`` (``StudyLayout``): copies of the job scripts of the project's
``sge/`` folder with their ``#$`` resource lines as submitted, ``job.env`` (the jobs'
environment), ``focus.txt``, ``study.json`` (settings and every submission's job ids) and ``logs/``.

- ``resources``: what a task asks for: h_vmem from the planner, run time;
- ``submission``: the ``Submission`` object, built without I/O: the jobs' directives (held once,
  rendered as ``#$`` lines and as qsub arguments), the job environment, the tasks still to run;
- ``jobfiles``: writing and reading the study's Grid Engine files;
- ``qsub``: the one wrapper for every qsub/qstat call;
- ``progress``: what of a study is done, for `bootgpu status`;
- ``commands``: the two commands and their options.
"""



def register_commands(subparsers) -> None:
    """Add `bootgpu sge submit` and `bootgpu status` to the CLI's subparsers (the commands module
    is loaded here, not on import, so ``bootgpu.sge.progress`` alone loads no compute code)."""
    from bootgpu.sge.commands import register_commands as register

    register(subparsers)


__all__ = ["register_commands"]
