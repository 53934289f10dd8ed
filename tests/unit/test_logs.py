"""Log lines: every line names an event that migration_guide/troubleshooting.rst
lists with its level, message and fix (read from the code, no database);
inside Odoo the event and fields are written into the message.
tests/processes/test_logs.py checks the lines of real processes."""

import ast
import logging
import re
from pathlib import Path

from jobrunner import logs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "migration_guide" / "troubleshooting.rst"
LEVELS = ("debug", "info", "warning", "error", "exception", "critical")
EVENT = re.compile(r"^[a-z]+(-[a-z]+)*$")


def _product_files():
    files = sorted(ROOT.glob("jobrunner/**/*.py")) + sorted(ROOT.glob("queue_job_skiplocked/**/*.py"))
    return [f for f in files if "tests" not in f.relative_to(ROOT).parts]


def _log_calls():
    """(file:line, level, first argument, message) of every log call."""
    for path in _product_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in LEVELS and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                second = node.args[1] if len(node.args) > 1 else None
                message = second.value if isinstance(second, ast.Constant) else None
                yield (f"{path.relative_to(ROOT)}:{node.lineno}", node.func.attr, node.args[0].value,
                       message)


def _rendered(message):
    return re.sub(r"%[-#0 +]*\d*(?:\.\d+)?[sdrfi]", "…", message).replace("%%", "%")


def _doc_events():
    rows = re.findall(r"^   \* - ``([a-z-]+)``\n     - ([A-Z]+)\n     - (.+)\n     - (.+)\n",
                      DOC.read_text(), re.MULTILINE)
    return {event: (level, message) for event, level, _where, message in rows}


def test_every_log_line_names_a_documented_event_with_its_level_and_message():
    in_code = {}
    for where, level, event, message in _log_calls():
        assert EVENT.match(event) and message is not None, \
            f"{where}: log through jobrunner.logs.Log with an event first, not {event!r}"
        assert level in ("debug", "info", "warning", "error"), f"{where}: {level}"
        in_code.setdefault(event, set()).add((level.upper(), _rendered(message)))
    documented = _doc_events()
    assert len(in_code) >= 30
    assert set(in_code) == set(documented), set(in_code) ^ set(documented)
    for event, variants in in_code.items():
        assert variants == {documented[event]}, (event, variants, documented[event])


def test_inline_lines_carry_their_fields_in_the_message(caplog):
    """Inside Odoo, whose formatter knows no fields, the event and context
    are written into the message itself."""
    log = logs.Log("qjsl.test.inline", inline=True).bind(db="prod")
    with caplog.at_level(logging.INFO, logger="qjsl.test.inline"):
        log.warning("runjob-refused", "was requested to run the job, but %s: nothing done",
                    "it is done", uuid="u-1")
    [record] = caplog.records
    assert record.getMessage() == ("[runjob-refused] was requested to run the job, but it is done: "
                                   "nothing done db=prod uuid=u-1")
    assert record.event == "runjob-refused"


def test_every_requeue_reason_is_in_the_troubleshooting_table():
    """The reasons recovery logs (job re-queued (…)) come from the recover
    query's literals; each is explained under job-requeued."""
    sql = (ROOT / "jobrunner" / "sql" / "claim.sql").read_text()
    recover = sql[sql.index("-- name: recover"):]
    reasons = {lit for clause in re.findall(r"RETURNING q\.id, q\.uuid,(.*?)AS why", recover, re.DOTALL)
               for lit in re.findall(r"'([^']+)'", clause) if lit not in ("enqueued", "failed")}
    assert {"dead runner", "dead execution", "enqueued without a claim token"} <= reasons, reasons
    doc = DOC.read_text()
    row = doc[doc.index("   * - ``job-requeued``"):]
    row = re.sub(r"\s+", " ", row[:row.index("   * - ``", 10)])
    for reason in reasons:
        assert f"``{reason}``" in row, reason
