# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Job Queue: SKIP LOCKED runner",
    "summary": "Multi-node job runner for queue_job with FOR UPDATE SKIP LOCKED claims",
    "version": "17.0.1.0.0",
    "author": "queue_job_skiplocked developers",
    "website": "https://github.com/queue-job-skiplocked/queue_job_skiplocked",
    "license": "LGPL-3",
    "category": "Generic Modules",
    "depends": ["queue_job"],
    "external_dependencies": {"python": ["jobrunner"]},
    "data": ["security/ir.model.access.csv"],
}
