"""Each setting is declared once (jobrunner/settings.py): every surface
derived from the table carries every setting. A surface that misses one (as
the embedded runner once lost metrics_port/metrics_host) fails here."""

import re
from pathlib import Path

import pytest

from jobrunner import config
from jobrunner.cli import parser
from jobrunner.settings import SETTINGS, for_command

ROOT = Path(__file__).resolve().parents[2]

# a valid value unlike the default, for every setting
SAMPLES = {
    "channels": "root:3,root.sub:1:sequential", "scheme": "https", "host": "odoo.internal",
    "port": "8070", "executor_workers": "4", "http_auth_user": "u", "http_auth_password": "s3cret", "wakeup": "poll",
    "poll_min": "0.2", "poll_max": "7", "grace": "12", "recovery_interval": "3",
    "periodic_refresh": "30",
    "http_timeout": "600", "db_timeout": "9", "metrics_port": "9187", "metrics_host": "0.0.0.0",
    "db_host": "pg", "db_port": "6432", "db_user": "odoo", "db_password": "pw",
    "log_level": "DEBUG", "log_format": "json", "log_file": "/var/log/odoo/queue.log",
    "max_capacity": "4", "db_max_capacity": "prod_*:2,*:1",
    "channel_executors": "root=https://odoo-long:8070", "hint_window": "0.2",
}


def test_every_setting_has_a_sample_unlike_its_default():
    assert set(SAMPLES) == {s.name for s in SETTINGS}
    cfg = config.resolve({}, {}, {}, {})
    for s in SETTINGS:
        assert config.get(cfg, s) != config.get(config.resolve({s.name: SAMPLES[s.name]}, {}, {}, {}), s)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_each_setting_resolves_from_flag_env_and_queue_job_key_in_that_order(setting):
    flag_value = SAMPLES[setting.name]
    if setting.command == "odoo":  # no flag: the addon reads env, then [queue_job]
        assert setting not in for_command("run") and setting not in for_command("common")
        assert config.odoo_setting(setting.name, {setting.env_var: flag_value},
                                   {setting.conf_key: "9"}) == setting.kind(flag_value)
        assert config.odoo_setting(setting.name, {}, {setting.conf_key: flag_value}) \
            == setting.kind(flag_value) != setting.default
        return
    from_flag = config.resolve({setting.name: flag_value}, {}, {}, {})
    from_env = config.resolve({}, {setting.env_var: flag_value}, {}, {})
    from_conf = config.resolve({}, {}, {setting.conf_key: flag_value}, {})
    values = {config.get(c, setting) for c in (from_flag, from_env, from_conf)}
    assert len(values) == 1 and None not in values
    assert (from_flag.sources[setting.name], from_env.sources[setting.name],
            from_conf.sources[setting.name]) == (setting.flag, setting.env_var,
                                                 f"[queue_job] {setting.conf_key}")
    default = config.get(config.resolve({}, {}, {}, {}), setting)
    both = config.resolve({setting.name: flag_value}, {setting.env_var: "junk"}, {setting.conf_key: "junk"},
                          {setting.option: "junk"} if setting.option else {})
    assert config.get(both, setting) == values.pop() != default  # the flag wins


@pytest.mark.parametrize("command", ["run", "migrate", "status"])
def test_argparse_carries_each_setting_of_its_subcommand(command):
    wanted = for_command("run" if command == "run" else "common")
    for s in wanted:
        args = parser().parse_args([command, s.flag, SAMPLES[s.name]])
        assert getattr(args, s.name) == SAMPLES[s.name], (command, s.flag)
    if command != "run":
        with pytest.raises(SystemExit):
            parser().parse_args([command, "--channels", "root:2"])


def test_the_embedded_runners_child_resolves_to_the_same_configuration():
    cfg = config.resolve({"database": ["a", "b"], **SAMPLES}, {}, {}, {})
    argv, env = config.child_command(cfg)
    assert not any(SAMPLES[s.name] in argv for s in SETTINGS if s.secret)  # secrets not in argv
    child = config.build(parser().parse_args(argv), environ=env)
    for s in SETTINGS:
        assert config.get(child, s) == config.get(cfg, s), s.name
    assert child.databases == ["a", "b"]
    # odoo.conf's [queue_job] metrics_port reaches the embedded runner
    conf = config.resolve({}, {}, {"metrics_port": "9187", "metrics_host": "0.0.0.0"}, {})
    child = config.build(parser().parse_args(config.child_command(conf)[0]),
                         environ=config.child_command(conf)[1])
    assert (child.metrics_port, child.metrics_host) == (9187, "0.0.0.0")


def test_max_capacity_and_db_max_capacity_apply_without_a_channel_string():
    """queue_job 18.0's rule: without `channels`, max_capacity is the node's
    capacity and db_max_capacity caps each database (first match wins); a
    channel string replaces both. The embedded child keeps the rule."""
    env = {"ODOO_QUEUE_JOB_MAX_CAPACITY": "3", "ODOO_QUEUE_JOB_DB_MAX_CAPACITY": "prod_*:2, dev:0 ,*:1"}
    cfg = config.resolve({}, env, {}, {})
    assert cfg.channel_tree.root_capacity == 3 and cfg.channels == "root:3"
    assert [config.db_capacity(cfg, d) for d in ("prod_eu", "dev", "other")] == [2, 0, 1]
    argv, child_env = config.child_command(cfg)
    child = config.build(parser().parse_args(argv), environ=child_env)
    assert child.channels == "root:3" and child.db_caps == cfg.db_caps
    assert config.db_capacity(config.resolve({}, {}, {"db_max_capacity": "5"}, {}), "x") == 5
    assert config.resolve({}, {}, {}, {}).channel_tree.root_capacity == 1  # OCA's default
    given = config.resolve({"channels": "root:6"}, env, {}, {})
    assert given.channel_tree.root_capacity == 6 and config.db_capacity(given, "prod_eu") is None
    for bad in ("prod:x", ":3", "a:1,b"):
        with pytest.raises(config.ConfigError) as err:
            config.resolve({}, {"ODOO_QUEUE_JOB_DB_MAX_CAPACITY": bad}, {}, {})
        assert str(err.value).startswith(f"invalid ODOO_QUEUE_JOB_DB_MAX_CAPACITY value {bad!r}: ")
        assert "prod_*:20,*:5" in str(err.value)


def _section(text, title):
    start = text.index(title)
    return text[start:text.index("\nThe claim\n", start)]


def test_readme_lists_every_setting_with_flag_and_variable():
    section = _section((ROOT / "README.rst").read_text(), "The ``queue-job-runner`` command")
    for s in SETTINGS:
        assert f"``{s.conf_key if s.command == 'odoo' else s.flag}``" in section, s.name
        assert re.search(rf"``{s.env_var}``", section), s.env_var


def test_channel_executors_must_be_configured_channels_and_urls():
    for value, fragment in (("root.long=ftp://x:1", "expected CHANNEL=http(s)://"),
                            ("root.long=http://u:s3cret@host", "expected CHANNEL=http(s)://"),
                            ("root.other=http://h:8069", "channel 'root.other' is not in channels")):
        with pytest.raises(config.ConfigError) as err:
            config.resolve({"channels": "root:2,root.long:1:isolated", "channel_executors": value},
                           {}, {}, {})
        assert fragment in str(err.value) and "s3cret" not in str(err.value), str(err.value)
    cfg = config.resolve({"channels": "root:2,long:1", "channel_executors":
                          "long=https://u:p%40w@odoo-long:8443"}, {}, {}, {})
    assert cfg.channel_executor_map["root.long"] == ("https", "odoo-long", 8443, "u", "p@w")
