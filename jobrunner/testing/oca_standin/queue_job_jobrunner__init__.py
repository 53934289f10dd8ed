"""Stand-in for odoo.addons.queue_job.jobrunner/__init__.py: the real one
patches Odoo's server to start the runner; here it only holds the
[queue_job] configuration that runner.py imports."""
queue_job_config = {}
