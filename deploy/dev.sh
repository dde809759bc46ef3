#!/usr/bin/env bash
# The developer's (and CI's) one entry point. Installs what it needs (apt + a virtualenv), then:
#   deploy/dev.sh run  [edge-slider run args]   the device on simulated hardware: mock pins, synthetic
#                                                audio, MQTT if a broker answers on localhost:1883
#   deploy/dev.sh test [pytest args]            the whole test suite, in both TFLite environments:
#                                                numpy 2 + ai-edge-litert, then numpy<2 + tflite-runtime;
#                                                without args also the emulated ARM job (deploy/ci/arm.sh)
#   deploy/dev.sh setup                         only install
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Debian packages the tests use: PortAudio headers (PyAudio builds from source), a real broker,
# PulseAudio for real capture through a null sink, sound tools and packaged sounds nobody here made,
# and Chromium for the web console's browser tests (Playwright drives it; it downloads no browser).
APT_PACKAGES=(
  python3-venv portaudio19-dev
  mosquitto mosquitto-clients
  pulseaudio pulseaudio-utils libasound2-plugins
  sox libsox-fmt-all espeak-ng alsa-utils sound-theme-freedesktop
  hedgewars-data ktuberling-data sonic-pi-samples
  shellcheck systemd debootstrap
  chromium
)

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

apt_install() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

PY=${PYTHON:-python3}

make_venv() {  # make_venv DIR "pip requirement..."
  local dir=$1; shift
  if [ ! -x "$dir/bin/python" ]; then
    log "venv: creating $dir"
    "$PY" -m venv "$dir"
    "$dir/bin/pip" install -q -U pip
  fi
  log "venv $dir: pip install $*"
  "$dir/bin/pip" install -q "$@"
}

setup_main() { make_venv "$ROOT/.venv" -e "${ROOT}[audio,litert,test,plot]"; }
# 32-bit Raspberry Pi OS has only tflite-runtime, which needs numpy<2: the suite runs there too.
setup_tflite() { make_venv "$ROOT/.venv-tflite" -e "${ROOT}[audio,tflite,test,plot]"; }
setup_ansible() {  # the fleet playbook's syntax check and lint (tests/deploy)
  make_venv "$ROOT/.venv-ansible" ansible-core ansible-lint
}
# A real, current Home Assistant for tests/test_homeassistant.py (marker ha): a Debian forky root
# with HA in a venv, cached under /var/cache/edge-slider-ci/ (cold ~2.5 min, warm instant; needs root).
setup_ha() {
  [ "$(id -u)" -eq 0 ] || { log "Home Assistant root: needs root; tests/test_homeassistant.py will fail (or pass -m 'not ha')"; return 0; }
  log "Home Assistant root (deploy/ci/homeassistant.sh)"
  bash "$ROOT/deploy/ci/homeassistant.sh" >/dev/null
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup)
    apt_install; setup_main; setup_tflite; setup_ansible; setup_ha ;;
  run)
    apt_install; setup_main
    state=${EDGE_SLIDER_STATE:-$ROOT/state}
    log "demo: teach the mock device (snaps = left, whistles = right) and train a model in $state"
    "$ROOT/.venv/bin/edge-slider" demo --into "$state"
    log "run: the daemon on simulated hardware (Ctrl-C stops it); MQTT on localhost:1883 if a broker answers"
    exec "$ROOT/.venv/bin/edge-slider" --state-dir "$state" run --simulate "$@" ;;
  test)
    apt_install; setup_main; setup_tflite; setup_ansible
    # NOTE: not fatal here: if HA cannot be built, its test fails and says why; the rest still runs.
    setup_ha || log "Home Assistant root not built: tests/test_homeassistant.py will fail and say why"
    export EDGE_ANSIBLE_BIN="$ROOT/.venv-ansible/bin"
    log "lint: ruff check and mypy (rules in pyproject.toml)"
    "$ROOT/.venv/bin/ruff" check
    "$ROOT/.venv/bin/mypy"
    # The installer's real run into a debootstrapped bookworm root (~1 min, needs root and the
    # Debian mirror) belongs to neither TFLite environment: it runs once, with the first.
    log "tests: numpy 2 + ai-edge-litert (and install.sh into a debootstrap root)"
    EDGE_TEST_DEBOOTSTRAP=${EDGE_TEST_DEBOOTSTRAP:-1} "$ROOT/.venv/bin/python" -m pytest "$@"
    log "tests: numpy<2 + tflite-runtime (the 32-bit Pi environment)"
    "$ROOT/.venv-tflite/bin/python" -m pytest \
      --deselect tests/test_deploy.py::test_install_into_debootstrap_root \
      --ignore tests/test_homeassistant.py --ignore tests/test_web_browser.py "$@"
    # The emulated Raspberry Pi job: install.sh, demo, a round trip and the suite in arm64 and armhf
    # bookworm roots under qemu 10 (~15 min warm, both in parallel). Only for the whole suite (no
    # pytest args), so a developer's `dev.sh test tests/test_x.py` stays quick; EDGE_TEST_ARM=0 skips it.
    if [ $# -eq 0 ] && [ "${EDGE_TEST_ARM:-1}" = 1 ]; then
      if [ "$(id -u)" -eq 0 ]; then
        log "ARM: deploy/ci/arm.sh (emulated arm64 + armhf; EDGE_TEST_ARM=0 leaves it out)"
        bash "$ROOT/deploy/ci/arm.sh"
      else
        log "ARM job NOT run: it needs root (sudo deploy/ci/arm.sh); nothing was proven on ARM"
      fi
    fi ;;
  *)
    echo "usage: deploy/dev.sh run|test|setup [args]" >&2; exit 2 ;;
esac
