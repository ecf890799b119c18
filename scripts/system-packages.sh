#!/usr/bin/env bash
# Install the Debian packages listed in scripts/system-packages.txt whose command is missing.
# Needs root and apt-get; without them it says which tests will skip and carries on.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
while read -r package command _; do
    [[ -z "$package" || "$package" == \#* ]] && continue
    command -v "$command" >/dev/null 2>&1 || missing+=("$package")
done < scripts/system-packages.txt
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-packages: not root or no apt-get; tests needing ${missing[*]} will skip" >&2
    exit 0
fi
echo "system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
