from . import queue_job
from . import queue_job_runner
from . import queue_job_periodic
