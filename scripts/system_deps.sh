#!/usr/bin/env bash
# Install the Debian packages ARIA needs when they are missing:
#   python3-venv, python3-dev -> the virtualenv, and headers for packages built from source
#   build-essential, cmake  -> build llama-cpp-python from source
#   libgmp-dev              -> py-libp2p's fastecdsa builds against GMP
#   iproute2, iptables      -> the NAT lab tests (network namespaces)
#   chromium-headless-shell -> the dashboard's browser tests (Playwright drives it)
#   npm (only if missing)   -> the test set-up fetches axe-core (accessibility scan)
# Silent and quick when everything is present; needs root (or sudo) otherwise.
set -euo pipefail

needed=(python3-venv python3-dev build-essential cmake libgmp-dev iproute2 iptables chromium-headless-shell)
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${missing[*]} (install them with your package manager)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
