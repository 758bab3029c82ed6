"""The systemd packaging: the unit passes systemd's own checks and is hardened, and the
example configuration and environment files are valid for batchd and fit the unit.

systemd-analyze must be installed (CI installs package systemd): without it these tests
fail rather than skip, so that an unchecked unit never passes unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from batchd.config import SCHEMA, load

PACKAGING = Path(__file__).resolve().parent.parent / "packaging" / "systemd"
UNIT = PACKAGING / "batchd.service"
MAX_EXPOSURE = 2.9
INSTALLED_EXEC = "/usr/local/bin/batchd run -c /etc/batchd/config.toml"


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze is not installed (apt-get install systemd); the unit cannot be checked"
    return path


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SYSTEMD_LOG_LEVEL="info", SYSTEMD_COLORS="0", SYSTEMD_PAGER="cat", NO_COLOR="1")
    return subprocess.run([systemd_analyze(), *args], capture_output=True, text=True, env=env, timeout=60)


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every Key=value of the unit, in order, by key (values of repeated keys kept)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.fixture(scope="module")
def unit_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unit with ExecStart= on this interpreter's batchd (verify wants a real binary)."""
    batchd = Path(sys.executable).parent / "batchd"
    assert os.access(batchd, os.X_OK), f"{batchd} missing: install batchd into the running environment"
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_EXEC}\n" in text
    quoted = f'"{batchd}"' if " " in str(batchd) else str(batchd)
    folder = tmp_path_factory.mktemp("unit")
    copy = folder / "batchd.service"
    copy.write_text(text.replace("ExecStart=/usr/local/bin/batchd ", f"ExecStart={quoted} "))
    return copy


def test_unit_passes_systemd_analyze_verify(unit_copy: Path) -> None:
    result = analyze("verify", "--man=no", "--generators=no", str(unit_copy))
    output = result.stdout + result.stderr
    about_us = [line for line in output.splitlines()
                if "batchd" in line or str(unit_copy.parent) in line]
    assert result.returncode == 0, output
    assert not about_us, "\n".join(about_us)


def test_unit_exposure_is_low(unit_copy: Path) -> None:
    result = analyze("security", "--offline=yes", "--no-pager", str(unit_copy))
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for batchd\.service: (\d+\.\d+)", output)
    assert match, output
    assert float(match.group(1)) <= MAX_EXPOSURE, output


def test_unit_keeps_the_contract_with_batchd() -> None:
    """The settings batchd itself relies on, and those the docs promise."""
    s = unit_settings(UNIT.read_text())
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["ExecStart"] == [INSTALLED_EXEC]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["LoadCredential"] == ["anthropic_api_key:/etc/batchd/anthropic_api_key"]
    assert s["EnvironmentFile"] == ["-/etc/batchd/batchd.env"]
    assert s["StateDirectory"] == ["batchd"] and s["StateDirectoryMode"] == ["0700"]
    assert s["User"] == ["batchd"] and "DynamicUser" not in s
    assert s["UMask"] == ["0027"]
    assert s["Restart"] == ["on-failure"] and s["RestartPreventExitStatus"] == ["2"]
    # AF_UNIX for $NOTIFY_SOCKET, AF_INET/AF_INET6 for HTTPS to the API
    assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    # The watchdog must outlast batchd's longest single API call (the create call).
    from batchd.api import CREATE_TIMEOUT

    assert int(s["WatchdogSec"][0]) > CREATE_TIMEOUT


def test_example_config_is_valid_and_fits_the_unit() -> None:
    path = PACKAGING / "config.toml"
    config = load(path)
    raw = tomllib.loads(path.read_text())
    for section, keys in SCHEMA.items():
        for key, (_, default) in keys.items():
            if default is not None:  # keys without a TOML value (None) are shown commented out
                assert key in raw.get(section, {}), f"{section}.{key} is missing from the example"
    s = unit_settings(UNIT.read_text())
    writable = [Path(p) for value in s["ReadWritePaths"] for p in value.split()]
    for folder in (config.inbox, config.outbox):
        assert any(folder.is_relative_to(w) for w in writable), f"{folder} is not writable for the service"
    # One mount for both, so that moving an original into the outbox is a rename, not a copy.
    assert any(config.inbox.is_relative_to(w) and config.outbox.is_relative_to(w) for w in writable)
    assert config.state.parent == Path("/var/lib") / s["StateDirectory"][0]
    assert config.plugins == Path("/etc/batchd/plugins")
    assert int(config["service.umask"], 8) == int(s["UMask"][0], 8)


def test_example_environment_file_holds_no_secret() -> None:
    for line in (PACKAGING / "batchd.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", line), line
            assert not line.startswith("ANTHROPIC_API_KEY="), "the key goes through LoadCredential="


def test_install_script_is_valid_bash() -> None:
    script = PACKAGING / "install.sh"
    assert os.access(script, os.X_OK)
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
