#!/usr/bin/env bash
# install.sh — install, upgrade or remove the compound edge gateway on Raspberry Pi OS / Debian 12 (64-bit).
#
#   sudo systemd/install.sh                 install or upgrade (idempotent: run it again any time)
#   sudo systemd/install.sh --uninstall     remove the software; keeps /etc/edge-gateway and the data
#   sudo systemd/install.sh --uninstall --purge   also delete configuration, keys and data
#
# Options:
#   --root DIR       install into DIR instead of / (image builds, tests); also taken from $DESTDIR
#   --source PATH    what pip installs (default: the source tree this script is in)
#   --pip-args ARGS  extra pip arguments, e.g. "--no-index --find-links /media/usb/wheels" for offline sites
#   --python PY      interpreter for the venv (default python3; 3.11 or newer)
#   --no-venv        do not create/update the venv (image builders that bring their own; tests)
#   --no-start       do not (re)start the service even on a live system
#   --package        called from the .deb maintainer scripts (dpkg owns /opt/edge-gateway/src)
#
# Layout: software /opt/edge-gateway (venv/, docs/, systemd/), config /etc/edge-gateway (edge.yaml 0644,
# credentials/ 0700), data /var/lib/edge-gateway (systemd StateDirectory, owned by the dynamic service user),
# unit /etc/systemd/system/edge-gateway.service, journald and logrotate limits for SD cards.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC_DEFAULT="$(cd "$HERE/.." && pwd)"
ROOT="${DESTDIR:-/}"
ACTION=install
PURGE=0
NO_VENV=0
NO_START=0
PACKAGE=0
PYTHON=python3
SOURCE="$SRC_DEFAULT"
PIP_ARGS=""

die() { echo "install.sh: error: $*" >&2; exit 1; }
say() { echo "==> $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --root=*) ROOT="${1#*=}"; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    --source) SOURCE="${2:?--source needs a path}"; shift 2 ;;
    --pip-args) PIP_ARGS="${2?}"; shift 2 ;;
    --python) PYTHON="${2:?}"; shift 2 ;;
    --no-venv) NO_VENV=1; shift ;;
    --no-start) NO_START=1; shift ;;
    --package) PACKAGE=1; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

ROOT="${ROOT%/}"                       # "" means the real system
[ -z "$ROOT" ] || mkdir -p "$ROOT"
[ -z "$ROOT" ] || ROOT="$(cd "$ROOT" && pwd)"
[ "$ROOT" = "/" ] && ROOT=""
LIVE=0                                 # a real system with systemd running: may reload/enable/start
if [ -z "$ROOT" ]; then
  [ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 $*"
  [ -d /run/systemd/system ] && LIVE=1
fi

OPT="$ROOT/opt/edge-gateway"
ETC="$ROOT/etc/edge-gateway"
UNITDIR="$ROOT/etc/systemd/system"
JOURNALD="$ROOT/etc/systemd/journald.conf.d/edge-gateway.conf"
LOGROTATE="$ROOT/etc/logrotate.d/edge-gateway"
LOGDIR="$ROOT/var/log/edge-gateway"
BIN="$ROOT/usr/local/bin/edge"
UNITS=(edge-gateway.service edge-gateway-provision.service)

# copy a file only when its content changed (keeps re-runs quiet and mtimes stable)
put() { # put MODE SRC DEST
  local mode="$1" src="$2" dest="$3"
  mkdir -p "$(dirname "$dest")"
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then chmod "$mode" "$dest"; return 0; fi
  install -m "$mode" "$src" "$dest"
  echo "    installed $dest"
}

log_action() {
  mkdir -p "$LOGDIR" && chmod 0750 "$LOGDIR"
  local version="unknown"
  [ -x "$OPT/venv/bin/edge" ] && version="$("$OPT/venv/bin/edge" version 2>/dev/null || echo unknown)"
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $1 version=$version source=$SOURCE" >> "$LOGDIR/install.log"
}

systemctl_offline() { # enable/disable units inside ROOT without a running systemd
  if command -v systemctl >/dev/null 2>&1; then
    systemctl --root="${ROOT:-/}" --quiet "$@" 2>/dev/null && return 0
  fi
  # no usable systemctl: do what `enable`/`disable` do for WantedBy=multi-user.target by hand
  local verb="$1"; shift
  mkdir -p "$UNITDIR/multi-user.target.wants"
  for u in "$@"; do
    if [ "$verb" = enable ]; then ln -sfn "/etc/systemd/system/$u" "$UNITDIR/multi-user.target.wants/$u"
    else rm -f "$UNITDIR/multi-user.target.wants/$u"; fi
  done
}

check_platform() {
  local arch; arch="$(uname -m)"
  case "$arch" in
    aarch64|x86_64) ;;
    armv6l|armv7l|armhf) die "32-bit ARM ($arch): onnxruntime has no 32-bit ARM wheels. Flash Raspberry Pi OS (64-bit)." ;;
    *) echo "install.sh: warning: untested architecture $arch" >&2 ;;
  esac
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: sudo apt-get install -y python3 python3-venv"
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "$PYTHON is older than 3.11 (Debian 12 / Raspberry Pi OS Bookworm has 3.11)"
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || die "python venv support missing: sudo apt-get install -y python3-venv"
}

install_venv() {
  local venv="$OPT/venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "creating the Python environment $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install -q --upgrade pip $PIP_ARGS || echo "install.sh: warning: could not upgrade pip" >&2
  fi
  say "installing the gateway software from $SOURCE (this takes a few minutes on a Pi)"
  local from="$SOURCE" tmp=""
  if [ "$PACKAGE" -eq 1 ] && [ -d "$SOURCE" ]; then
    # pip builds in the source tree; keep dpkg's files pristine by building from a copy
    tmp="$(mktemp -d)"; cp -r "$SOURCE/." "$tmp/"; from="$tmp"
  fi
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install -q --upgrade $PIP_ARGS "$from"
  [ -z "$tmp" ] || rm -rf "$tmp"
  "$venv/bin/edge" version >/dev/null || die "the installed 'edge' command does not run"
}

do_install() {
  check_platform
  say "installing into ${ROOT:-/}"
  install -d -m 0755 "$OPT" "$OPT/docs" "$OPT/systemd" "$ETC" "$UNITDIR"
  install -d -m 0700 "$ETC/credentials"
  [ "$NO_VENV" -eq 1 ] || install_venv
  # the files the installed system refers to: units, SD-card limits, docs, this script (for --uninstall)
  put 0644 "$HERE/edge-gateway.service" "$UNITDIR/edge-gateway.service"
  put 0644 "$HERE/edge-gateway-provision.service" "$UNITDIR/edge-gateway-provision.service"
  put 0644 "$HERE/journald-edge-gateway.conf" "$JOURNALD"
  put 0644 "$HERE/logrotate-edge-gateway" "$LOGROTATE"
  for f in edge-gateway.service edge-gateway-provision.service journald-edge-gateway.conf logrotate-edge-gateway install.sh; do
    put "$([ "$f" = install.sh ] && echo 0755 || echo 0644)" "$HERE/$f" "$OPT/systemd/$f"
  done
  [ -f "$SRC_DEFAULT/docs/installer-guide.md" ] && put 0644 "$SRC_DEFAULT/docs/installer-guide.md" "$OPT/docs/installer-guide.md"
  if [ -f "$SRC_DEFAULT/docs/examples/edge.yaml" ]; then
    put 0644 "$SRC_DEFAULT/docs/examples/edge.yaml" "$OPT/docs/examples/edge.yaml"
    put 0644 "$SRC_DEFAULT/docs/examples/edge.yaml" "$ETC/edge.yaml.example"
  fi
  mkdir -p "$(dirname "$BIN")"
  ln -sfn /opt/edge-gateway/venv/bin/edge "$BIN"
  if [ "$LIVE" -eq 1 ]; then
    systemctl daemon-reload
    systemctl enable --quiet "${UNITS[@]}"
    systemctl try-restart systemd-journald.service || true   # apply the journal limits now
  else
    systemctl_offline enable "${UNITS[@]}"
  fi
  log_action install
  if [ -f "$ETC/edge.yaml" ] && [ -f "$ETC/credentials/gateway.key" ]; then
    if [ "$LIVE" -eq 1 ] && [ "$NO_START" -eq 0 ]; then
      say "restarting edge-gateway"
      systemctl restart edge-gateway.service
    fi
    say "done. Check it with: sudo edge doctor"
  else
    say "done. Next: provision this gateway (see /opt/edge-gateway/docs/installer-guide.md):"
    echo "    sudo edge provision --gateway-id ID --compound-id ID --county-code 330106 --broker mqtts://HOST:8883 --ca-file county-ca.pem"
    echo "    (or put edge-gateway.yaml on the boot partition and reboot)"
  fi
}

do_uninstall() {
  say "removing the edge gateway from ${ROOT:-/}"
  if [ "$LIVE" -eq 1 ]; then
    systemctl disable --now --quiet "${UNITS[@]}" 2>/dev/null || true
  elif [ -f "$UNITDIR/edge-gateway.service" ]; then
    systemctl_offline disable "${UNITS[@]}"
  fi
  for u in "${UNITS[@]}"; do rm -f "$UNITDIR/$u" "$UNITDIR/multi-user.target.wants/$u"; done
  rm -f "$JOURNALD" "$LOGROTATE"
  if [ -L "$BIN" ] && [ "$(readlink "$BIN")" = /opt/edge-gateway/venv/bin/edge ]; then rm -f "$BIN"; fi
  if [ "$PACKAGE" -eq 1 ]; then rm -rf "$OPT/venv"; else rm -rf "$OPT"; fi
  if [ "$PURGE" -eq 1 ]; then
    say "purging configuration, keys and data"
    rm -rf "$ETC" "$UNITDIR/edge-gateway.service.d" "$ROOT/var/lib/edge-gateway" "$ROOT/var/lib/private/edge-gateway" "$LOGDIR"
  else
    log_action uninstall
    echo "    kept ${ETC} and the data in ${ROOT}/var/lib/edge-gateway (use --purge to delete them)"
  fi
  if [ "$LIVE" -eq 1 ]; then
    systemctl daemon-reload
    systemctl try-restart systemd-journald.service || true
  fi
  say "removed"
}

case "$ACTION" in
  install) do_install ;;
  uninstall) do_uninstall ;;
esac
