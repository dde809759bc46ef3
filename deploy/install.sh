#!/usr/bin/env bash
# Install (or remove) the edge-slider daemon on Raspberry Pi OS Bookworm: apt packages, the
# edge-slider system user, a virtualenv in /opt/edge-slider, /etc/edge-slider/config.toml (only if
# absent) and the hardened systemd unit. Safe to re-run: every step checks before it changes.
# `deploy/install.sh --help` for the options.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

SERVICE=edge-slider
USER_NAME=edge-slider
# EDGE_PIWHEELS= (empty) drops the extra index: CI's emulated roots cannot reach piwheels.
PIWHEELS=${EDGE_PIWHEELS-https://www.piwheels.org/simple}
CONFIG_DIR=/etc/edge-slider
STATE_DIR=/var/lib/edge-slider
UNIT_PATH=/etc/systemd/system/$SERVICE.service

ARCH=""
PREFIX=/opt/edge-slider
FROM=""
ROOT=/
DRY_RUN=0
NO_START=0
UNINSTALL=0
PURGE=0
SKIP_APT=0
PYTHON=python3
NUMPY=auto

usage() {
  cat <<EOF
Usage: sudo $0 [options]

Installs edge-slider as a systemd service (Raspberry Pi OS Bookworm, 64- or 32-bit):
  1. apt packages: ca-certificates python3-venv python3-dev gcc portaudio19-dev alsa-utils python3-lgpio
     liblgpio-dev (+ libopenblas0 and g++ on armv7l: soxr has no armv7l wheel on PyPI)
  2. system user '$USER_NAME' in the groups audio and gpio (gpio is created if missing)
  3. a virtualenv in PREFIX/venv and 'pip install' of edge-slider with the extras for the CPU:
       aarch64  edge-slider[pi,litert]   (ai-edge-litert)
       armv7l   edge-slider[pi,tflite]   (tflite-runtime + numpy<2, piwheels as extra index)
       x86_64   edge-slider[pi,litert]   (for tests and dry runs)
  4. $CONFIG_DIR/config.toml from config/edge-slider.toml, only if it does not exist yet
  5. the unit $UNIT_PATH, daemon-reload, enable, (re)start

Options:
  --from SPEC      what to pip install: a source directory, a wheel file, or a PyPI requirement
                   such as 'edge-slider==0.2.0' (default: this repository, $REPO_DIR)
  --arch ARCH      aarch64 | armv7l | x86_64 (default: from 'dpkg --print-architecture', which
                   stays right on 32-bit Pi OS booted with a 64-bit kernel, where uname -m says
                   aarch64)
  --prefix DIR     installation directory (default: $PREFIX; the venv is DIR/venv)
  --root DIR       install into the file system tree DIR (an image or debootstrap root) instead
                   of /: apt, pip and user creation run through 'chroot DIR', the unit is enabled
                   with 'systemctl --root=DIR' and never started
  --python PY      interpreter for the venv (default: python3)
  --numpy WHERE    debian | pip: where numpy comes from. debian = apt's python3-numpy and a venv
                   made --system-site-packages (default on armv7l: PyPI has no armv7l wheel of
                   numpy<2, and compiling it takes over an hour on a Pi); pip = from the package
                   index (default elsewhere; on armv7l that is piwheels' wheel)
  --no-start       enable the service but do not start or restart it
  --skip-apt       do not install apt packages (they are already there)
  --dry-run        print every step, prefixed with '+', and change nothing (works as non-root)
  --uninstall      stop and disable the service, remove the unit and PREFIX; keeps
                   $CONFIG_DIR, $STATE_DIR (examples, models) and the user
  --purge          --uninstall, and also remove $CONFIG_DIR, $STATE_DIR and the user
  -h, --help       this help

Examples:
  sudo deploy/install.sh
  sudo deploy/install.sh --from dist/edge_slider-0.2.0-py3-none-any.whl
  deploy/install.sh --dry-run --arch armv7l
  sudo deploy/install.sh --purge
EOF
}

die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf '== %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }

ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --from) [ $# -ge 2 ] || die "--from needs a value"; FROM=$2; shift 2 ;;
    --from=*) FROM=${1#*=}; shift ;;
    --arch) [ $# -ge 2 ] || die "--arch needs a value"; ARCH=$2; shift 2 ;;
    --arch=*) ARCH=${1#*=}; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --root) [ $# -ge 2 ] || die "--root needs a value"; ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#*=}; shift ;;
    --python) [ $# -ge 2 ] || die "--python needs a value"; PYTHON=$2; shift 2 ;;
    --python=*) PYTHON=${1#*=}; shift ;;
    --numpy) [ $# -ge 2 ] || die "--numpy needs a value"; NUMPY=$2; shift 2 ;;
    --numpy=*) NUMPY=${1#*=}; shift ;;
    --no-start) NO_START=1; shift ;;
    --skip-apt) SKIP_APT=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) UNINSTALL=1; PURGE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path: $PREFIX" ;; esac
PREFIX=${PREFIX%/}
VENV=$PREFIX/venv
if [ "$ROOT" != / ]; then
  [ -d "$ROOT" ] || [ "$DRY_RUN" -eq 1 ] || die "--root $ROOT is not a directory"
  ROOT=$(cd "$ROOT" 2>/dev/null && pwd || printf '%s' "${ROOT%/}")
  NO_START=1  # nothing runs inside an image
fi

# ---------------------------------------------------------------------------------------------
# Helpers: every change goes through run (or in_root); --dry-run prints instead of executing.
# ---------------------------------------------------------------------------------------------
# Shell-quote words for display, leaving plain ones (paths, name[extras], key=value) readable.
SAFE_WORD='^[][A-Za-z0-9_./:=,@%+-]+$'
quote() {
  local out="" a
  for a in "$@"; do
    if [[ $a =~ $SAFE_WORD ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
  done
  printf '%s' "${out# }"
}

run() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '+ %s\n' "$(quote "$@")"
  else
    printf '+ %s\n' "$(quote "$@")" >&2
    "$@"
  fi
}

# A command that must see the target system (apt, pip, useradd): through chroot for --root.
in_root() {
  if [ "$ROOT" = / ]; then run "$@"; else run chroot "$ROOT" "$@"; fi
}

# Host-side path of a path in the target system.
P() { if [ "$ROOT" = / ]; then printf '%s' "$1"; else printf '%s%s' "$ROOT" "$1"; fi; }

have_group() {
  if [ "$ROOT" = / ]; then getent group "$1" >/dev/null; else grep -q "^$1:" "$(P /etc/group)" 2>/dev/null; fi
}
have_user() {
  if [ "$ROOT" = / ]; then getent passwd "$1" >/dev/null; else grep -q "^$1:" "$(P /etc/passwd)" 2>/dev/null; fi
}
# Is an apt package known to the target's package lists (python3-lgpio only exists in the
# Raspberry Pi archive, not in plain Debian)?
apt_known() {
  if [ "$ROOT" = / ]; then apt-cache show "$1" >/dev/null 2>&1; else chroot "$ROOT" apt-cache show "$1" >/dev/null 2>&1; fi
}

# The CPU of a root's binaries from its ELF header (e_machine), for dry runs, which must not chroot.
elf_arch() {
  local m
  m=$(od -An -tx1 -j18 -N2 "$1" 2>/dev/null | tr -d ' \n')
  case "$m" in
    b700) echo aarch64 ;;
    2800) echo armv7l ;;
    3e00) echo x86_64 ;;
  esac
}

detect_arch() {
  local deb="" elf=""
  if [ "$ROOT" = / ]; then
    deb=$(dpkg --print-architecture 2>/dev/null || true)
  elif [ -x "$(P /usr/bin/dpkg)" ] && [ "$DRY_RUN" -eq 0 ]; then
    deb=$(chroot "$ROOT" dpkg --print-architecture 2>/dev/null || true)
  elif [ -e "$(P /usr/bin/dpkg)" ]; then
    elf=$(elf_arch "$(P /usr/bin/dpkg)")
  fi
  case "$deb" in
    arm64) echo aarch64 ;;
    armhf) echo armv7l ;;
    amd64) echo x86_64 ;;
    *) if [ -n "$elf" ]; then echo "$elf"; else uname -m; fi ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Preconditions
# ---------------------------------------------------------------------------------------------
if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo $0 ${ARGS[*]}), or with --dry-run to see what would be done"
fi
if [ "$DRY_RUN" -eq 1 ]; then
  log "dry run: nothing is changed; commands are printed with a leading '+'"
fi

[ -n "$ARCH" ] || ARCH=$(detect_arch)
EXTRA_INDEX=()
case "$ARCH" in
  aarch64|arm64) ARCH=aarch64; EXTRAS=pi,litert ;;
  armv7l|armhf|armv8l) ARCH=armv7l; EXTRAS=pi,tflite; if [ -n "$PIWHEELS" ]; then EXTRA_INDEX=(--extra-index-url "$PIWHEELS"); fi ;;
  x86_64|amd64) ARCH=x86_64; EXTRAS=pi,litert ;;
  armv6l) die "armv6l (Pi Zero / Pi 1) is not supported: no TFLite runtime wheel exists for it" ;;
  *) die "unsupported architecture '$ARCH' (use --arch aarch64|armv7l|x86_64)" ;;
esac

case "$NUMPY" in
  auto) if [ "$ARCH" = armv7l ]; then NUMPY=debian; else NUMPY=pip; fi ;;
  debian|pip) ;;
  *) die "--numpy must be debian or pip, not '$NUMPY'" ;;
esac
VENV_OPTS=()
[ "$NUMPY" = debian ] && VENV_OPTS=(--system-site-packages)

# ---------------------------------------------------------------------------------------------
# Uninstall
# ---------------------------------------------------------------------------------------------
uninstall() {
  log "uninstall: stop and disable $SERVICE"
  if [ "$ROOT" = / ]; then
    if [ "$DRY_RUN" -eq 1 ] || [ -e "$UNIT_PATH" ]; then
      run systemctl disable --now "$SERVICE.service" || true
    fi
  elif [ "$DRY_RUN" -eq 1 ] || [ -e "$(P "$UNIT_PATH")" ]; then
    run systemctl --root="$ROOT" disable "$SERVICE.service" || true
  fi
  log "uninstall: remove the unit and $PREFIX"
  run rm -f "$(P "$UNIT_PATH")"
  run rm -rf "$(P "$UNIT_PATH.d")"
  if [ "$ROOT" = / ]; then run systemctl daemon-reload; fi
  run rm -rf "$(P "$PREFIX")"
  if [ "$PURGE" -eq 1 ]; then
    log "purge: remove $CONFIG_DIR, $STATE_DIR and the user $USER_NAME"
    run rm -rf "$(P "$CONFIG_DIR")" "$(P "$STATE_DIR")"
    if [ "$DRY_RUN" -eq 1 ] || have_user "$USER_NAME"; then
      in_root userdel "$USER_NAME"
    fi
    # The gpio group stays: other software (and the login user) use it.
  else
    log "kept: $CONFIG_DIR, $STATE_DIR (examples and models) and the user $USER_NAME (--purge removes them)"
  fi
  log "done"
}

if [ "$UNINSTALL" -eq 1 ]; then
  uninstall
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Install
# ---------------------------------------------------------------------------------------------
SOURCE=${FROM:-$REPO_DIR}
log "edge-slider: arch $ARCH, extras [$EXTRAS]${EXTRA_INDEX[*]:+, piwheels}, prefix $PREFIX, root $ROOT"
log "source: $SOURCE"
if [ "$NUMPY" = debian ]; then
  log "numpy: Debian's python3-numpy through a --system-site-packages venv (--numpy pip: from the index)"
else
  log "numpy: from the package index (--numpy debian: Debian's python3-numpy)"
fi

# 1. apt packages
APT_PACKAGES=(ca-certificates python3-venv python3-dev gcc portaudio19-dev alsa-utils)
PI_PACKAGES=(python3-lgpio liblgpio-dev)   # Raspberry Pi archive only
[ "$ARCH" = armv7l ] && APT_PACKAGES+=(libopenblas0)  # numpy from piwheels links it
# PyPI has no armv7l wheel of soxr: piwheels has one, but without piwheels pip builds it from its
# sdist, which needs a C++ compiler (CMake: "CMAKE_CXX_COMPILER not set").
[ "$ARCH" = armv7l ] && APT_PACKAGES+=(g++)
[ "$NUMPY" = debian ] && APT_PACKAGES+=(python3-numpy)

if [ "$SKIP_APT" -eq 0 ]; then
  log "1/5 apt packages"
  in_root apt-get update -q
  if [ "$DRY_RUN" -eq 0 ]; then
    for p in "${PI_PACKAGES[@]}"; do
      if apt_known "$p"; then APT_PACKAGES+=("$p"); else warn "$p is not in the apt sources (not Raspberry Pi OS?); skipping it"; fi
    done
  else
    APT_PACKAGES+=("${PI_PACKAGES[@]}")
  fi
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
else
  log "1/5 apt packages: skipped (--skip-apt)"
fi

# 2. user and groups
log "2/5 user $USER_NAME (groups audio, gpio)"
# Existence checks only read /etc/group and /etc/passwd, so a dry run evaluates them too.
for g in audio gpio; do
  have_group "$g" || in_root groupadd --system "$g"
done
if have_user "$USER_NAME"; then
  in_root usermod --append --groups audio,gpio "$USER_NAME"
else
  # Home = the state directory (systemd creates it); no login shell.
  in_root useradd --system --user-group --groups audio,gpio --home-dir "$STATE_DIR" \
    --no-create-home --shell /usr/sbin/nologin --comment "edge-slider daemon" "$USER_NAME"
fi

# 3. venv + pip install
log "3/5 virtualenv $VENV and pip install"
if [ -x "$(P "$VENV/bin/python")" ]; then
  log "venv $VENV exists: upgrading the package in it"
else
  in_root "$PYTHON" -m venv "${VENV_OPTS[@]}" "$VENV"
fi
if [ "$ARCH" = armv7l ] && [ "$DRY_RUN" -eq 0 ]; then
  # tflite-runtime publishes armv7l wheels for CPython <= 3.11 only (Bookworm ships 3.11).
  if ! in_root "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] > (3, 11))'; then
    die "tflite-runtime has no armv7l wheel for this Python (> 3.11); use --python python3.11"
  fi
fi

# Stage local sources inside the target (a chroot cannot see the host path, and pip builds a
# source directory in place: this keeps build/ and *.egg-info out of the checkout).
STAGE=""
cleanup() { if [ -n "$STAGE" ] && [ "$DRY_RUN" -eq 0 ]; then rm -rf "$(P "$STAGE")"; fi; }
trap cleanup EXIT
if [ -d "$SOURCE" ] || [ -f "$SOURCE" ]; then
  [ -d "$SOURCE" ] && { [ -f "$SOURCE/setup.cfg" ] || [ -f "$SOURCE/pyproject.toml" ]; } \
    || [ -f "$SOURCE" ] || die "$SOURCE is not a Python project"
  if [ "$DRY_RUN" -eq 1 ]; then
    STAGE=/tmp/edge-slider-install.XXXXXX
  else
    STAGE=$(mktemp -d "$(P /tmp)/edge-slider-install.XXXXXX")
    STAGE=${STAGE#"${ROOT%/}"}
  fi
  if [ -d "$SOURCE" ]; then
    if [ "$DRY_RUN" -eq 1 ]; then
      printf '+ %s\n' "tar -C $(quote "$SOURCE") --exclude=.git --exclude='.venv*' --exclude=build --exclude=dist --exclude='*.egg-info' --exclude=state -cf - . | tar -C $(quote "$(P "$STAGE")") -xf -"
    else
      tar -C "$SOURCE" --exclude=.git --exclude='.venv*' --exclude=build --exclude=dist \
        --exclude='*.egg-info' --exclude=state --exclude=__pycache__ -cf - . | tar -C "$(P "$STAGE")" -xf -
    fi
    REQ="${STAGE}[$EXTRAS]"
  else
    run cp "$SOURCE" "$(P "$STAGE")/"
    REQ="$STAGE/$(basename "$SOURCE")[$EXTRAS]"
  fi
elif [[ "$SOURCE" == *"["* ]]; then
  REQ=$SOURCE  # the caller chose the extras
elif [[ "$SOURCE" =~ ^([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$ ]]; then
  REQ="${BASH_REMATCH[1]}[$EXTRAS]${BASH_REMATCH[2]}"   # edge-slider==0.2 -> edge-slider[pi,litert]==0.2
else
  die "--from: not a directory, a file or a requirement: $SOURCE"
fi
in_root "$VENV/bin/python" -m pip install --quiet --upgrade pip
in_root "$VENV/bin/python" -m pip install --upgrade "${EXTRA_INDEX[@]}" "$REQ"
if [ "$DRY_RUN" -eq 0 ]; then
  in_root "$VENV/bin/edge-slider" --version
fi

# 4. configuration (never overwrite an existing, possibly edited, one)
log "4/5 configuration $CONFIG_DIR/config.toml"
run install -d -m 0755 "$(P "$CONFIG_DIR")"
if [ ! -e "$(P "$CONFIG_DIR/config.toml")" ]; then
  EXAMPLE=$REPO_DIR/config/edge-slider.toml
  [ -f "$EXAMPLE" ] || [ "$DRY_RUN" -eq 1 ] || die "example configuration $EXAMPLE is missing"
  run install -m 0640 "$EXAMPLE" "$(P "$CONFIG_DIR/config.toml")"
  # The group is resolved in the target system, hence in_root.
  in_root chown "root:$USER_NAME" "$CONFIG_DIR/config.toml"
else
  log "kept the existing $CONFIG_DIR/config.toml"
fi

# 5. systemd unit
log "5/5 systemd unit $UNIT_PATH"
UNIT_SRC=$REPO_DIR/systemd/$SERVICE.service
[ -f "$UNIT_SRC" ] || [ "$DRY_RUN" -eq 1 ] || die "unit file $UNIT_SRC is missing"
if [ "$PREFIX" = /opt/edge-slider ]; then
  run install -D -m 0644 "$UNIT_SRC" "$(P "$UNIT_PATH")"
elif [ "$DRY_RUN" -eq 1 ]; then
  printf '+ %s\n' "sed 's#/opt/edge-slider/venv#$VENV#g' $(quote "$UNIT_SRC") > $(quote "$(P "$UNIT_PATH")")"
else
  install -d -m 0755 "$(dirname "$(P "$UNIT_PATH")")"
  sed "s#/opt/edge-slider/venv#$VENV#g" "$UNIT_SRC" > "$(P "$UNIT_PATH")"
  chmod 0644 "$(P "$UNIT_PATH")"
fi

if [ "$ROOT" != / ]; then
  run systemctl --root="$ROOT" enable "$SERVICE.service"
  log "installed into $ROOT; the service starts when that system boots"
else
  run systemctl daemon-reload
  run systemctl enable "$SERVICE.service"
  if [ "$NO_START" -eq 1 ]; then
    log "enabled, not started (--no-start): sudo systemctl start $SERVICE"
  else
    # restart, not 'enable --now': a re-run after an upgrade must load the new code.
    run systemctl restart "$SERVICE.service"
    if [ "$DRY_RUN" -eq 0 ]; then
      systemctl --no-pager --lines=0 status "$SERVICE.service" || true
    fi
  fi
fi
log "done. Logs: journalctl -u $SERVICE -f    Config: $CONFIG_DIR/config.toml"
