#!/bin/sh
# Install the Debian packages named as arguments that are not installed yet.
# Runs apt-get update once before the first install (a fresh machine needs it).
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "knobs: installing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "knobs: not root; run as root: apt-get update && apt-get install -y$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q || exit 1
apt-get install -y -q --no-install-recommends $missing || exit 1
