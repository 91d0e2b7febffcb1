"""The registry of benchmark job kinds: a new workload is one ``Job`` subclass and one entry."""

from __future__ import annotations

from ._accuracy import AccuracyJob, AccuracyModesJob
from ._accuracy_head import AccuracyHeadJob
from ._gpu import GpuJob
from ._harness import Job
from ._job_compare import CompareJob
from ._job_head_grid import HeadGridJob
from ._job_long_texts import LongTextsJob
from ._job_memory import MemoryJob
from ._job_modes import ModesJob
from ._job_search import SearchJob
from ._job_tools import ToolsJob
from ._zero_shot import ZeroShotJob

#: Job name on the command line -> the job. ``compare`` runs when no name is given.
JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        CompareJob(),
        ToolsJob(),
        SearchJob(),
        HeadGridJob(),
        MemoryJob(),
        ModesJob(),
        ZeroShotJob(),
        AccuracyJob(),
        AccuracyModesJob(),
        LongTextsJob(),
        AccuracyHeadJob(),
        GpuJob(),
    )
}
DEFAULT_JOB = "compare"
