"""status groups live runners by the Odoo they send to (tests/processes/
test_status.py: the same against live runners)."""

from jobrunner.status import executors


def _runner(host, executor, capacity, workers=None):
    return {"host": host, "executor": executor, "capacity": capacity, "executor_workers": workers}


def test_a_localhost_target_is_one_odoo_per_host_a_remote_one_is_shared():
    groups = executors([
        _runner("node-a", "localhost:8069", 2, 2), _runner("node-b", "localhost:8069", 2, 2),
        _runner("node-a", "odoo-http:8069", 3, 4), _runner("node-b", "odoo-http:8069", 3),
        _runner("node-c", None, 5, 1),  # a runner older than schema version 3: not counted
    ])
    assert [(g["executor"], g["host"], g["runners"], g["capacity"], g["workers"], g["over"])
            for g in groups] == [("localhost:8069", "node-a", 1, 2, 2, False),
                                 ("localhost:8069", "node-b", 1, 2, 2, False),
                                 ("odoo-http:8069", None, 2, 6, 4, True)]


def test_every_local_address_names_the_same_odoo():
    [group] = executors([_runner("n", "127.0.0.1:8069", 1, 2), _runner("n", "localhost:8069", 1),
                         _runner("n", "0.0.0.0:8069", 1)])
    assert (group["executor"], group["runners"], group["capacity"], group["over"]) == \
        ("localhost:8069", 3, 3, True)


def test_no_warning_when_no_runner_knows_the_workers():
    [group] = executors([_runner("n", "127.0.0.1:8069", 8), _runner("n", "127.0.0.1:8069", 8)])
    assert group["capacity"] == 16 and group["workers"] is None and not group["over"]
