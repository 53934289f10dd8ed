# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Job Queue: SKIP LOCKED runner",
    "summary": "Multi-node job runner for queue_job with FOR UPDATE SKIP LOCKED claims",
    # series-less on purpose: Odoo 17.0, 18.0 and 19.0 each prefix their own
    "version": "1.0.0",
    "author": "queue_job_skiplocked developers",
    "website": "https://github.com/queue-job-skiplocked/queue_job_skiplocked",
    "license": "LGPL-3",
    "category": "Generic Modules",
    "depends": ["queue_job"],
    # the distribution that provides jobrunner (pip install of this repository)
    "external_dependencies": {"python": ["queue-job-skiplocked"]},
    "data": [
        "security/ir.model.access.csv",
        "views/queue_job_runner_views.xml",
        "views/queue_job_views.xml",
        "views/queue_job_periodic_views.xml",
        "wizards/queue_job_status_views.xml",
    ],
    "demo": ["data/queue_job_periodic_demo.xml"],
    "uninstall_hook": "uninstall_hook",
}
