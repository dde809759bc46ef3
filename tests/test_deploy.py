"""Deployment artefacts: the systemd unit, the installer, the Ansible playbook, sd_notify.

Tools these tests need (systemd-analyze, shellcheck, debootstrap, the Ansible venv) are
installed by ``deploy/dev.sh``; a test whose tool is missing fails with the install command. The
real installation into a debootstrap root (~1 min, root and the Debian mirror) runs with
EDGE_TEST_DEBOOTSTRAP=1, which ``deploy/dev.sh test`` (and so CI) sets for its first pass.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edge.systemd import Notifier

from tests.brokers import USERS, auth_broker  # noqa: F401  (auth_broker is a fixture: the real Mosquitto)

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "edge-slider.service"
INSTALL = REPO / "deploy" / "install.sh"
ANSIBLE_DIR = REPO / "deploy" / "ansible"
MAX_EXPOSURE = 4.0


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _need(tool: str) -> str:
    # NOTE: fail, not skip: deploy/dev.sh installs every one of these, so a missing tool is a broken setup.
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (apt-get install {'systemd' if 'systemd' in tool else tool}; "
                    "deploy/dev.sh does)")
    return path


def _systemd_version() -> int:
    out = _run([_need("systemd-analyze"), "--version"]).stdout
    m = re.match(r"systemd (\d+)", out)
    return int(m.group(1)) if m else 0


def _unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart's binary replaced by /bin/true: verify checks that the binary
    exists and is executable, and /opt/edge-slider/venv is not there outside a device."""
    text = UNIT.read_text()
    assert "ExecStart=/opt/edge-slider/venv/bin/edge-slider " in text
    copy = tmp_path / "edge-slider.service"
    copy.write_text(text.replace("ExecStart=/opt/edge-slider/venv/bin/edge-slider ", "ExecStart=/bin/true "))
    return copy


# ---------------------------------------------------------------------------------------------
# (a), (b) the unit
# ---------------------------------------------------------------------------------------------

def test_unit_verify_is_clean(tmp_path):
    analyze = _need("systemd-analyze")
    unit = _unit_copy(tmp_path)
    res = _run([analyze, "verify", str(unit)], cwd=tmp_path)
    out = res.stdout + res.stderr
    # verify exits 0 even for unknown keys ("Unknown key ..., ignoring"): look at what it says
    # about our unit (every such line names the file or the unit).
    problems = [line for line in out.splitlines() if "edge-slider" in line]
    assert res.returncode == 0 and not problems, out


def test_unit_verify_reports_bad_directives(tmp_path):
    """The check above relies on verify printing unknown directives: make sure this systemd does."""
    analyze = _need("systemd-analyze")
    bad = tmp_path / "edge-slider.service"
    bad.write_text(_unit_copy(tmp_path).read_text().replace("[Service]\n", "[Service]\nNoSuchDirective=1\n", 1))
    res = _run([analyze, "verify", str(bad)], cwd=tmp_path)
    assert "NoSuchDirective" in res.stdout + res.stderr


def test_unit_essentials():
    text = UNIT.read_text()
    lines = {line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    for want in (
        "Type=notify", "NotifyAccess=main", "WatchdogSec=30", "Restart=on-failure", "RestartSec=5",
        "User=edge-slider", "Group=edge-slider", "SupplementaryGroups=audio gpio",
        "StateDirectory=edge-slider", "ConfigurationDirectory=edge-slider",
        "DevicePolicy=closed", "DeviceAllow=char-alsa rw", "DeviceAllow=char-gpiochip rw",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "NoNewPrivileges=yes",
        "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "UMask=0077",
        "ExecStart=/opt/edge-slider/venv/bin/edge-slider --config /etc/edge-slider/config.toml "
        "--state-dir /var/lib/edge-slider run",
    ):
        assert want in lines, want
    assert any(line.startswith("StartLimitBurst=") for line in lines)
    # PrivateDevices would hide /dev/snd and the GPIO chips
    assert not any(line.startswith("PrivateDevices=") for line in lines)


def test_unit_security_exposure(tmp_path):
    analyze = _need("systemd-analyze")
    version = _systemd_version()
    if version < 252:
        pytest.skip(f"systemd {version}: 'systemd-analyze security --offline=' needs systemd >= 252")
    res = _run([analyze, "security", "--offline=true", "--no-pager", str(_unit_copy(tmp_path))], cwd=tmp_path)
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", res.stdout)
    assert m, res.stdout + res.stderr
    exposure = float(m.group(1))
    assert exposure <= MAX_EXPOSURE, res.stdout


# ---------------------------------------------------------------------------------------------
# (c) shellcheck
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("script", ["deploy/install.sh", ".ci/run", "deploy/dev.sh", "deploy/ci/arm.sh", "deploy/ci/homeassistant.sh"])
def test_shellcheck(script):
    shellcheck = _need("shellcheck")
    res = _run([shellcheck, "--shell=bash", "--severity=style", str(REPO / script)])
    assert res.returncode == 0, res.stdout + res.stderr


# ---------------------------------------------------------------------------------------------
# (d) install.sh --dry-run
# ---------------------------------------------------------------------------------------------

def _dry_run(tmp_path, *args) -> str:
    prefix = tmp_path / "opt"  # a prefix that surely does not exist yet: the venv step is printed
    res = _run(["bash", str(INSTALL), "--dry-run", "--prefix", str(prefix), *args], cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not prefix.exists(), "--dry-run created the prefix"
    return res.stdout


def _common_steps(out: str, prefix: str):
    assert "apt-get install" in out and "portaudio19-dev" in out and "python3-venv" in out
    assert re.search(r"^\+ (useradd --system .*edge-slider$|usermod --append --groups audio,gpio edge-slider$)", out, re.M)
    assert re.search(rf"-m venv (--system-site-packages )?{re.escape(prefix)}/venv", out)
    assert re.search(rf"{re.escape(prefix)}/venv/bin/python -m pip install", out)
    assert ("/etc/edge-slider/config.toml" in out)
    assert "/etc/systemd/system/edge-slider.service" in out
    assert "+ systemctl daemon-reload" in out
    assert "+ systemctl enable edge-slider.service" in out


def test_install_dry_run_aarch64(tmp_path):
    out = _dry_run(tmp_path, "--arch", "aarch64")
    _common_steps(out, str(tmp_path / "opt"))
    assert "[pi,litert]" in out
    assert "tflite" not in out and "piwheels" not in out and "libopenblas0" not in out
    assert "+ systemctl restart edge-slider.service" in out
    # a prefix other than /opt/edge-slider rewrites ExecStart
    assert f"#{tmp_path}/opt/venv#g" in out


def test_install_dry_run_armv7l(tmp_path):
    out = _dry_run(tmp_path, "--arch", "armv7l")
    _common_steps(out, str(tmp_path / "opt"))
    assert "[pi,tflite]" in out and "litert" not in out
    assert "--extra-index-url https://www.piwheels.org/simple" in out
    assert "libopenblas0" in out
    assert " g++" in out.split("1/5 apt")[1].split("2/5")[0]   # soxr's sdist without piwheels
    # PyPI has no armv7l numpy<2 wheel (pip would compile numpy 2's sdist for over an hour): Debian's
    assert "python3-numpy" in out and "-m venv --system-site-packages" in out and "numpy: Debian's" in out
    out = _dry_run(tmp_path, "--arch", "armv7l", "--numpy", "pip")
    assert " python3-numpy" not in out.split("1/5 apt")[1] and "venv --system-site-packages" not in out


def _elf_stub(path: Path, machine: int):
    """The first bytes of an ELF executable for CPU ``machine`` (e_machine at offset 18)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = b"\x7fELF\x01\x01\x01" + bytes(9) + (2).to_bytes(2, "little") + machine.to_bytes(2, "little")
    path.write_bytes(head + bytes(32))


@pytest.mark.parametrize("machine, arch", [(0x28, "armv7l"), (0xB7, "aarch64")])
def test_install_dry_run_reports_the_roots_architecture(tmp_path, machine, arch):
    """The dry run never chroots, and fell back to the host's uname -m ('arch x86_64' for an armhf root)."""
    root = tmp_path / "image"
    _elf_stub(root / "usr/bin/dpkg", machine)
    out = _dry_run(tmp_path, "--root", str(root))
    assert f"edge-slider: arch {arch}," in out, out


def test_install_dry_run_options(tmp_path):
    out = _dry_run(tmp_path, "--arch", "aarch64", "--no-start", "--from", "edge-slider==0.2.0")
    assert "edge-slider[pi,litert]==0.2.0" in out
    assert "systemctl restart" not in out and "+ systemctl enable edge-slider.service" in out

    out = _dry_run(tmp_path, "--arch", "aarch64", "--uninstall")
    assert "+ systemctl disable --now edge-slider.service" in out
    assert f"+ rm -rf {tmp_path}/opt" in out
    assert "userdel" not in out and "rm -rf /etc/edge-slider" not in out

    out = _dry_run(tmp_path, "--arch", "aarch64", "--purge")
    assert "rm -rf /etc/edge-slider /var/lib/edge-slider" in out and "userdel edge-slider" in out

    root = tmp_path / "image"
    root.mkdir()
    out = _dry_run(tmp_path, "--arch", "armv7l", "--root", str(root))
    assert f"+ chroot {root} env DEBIAN_FRONTEND=noninteractive apt-get install" in out
    assert f"+ systemctl --root={root} enable edge-slider.service" in out
    assert "daemon-reload" not in out and "systemctl restart" not in out


def test_install_rejects_bad_arguments(tmp_path):
    assert _run(["bash", str(INSTALL), "--dry-run", "--arch", "mips"]).returncode != 0
    assert _run(["bash", str(INSTALL), "--bogus"]).returncode != 0
    helped = _run(["bash", str(INSTALL), "--help"])
    assert helped.returncode == 0 and "--dry-run" in helped.stdout and "--purge" in helped.stdout
    if os.geteuid() != 0:
        res = _run(["bash", str(INSTALL), "--arch", "aarch64"])
        assert res.returncode != 0 and "root" in res.stderr


# ---------------------------------------------------------------------------------------------
# (e) Ansible
# ---------------------------------------------------------------------------------------------

def _ansible_bin() -> Path:
    bindir = Path(os.environ.get("EDGE_ANSIBLE_BIN") or REPO / ".venv-ansible" / "bin")
    if not (bindir / "ansible-playbook").exists():
        pytest.fail(f"no ansible-playbook in {bindir} (bash deploy/dev.sh setup, or set EDGE_ANSIBLE_BIN)")
    return bindir


def _ansible_env(bindir: Path, tmp_path: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ANSIBLE_DIR / "ansible.cfg")
    env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / "ansible-tmp")
    env["NO_COLOR"] = "1"
    return env


def test_ansible_syntax_check(tmp_path):
    bindir = _ansible_bin()
    res = _run([str(bindir / "ansible-playbook"), "-i", "inventory.example.ini", "--syntax-check", "site.yml"],
               cwd=ANSIBLE_DIR, env=_ansible_env(bindir, tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr


def test_ansible_lint_production(tmp_path):
    bindir = _ansible_bin()
    if not (bindir / "ansible-lint").exists():
        pytest.fail(f"no ansible-lint in {bindir} (bash deploy/dev.sh setup)")
    res = _run([str(bindir / "ansible-lint"), "--profile", "production", "--nocolor", "site.yml"],
               cwd=ANSIBLE_DIR, env=_ansible_env(bindir, tmp_path), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def _local_play(tmp_path: Path, tasks: list[dict], extra_vars: dict) -> subprocess.CompletedProcess:
    """Run tasks of the role on localhost with the role's defaults (a stand-in for a device)."""
    import json

    bindir = _ansible_bin()
    role = ANSIBLE_DIR / "roles" / "edge_slider"
    play = [{"name": "role pieces on localhost", "hosts": "localhost", "connection": "local",
             "gather_facts": False, "vars_files": [str(role / "defaults" / "main.yml")],
             "vars": {"role_path": str(role)}, "tasks": tasks}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    # the Ansible venv's own Python on "localhost" (interpreter discovery may find a pyenv shim)
    extra_vars = {"ansible_python_interpreter": str(bindir / "python"), **extra_vars}
    (tmp_path / "vars.json").write_text(json.dumps(extra_vars))
    return _run([str(bindir / "ansible-playbook"), "-i", "localhost,", str(tmp_path / "play.yml"),
                 "-e", f"@{tmp_path / 'vars.json'}"], cwd=tmp_path, env=_ansible_env(bindir, tmp_path), timeout=180)


def test_ansible_config_template_is_valid_config(tmp_path):
    from edge.config import load_config

    out = tmp_path / "config.toml"
    role = ANSIBLE_DIR / "roles" / "edge_slider"
    res = _local_play(tmp_path, [{"ansible.builtin.template": {"src": str(role / "templates" / "config.toml.j2"),
                                                             "dest": str(out), "mode": "0600"}}],
                      {"device_id": "kitchen", "mqtt_host": "broker.lan", "mqtt_password": "s3cret",
                       "edge_slider_config_dir": str(tmp_path),
                       "edge_slider_config_extra": "[listen]\nthreshold = 0.8"})
    assert res.returncode == 0, res.stdout + res.stderr
    text = out.read_text()
    assert "s3cret" not in text  # the password goes to the password file only
    (tmp_path / "mqtt-password").write_text("s3cret\n")  # the role writes it before config.toml
    cfg = load_config(str(out), env={})
    assert cfg.device.id == "kitchen"
    assert cfg.mqtt.host == "broker.lan" and cfg.mqtt.username == "kitchen"
    assert cfg.mqtt.password_file == str(tmp_path / "mqtt-password")
    assert cfg.mqtt.resolved_password() == "s3cret"
    assert cfg.mqtt.topic(cfg.device.id) == "edge-slider/kitchen"
    assert cfg.listen.threshold == 0.8


@pytest.mark.mqtt
def test_ansible_health_check_against_a_broker(tmp_path, auth_broker):
    """health.yml against a broker with the example ACL: the monitoring account reads the
    device's retained status and state; a wrong version fails the check (which stops a rolling
    upgrade), and the device's own account could not have read them (why it runs on the
    controller)."""
    import json

    _need("mosquitto_sub")
    _need("mosquitto_pub")
    b = auth_broker
    conn = ["-h", b.host, "-p", str(b.port)]
    dev = [*conn, "-u", "dev-a", "-P", USERS["dev-a"]]
    for topic, payload in (("status", "online"), ("state", json.dumps({"version": "1.2.3", "mode": "listening"}))):
        pub = _run(["mosquitto_pub", *dev, "-q", "1", "-r", "-t", f"edge-slider/dev-a/{topic}", "-m", payload])
        assert pub.returncode == 0, pub.stderr
    own = _run(["mosquitto_sub", *dev, "-C", "1", "-W", "1", "-t", "edge-slider/dev-a/status"])
    assert own.stdout.strip() != "online"  # the ACL hides a device's own status from it

    health = str(ANSIBLE_DIR / "roles" / "edge_slider" / "tasks" / "health.yml")
    common = {"device_id": "dev-a", "mqtt_host": b.host, "mqtt_port": b.port,
              "mqtt_monitor_password": USERS["admin"], "edge_slider_health_retries": 1,
              "edge_slider_health_delay": 0, "edge_slider_health_timeout": 2}
    ok = _local_play(tmp_path, [{"ansible.builtin.include_tasks": health}], {**common, "edge_slider_version": "1.2.3"})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _local_play(tmp_path, [{"ansible.builtin.include_tasks": health}], {**common, "edge_slider_version": "9.9.9"})
    assert bad.returncode != 0, bad.stdout
    assert re.search(r"fatal: .*\n?.*", bad.stdout.split("report the deployed version", 1)[-1]), bad.stdout
    assert USERS["admin"] not in ok.stdout + ok.stderr + bad.stdout + bad.stderr  # no_log


# ---------------------------------------------------------------------------------------------
# (f) sd_notify and the watchdog interval
# ---------------------------------------------------------------------------------------------

def test_watchdog_interval_follows_watchdog_usec(tmp_path):
    path = str(tmp_path / "notify")
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
    try:
        assert n.watchdog_interval == 15.0
    finally:
        n.close()
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    try:
        assert n.watchdog_interval == 0.0  # meant for another process
    finally:
        n.close()
    assert Notifier.from_env({}).notify("READY=1") is False  # outside systemd: a no-op


def _receive_all(server: socket.socket, notifier: Notifier) -> list[bytes]:
    assert notifier.ready()
    assert notifier.watchdog()
    assert notifier.stopping()
    return [server.recv(4096) for _ in range(3)]


def _check_messages(msgs: list[bytes]):
    ready, watchdog, stopping = (m.decode().split("\n") for m in msgs)
    assert "READY=1" in ready
    assert watchdog == ["WATCHDOG=1"]
    assert stopping == ["STOPPING=1"]


def test_notify_over_a_real_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
        try:
            _check_messages(_receive_all(server, n))
        finally:
            n.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract AF_UNIX names are Linux-only")
def test_notify_abstract_namespace():
    name = f"edge-slider-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(5)
        n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        try:
            _check_messages(_receive_all(server, n))
        finally:
            n.close()


# ---------------------------------------------------------------------------------------------
# (g) a real installation into a throwaway Debian bookworm root
# ---------------------------------------------------------------------------------------------

def _trust_host_cas(root: Path):
    """Let pip in the chroot trust what the host trusts: behind a TLS-intercepting proxy (CI
    sandboxes) PyPI's certificate is signed by a local CA. Installed CAs survive the
    update-ca-certificates that apt runs when it installs ca-certificates in the root."""
    local = Path("/usr/local/share/ca-certificates")
    if local.is_dir():
        dest = root / "usr/local/share/ca-certificates"
        dest.mkdir(parents=True, exist_ok=True)
        for crt in local.glob("*.crt"):
            shutil.copy2(crt, dest / crt.name)
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file() and not (root / "etc/ssl/certs/ca-certificates.crt").exists():
        (root / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copy2(bundle, root / "etc/ssl/certs/ca-certificates.crt")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("EDGE_TEST_DEBOOTSTRAP") != "1",
                    reason="set EDGE_TEST_DEBOOTSTRAP=1 to debootstrap bookworm and run install.sh in it (~1 min)")
def test_install_into_debootstrap_root(tmp_path):
    debootstrap = _need("debootstrap")
    if os.geteuid() != 0:
        pytest.skip("debootstrap and chroot need root")
    # EDGE_TEST_DEBOOTSTRAP_ROOT: reuse an existing bookworm root (copied, so it stays pristine).
    cached = os.environ.get("EDGE_TEST_DEBOOTSTRAP_ROOT")
    root = tmp_path / "root"
    if cached:
        res = _run(["cp", "-a", cached, str(root)], timeout=600)
        assert res.returncode == 0, res.stderr
    else:
        mirror = os.environ.get("EDGE_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
        res = _run([debootstrap, "--variant=minbase", "bookworm", str(root), mirror], timeout=1800)
        # opt-in test: a failed debootstrap is a failure the person who asked for it must see
        assert res.returncode == 0, f"debootstrap failed (no network?): {res.stderr[-500:]}"
    _trust_host_cas(root)
    mounted = []
    try:
        for fs in ("proc", "dev"):  # pip and apt want /proc and /dev/null, /dev/urandom
            target = root / fs
            if _run(["mount", "--bind", f"/{fs}", str(target)]).returncode == 0:
                mounted.append(target)
        res = _run(["bash", str(INSTALL), "--root", str(root), "--no-start"], timeout=1800)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        venv_py = "/opt/edge-slider/venv/bin/python"
        res = _run(["chroot", str(root), venv_py, "-c", "import edge, sys; print(edge.__version__)"])
        assert res.returncode == 0, res.stderr
        assert (root / "etc/systemd/system/edge-slider.service").is_file()
        assert (root / "etc/systemd/system/multi-user.target.wants/edge-slider.service").is_symlink()
        assert (root / "etc/edge-slider/config.toml").is_file()
        assert "edge-slider:" in (root / "etc/passwd").read_text()
        # idempotent: a second run succeeds and keeps an edited config
        cfg = root / "etc/edge-slider/config.toml"
        cfg.write_text(cfg.read_text() + "\n# edited\n")
        res = _run(["bash", str(INSTALL), "--root", str(root), "--no-start", "--skip-apt"], timeout=1800)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert cfg.read_text().endswith("# edited\n")
    finally:
        for target in reversed(mounted):
            _run(["umount", "--lazy", str(target)])
