#!/usr/bin/env bash
# A real, current Home Assistant for tests/test_homeassistant.py (marker `ha`).
#
# Current HA needs Python >= 3.14.2, which this machine (bookworm, 3.11) lacks: a debootstrapped
# Debian forky (testing) root brings python3.14, and HA is pip-installed into a venv inside it.
# The ready root is cached under /var/cache/edge-slider-ci/ keyed by the pinned version and marked
# by .ready only when complete, so a warm CI run only checks it. Prints the root's path on stdout
# (last line); logs go to stderr.
#   deploy/ci/homeassistant.sh            build (or reuse) the root
# The test runs hass with: chroot ROOT /opt/ha/bin/hass --skip-pip -c /ha-config (host network),
# so a test run never needs PyPI: everything HA loads is installed here, by a warm-up start.
set -euo pipefail
# NOTE: the newest release on PyPI on 2026-12-05, read with `pip index versions homeassistant`
# inside the root (the host's Python 3.11 pip only sees releases up to 2024.3.3).
HA_VERSION=${EDGE_HA_VERSION:-2026.11.0}
MIRROR=${EDGE_HA_MIRROR:-http://deb.debian.org/debian}
CACHE=${EDGE_CI_CACHE:-/var/cache/edge-slider-ci}
ROOT="$CACHE/ha-forky-$HA_VERSION"
log() { echo "homeassistant.sh: $*" >&2; }
# shellcheck source=deploy/ci/chroot.sh disable=SC1091 # followed with shellcheck -x
. "$(dirname "$0")/chroot.sh"
in_root() { clean_chroot "$TMP" env UV_NATIVE_TLS=1 "$@"; }
# NOTE: UV_NATIVE_TLS: HA installs integration requirements with uv, whose built-in (webpki) roots
# lack this machine's proxy CA ("invalid peer certificate: UnknownIssuer"); native TLS reads the root's store.

if [ -x "$ROOT/opt/ha/bin/hass" ] && [ -f "$ROOT/.ready" ]; then
  log "cached root $ROOT (Home Assistant $HA_VERSION)"; echo "$ROOT"; exit 0
fi
[ "$(id -u)" = 0 ] || { log "needs root (debootstrap, chroot); run: sudo $0"; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y debootstrap >&2
mkdir -p "$CACHE"
TMP="$ROOT.tmp"
rm -rf "$TMP"
log "debootstrap forky into $TMP (python3 3.14)"
# NOTE: bookworm's debootstrap has no 'forky' script; forky is testing, which uses sid's.
# gcc/g++/python3-dev: a dependency without a cp314 wheel still builds (assist_pipeline, a default
# integration, needs pymicro-vad and pyspeex-noise from source); libturbojpeg0 for camera/http.
debootstrap --variant=minbase --include=python3,python3-venv,python3-dev,ca-certificates,gcc,g++,libc6-dev,libturbojpeg0 \
  forky "$TMP" "$MIRROR" /usr/share/debootstrap/scripts/sid >"$CACHE/debootstrap-ha.log" 2>&1 \
  || { log "debootstrap failed, see $CACHE/debootstrap-ha.log"; tail -5 "$CACHE/debootstrap-ha.log" >&2; exit 1; }
cp /etc/resolv.conf "$TMP/etc/resolv.conf"
trust_host_cas "$TMP"
log "pip install homeassistant==$HA_VERSION"
in_root python3 -m venv /opt/ha
in_root /opt/ha/bin/pip install -q "homeassistant==$HA_VERSION" >&2
in_root /opt/ha/bin/python -c "import homeassistant.const as c; print('Home Assistant', c.__version__)" >&2
# The requirements of what the test loads (mqtt and HA's default integrations) at HA's own pins:
# a warm-up start installs them, the MQTT integration's are installed by name (no entry yet).
CONSTRAINTS=/opt/ha/lib/$(in_root /opt/ha/bin/python -c "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')")/site-packages/homeassistant/package_constraints.txt
# NOTE: read the manifest as a file: importing homeassistant.components.mqtt needs paho already.
REQS=$(in_root /opt/ha/bin/python -c "import json,pathlib,homeassistant as h; m=json.loads((pathlib.Path(h.__file__).parent/'components/mqtt/manifest.json').read_text()); print(' '.join(m['requirements']))")
log "pip install $REQS (the MQTT integration's)"
# shellcheck disable=SC2086 # word splitting of the requirement list is wanted
in_root /opt/ha/bin/pip install -q -c "$CONSTRAINTS" $REQS >&2
log "warm-up start of hass (installs the default integrations' requirements)"
mkdir -p "$TMP/ha-warmup"
printf 'homeassistant:\n  name: warmup\n  time_zone: UTC\nhttp:\n  server_port: 18123\n  server_host: 127.0.0.1\nonboarding:\nconfig:\napi:\nwebsocket_api:\n' \
  >"$TMP/ha-warmup/configuration.yaml"
in_root timeout 900 /opt/ha/bin/hass -c /ha-warmup --log-file /ha-warmup/warm.log >/dev/null 2>&1 &
WARM=$!
# Ready = /api/onboarding answers (no token needed; a probe of /api/ would log a failed login).
# HA logs at WARNING by default, so readiness is read from the API, not the log.
ok=
for _ in $(seq 900); do
  code=$(python3 -c "import urllib.request as u,urllib.error as e
try: u.urlopen('http://127.0.0.1:18123/api/onboarding', timeout=2); print(200)
except e.HTTPError as x: print(x.code)
except Exception: print(0)" 2>/dev/null || echo 0)
  if [ "$code" = 200 ]; then ok=1; break; fi
  kill -0 "$WARM" 2>/dev/null || break
  sleep 1
done
# Give the default integrations time to finish their background requirement installs.
[ -n "$ok" ] && sleep 20
# NOTE: timeout's child is hass: a TERM to timeout is passed on; HA stops cleanly within seconds.
kill -TERM "$WARM" 2>/dev/null || true
wait "$WARM" 2>/dev/null || true
if [ -z "$ok" ]; then
  log "warm-up start of hass failed; the last lines of its log:"; tail -20 "$TMP/ha-warmup/warm.log" >&2 || true
  exit 1
fi
if grep -E "Unable to install|Requirements for .* not found|failed to initialize|Setup failed" "$TMP/ha-warmup/warm.log" >&2; then
  log "warm-up: Home Assistant could not set something up (above; full log in $TMP/ha-warmup/warm.log)"; exit 1
fi
rm -rf "$TMP/ha-warmup"
in_root /opt/ha/bin/python -c "import homeassistant.const as c; print(c.__version__)" >"$TMP/.ha-version"
touch "$TMP/.ready"
rm -rf "$ROOT"; mv "$TMP" "$ROOT"
log "ready: $ROOT (Home Assistant $(cat "$ROOT/.ha-version"))"
echo "$ROOT"
