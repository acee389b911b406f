#!/usr/bin/env bash
# build-deb.sh — package the gateway as edge-gateway_VERSION_all.deb with dpkg-deb.
#
#   systemd/build-deb.sh [--out DIR] [--compress gzip|xz|none]     (default dist/, xz)
#
# The package carries the source (committed files only), the units and install.sh; its postinst runs
# `install.sh --package`, which builds the venv in /opt/edge-gateway/venv with pip (onnxruntime and OpenCV come
# as wheels for arm64; offline sites: EDGE_PIP_ARGS="--no-index --find-links /media/usb/wheels" apt install ...).
# Architecture "all": the same .deb serves Raspberry Pi OS 64-bit (arm64) and amd64 boxes.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/.." && pwd)"
OUT="$SRC/dist"
COMPRESS=xz
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="${2:?}"; shift 2 ;;
    --compress) COMPRESS="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-deb.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v dpkg-deb >/dev/null || { echo "build-deb.sh: dpkg-deb not found (apt-get install dpkg)" >&2; exit 1; }
VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$SRC/edge/__init__.py")"
[ -n "$VERSION" ] || { echo "build-deb.sh: cannot read __version__ from edge/__init__.py" >&2; exit 1; }

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
PKG="$STAGE/edge-gateway"
OPT="$PKG/opt/edge-gateway"
install -d "$PKG/DEBIAN" "$OPT/src" "$OPT/systemd" "$OPT/docs/examples"

PATHS=(pyproject.toml README.md edge drivers models cloud_bridge simulators)
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$SRC" && git ls-files -z -- "${PATHS[@]}" | xargs -0 cp --parents -t "$OPT/src")
else  # a release tarball: everything but caches
  (cd "$SRC" && for p in "${PATHS[@]}"; do [ -e "$p" ] && cp -r --parents "$p" "$OPT/src"; done)
  find "$OPT/src" \( -name __pycache__ -o -name '*.pyc' -o -name '*.egg-info' \) -prune -exec rm -rf {} +
fi
for f in edge-gateway.service edge-gateway-provision.service journald-edge-gateway.conf logrotate-edge-gateway; do
  install -m 0644 "$HERE/$f" "$OPT/systemd/$f"
done
install -m 0755 "$HERE/install.sh" "$OPT/systemd/install.sh"
[ -f "$SRC/docs/installer-guide.md" ] && install -m 0644 "$SRC/docs/installer-guide.md" "$OPT/docs/installer-guide.md"
[ -f "$SRC/docs/examples/edge.yaml" ] && install -m 0644 "$SRC/docs/examples/edge.yaml" "$OPT/docs/examples/edge.yaml"

SIZE_KB="$(du -sk "$PKG" | cut -f1)"
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: edge-gateway
Version: $VERSION
Architecture: all
Maintainer: Compound edge gateway maintainers <edge-gateway@localhost>
Installed-Size: $SIZE_KB
Depends: python3 (>= 3.11), python3-venv, systemd, logrotate
Section: misc
Priority: optional
Description: edge gateway for smart-security residential compounds
 Access control, waste-bin sensors and cameras on a Raspberry Pi-class box, with an MQTT 5 uplink to the
 county platform. Runs as a hardened systemd service with a health-driven watchdog; "edge provision"
 creates the device identity and "edge doctor" checks a site.
CONTROL
cat > "$PKG/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  /opt/edge-gateway/systemd/install.sh --package --source /opt/edge-gateway/src ${EDGE_PIP_ARGS:+--pip-args "$EDGE_PIP_ARGS"}
fi
SCRIPT
cat > "$PKG/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = remove ]; then
  /opt/edge-gateway/systemd/install.sh --package --uninstall
fi
SCRIPT
cat > "$PKG/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  rm -rf /etc/edge-gateway /etc/systemd/system/edge-gateway.service.d /var/lib/edge-gateway \
         /var/lib/private/edge-gateway /var/log/edge-gateway
fi
SCRIPT
chmod 0755 "$PKG/DEBIAN/postinst" "$PKG/DEBIAN/prerm" "$PKG/DEBIAN/postrm"
mkdir -p "$OUT"
DEB="$OUT/edge-gateway_${VERSION}_all.deb"
dpkg-deb --root-owner-group -Z"$COMPRESS" --build "$PKG" "$DEB" >/dev/null
echo "$DEB"
