from . import queue_job_status
