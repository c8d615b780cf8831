#!/usr/bin/env bash
# Brings a machine to what opsledger needs, doing only what is missing: ansible-playbook (from
# Debian), the npm dependencies (npm ci when package-lock.json changed) and the compiled build.
# The Temporal CLI is found or built by opsledger itself when something starts it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ansible-playbook >/dev/null || need_apt+=(ansible)
if [ "${OPSLEDGER_BROWSER_TESTS:-1}" = 1 ] && ! command -v chromium >/dev/null; then need_apt+=(chromium); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need_apt[*]} from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install ${need_apt[*]} (Debian: sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
else
  npm run --silent build
fi
