"""What of a study is done, for `bootgpu status`: moved to ``bootgpu.cluster.progress`` (either
scheduler); this name stays for code that imported it."""

from bootgpu.cluster.progress import null_progress, running_locks, study_progress, verify_study

__all__ = ["null_progress", "running_locks", "study_progress", "verify_study"]
