"""Config loading: every bad file exits 2 with one sentence naming file, key and problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from argus_telemetry.config.load import parse_config
from argus_telemetry.config.model import Config
from argus_telemetry.errors import ConfigError

# (TOML text, the key the message must name, a fragment of the reason)
BAD_FILES = [
    ('[agent]\ninterval = "2 s"\n', "[agent] interval", "is not a duration"),
    ('[agent]\nintervl = "2s"\n', "[agent] intervl", "unknown key"),
    ('[lokii]\nurl = "http://x"\n', "[lokii]", "unknown section"),
    ('[agent]\nflush_max_items = "20"\n', "[agent] flush_max_items", "expected an integer, got a string"),
    ("[agent]\nflush_max_items = 0\n", "[agent] flush_max_items", "too small"),
    ('[agent]\ninterval = "10ms"\n', "[agent] interval", "too short"),
    ('[spool]\nmax_bytes = "12XB"\n', "[spool] max_bytes", "is not a size"),
    ("[spool]\nmax_bytes = -5\n", "[spool] max_bytes", "must not be negative"),
    ('[spool]\nwipe = "yes"\n', "[spool] wipe", "expected true or false"),
    ('[collect]\ndisk_exclude = "([a-z"\n', "[collect] disk_exclude", "not a valid regular expression"),
    ('[loki]\nurl = "ftp://loki"\n', "[loki] url", "http:// or https://"),
    ('[loki]\nurl = "http://user:pw@loki:3100"\n', "[loki] url", "must not carry credentials"),
    ('[loki]\nlabels = { "bad-name" = "x" }\n', "[loki] labels", "not a valid label name"),
    ('[agent]\nlabels = { __reserved = "x" }\n', "[agent] labels", "not a valid label name"),
    ('[agent]\nlabels = { site = "a\\"b" }\n', "[agent] labels.site", "not a usable label value"),
    ('[loki]\nlabels = { job = "" }\n', "[loki] labels.job", "not a usable label value"),
    ('[loki.tls]\nca_file = "/nonexistent/ca.pem"\n', "[loki.tls] ca_file", "does not exist"),
    ("[loki.tls]\nverify = false\n", "[loki.tls] verify", "unknown key"),
    ('[pushgateway.auth]\npassword = "pw"\n', "[pushgateway.auth] username", "needs a username"),
    (
        '[pushgateway.auth]\nusername = "u"\npassword = "p"\nbearer_token = "t"\n',
        "[pushgateway.auth] bearer_token",
        "not both",
    ),
    ('[pushgateway]\ntimeout = "0s"\n', "[pushgateway] timeout", "longer than 0s"),
    ("[stream]\nmax_clients = 0\n", "[stream] max_clients", "out of range"),
    ("[stream]\nhistory = -1\n", "[stream] history", "out of range"),
    ('[metrics]\nlisten = "9464"\n', "[metrics] listen", "HOST:PORT"),
    ("[remote_write]\nbatch_max_samples = 0\n", "[remote_write] batch_max_samples", "at least 1"),
    ('[agent]\nhostname = "bad host"\n', "[agent] hostname", "not a valid host name"),
    (
        '[agent]\nlabels = { device = "x" }\n[remote_write]\nurl = "http://vm:8428/api/v1/write"\n',
        "[agent] labels",
        "clashes with a label remote_write series carry",
    ),
    (
        '[remote_write]\nurl = "http://vm:8428/api/v1/write"\nheaders = { "Content-Encoding" = "gzip" }\n',
        "[remote_write] headers",
        "set by Argus",
    ),
    ("[agent]\ninterval = true\n", "[agent] interval", "not a duration"),
]


@pytest.mark.parametrize(("text", "key", "reason"), BAD_FILES, ids=[b[1] + ":" + b[2] for b in BAD_FILES])
def test_bad_value_names_key(text: str, key: str, reason: str) -> None:
    """parse_config raises ConfigError whose sentence names the file, the key and the problem."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "site.toml")
    message = str(caught.value)
    assert message.startswith(f"site.toml: {key}: "), message
    assert reason in message, message


@pytest.mark.parametrize(("text", "key", "reason"), BAD_FILES[:16], ids=[b[1] + ":" + b[2] for b in BAD_FILES[:16]])
def test_bad_file_exits_2_without_traceback(tmp_path: Path, text: str, key: str, reason: str) -> None:
    """`argus config check -c FILE` on a bad file: exit 2, one line on stderr naming file and key, no traceback."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "argus_telemetry", "config", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{path}: {key}: " in lines[0]
    assert reason in lines[0]
    assert "Traceback" not in result.stderr


def test_unparseable_toml_names_file_and_line(tmp_path: Path) -> None:
    """A TOML syntax error names the file and the line, exit 2."""
    path = tmp_path / "broken.toml"
    path.write_text("[agent]\ninterval = \n")
    result = subprocess.run(
        [sys.executable, "-m", "argus_telemetry", "config", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"{path}: is not valid TOML" in result.stderr
    assert "line 2" in result.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    """A config path that does not exist is a config error (exit 2) naming the path."""
    path = tmp_path / "absent.toml"
    result = subprocess.run(
        [sys.executable, "-m", "argus_telemetry", "config", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"argus: {path}: the file does not exist"


def test_contract_example_is_valid() -> None:
    """The contract's full example configuration loads and yields its exact values."""
    text = """
[agent]
interval = "2s"
flush_interval = "10s"
flush_max_items = 20
data_dir = "/var/lib/argus-telemetry"
hostname = ""
labels = { region = "eu-west", component = "telemetry" }
[spool]
max_bytes = "256MiB"
max_age = "7d"
wipe = true
[collect]
disk_exclude = "^(ram|loop)\\\\d*$"
interface_exclude = ""
[pushgateway]
url = "http://127.0.0.1:9091"
job = "argus"
timeout = "5s"
[loki]
url = "http://127.0.0.1:3100"
tenant = ""
labels = { job = "argus" }
timeout = "10s"
batch_max_bytes = "1MiB"
max_send_rate = "2MiB"
[remote_write]
url = "http://127.0.0.1:8428/api/v1/write"
job = "argus"
timeout = "10s"
max_sample_age = ""
batch_max_samples = 2000
max_send_rate = "2MiB"
headers = {}
[stream]
enabled = true
path = ""
history = 300
max_clients = 32
[metrics]
listen = ""
"""
    config = parse_config(text, "contract.toml")
    assert config.agent.interval == 2.0
    assert config.agent.labels == {"region": "eu-west", "component": "telemetry"}
    assert config.spool.max_bytes == 256 * 1024**2
    assert float(config.spool.max_age) == 7 * 86400.0
    assert config.collect.disk_exclude == r"^(ram|loop)\d*$"
    assert config.loki.batch_max_bytes == 1024**2
    assert float(config.remote_write.max_sample_age) == 0.0
    assert config.stream.history == 300


def test_defaults_match_contract() -> None:
    """With no file, every key has the contract's default."""
    config = Config()
    assert (config.agent.interval, config.agent.flush_interval, config.agent.flush_max_items) == (2.0, 10.0, 20)
    assert (config.spool.max_bytes, config.spool.max_age, config.spool.wipe) == (256 * 1024**2, 604800.0, True)
    assert config.loki.labels == {"job": "argus"}
    assert (config.stream.enabled, config.stream.history, config.stream.max_clients) == (True, 300, 32)
    assert config.pushgateway.url == config.loki.url == config.remote_write.url == ""
