"""Everything about a study on disk and how it is run.

- ``layout``: the one place that knows a study directory's file names (``StudyLayout``).
- ``identity``: what defines a study's results (parameters, input, focus list, formats).
- ``directory``: --focus / --shard parsing, claiming a directory for one identity, checking every
  reused file, merging parts or shards into the results and tables (no compute code).
- ``run``: ``StudyRun``, computing a run's focus genes resumably into part files.
- ``workers``: the processes a run spreads its focus genes over (host workers that build a device
  run's networks and part files; parallel CPU workers that each analyse focus genes).
- ``progress``: the progress a run reports (a bar on a terminal, lines in a job log).
"""
