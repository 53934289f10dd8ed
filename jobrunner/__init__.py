"""queue_job_skiplocked job runner: the Odoo-free core.

Claims OCA queue_job rows with FOR UPDATE SKIP LOCKED and dispatches them to
Odoo's /queue_job/runjob. Never imports odoo.
"""

__version__ = "1.0.0"  # = the addon manifest's (tests/unit/test_version.py)
