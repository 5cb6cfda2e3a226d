#!/usr/bin/env bash
# Installs the Debian packages calitap's tests, demo and benchmarks use (real peers, capture tools,
# traffic generators). Idempotent: installs only what is missing. Needs root; when not root it says
# which packages are missing and exits 0, and the tests that need them skip and say so.
set -euo pipefail
PKGS=(iproute2 iputils-ping tcpdump tshark python3-scapy iperf3 netcat-openbsd bird2 gobgpd frr procps etcd-server etcd-client)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "calitap: not root; missing system packages: ${missing[*]} (tests that need them will skip)" >&2
  exit 0
fi
echo "calitap: installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections || true
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
