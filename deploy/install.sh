#!/usr/bin/env bash
# Installs this daft-edge release as a systemd service:
#   the release under PREFIX-<version>, with PREFIX a symlink to it (an upgrade swaps the link);
#   ETC/daft-edge.env (settings) and ETC/api-token (a new random token, mode 0600), both kept if present;
#   UNIT_DIR/daft-edge.service, with the paths filled in; then systemctl daemon-reload (and enable --now).
set -euo pipefail

HERE="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
VERSION="$(cat "$HERE/VERSION")"
prefix=/opt/daft-edge
etc=/etc/daft-edge
unit_dir=/etc/systemd/system
use_systemctl=yes
enable=no

usage() {
  cat <<USAGE
Usage: install.sh [--prefix /opt/daft-edge] [--etc /etc/daft-edge] [--unit-dir /etc/systemd/system]
                  [--enable] [--no-systemctl]
  --enable         start the service now and at boot (systemctl enable --now daft-edge)
  --no-systemctl   only write files (for an image build, or a test)
USAGE
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --etc) etc="$2"; shift 2 ;;
    --unit-dir) unit_dir="$2"; shift 2 ;;
    --enable) enable=yes; shift ;;
    --no-systemctl) use_systemctl=no; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
prefix="${prefix%/}"
target="$prefix-$VERSION"

echo "installing daft-edge $VERSION into $target"
mkdir -p "$target"
cp -a "$HERE/." "$target/"
chmod -R go-w "$target"
if [[ $(id -u) -eq 0 ]]; then chown -R root:root "$target"; fi
ln -sfn "$target" "$prefix.new"
mv -T "$prefix.new" "$prefix"

mkdir -p "$etc"
if [[ ! -e "$etc/daft-edge.env" ]]; then
  install -m 0644 "$HERE/share/daft-edge.env" "$etc/daft-edge.env"
  echo "wrote $etc/daft-edge.env (edit it for PORT, BACKEND, PEERS...)"
fi
if [[ ! -e "$etc/api-token" ]]; then
  # 40 of the letters and digits in 1 KiB of randomness (about 240 of them there).
  (umask 077 && head -c 1024 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9' | head -c 40 >"$etc/api-token")
  echo "wrote a new API token to $etc/api-token (mode 0600); clients send 'Authorization: Bearer <token>'"
fi

mkdir -p "$unit_dir"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@ETC@|$etc|g" "$HERE/share/systemd/daft-edge.service" \
  >"$unit_dir/daft-edge.service"
echo "wrote $unit_dir/daft-edge.service"

if [[ "$use_systemctl" == yes ]]; then
  systemctl daemon-reload
  if [[ "$enable" == yes ]]; then
    systemctl enable --now daft-edge.service
  else
    echo "next: $prefix/bin/daft-edge doctor, then systemctl enable --now daft-edge"
  fi
fi
