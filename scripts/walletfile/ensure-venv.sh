#!/usr/bin/env bash
# Creates (once) a Python venv with argon2-cffi and cryptography for the independent
# wallet-file implementation (walletfile.py), and prints the venv's python path.
# Idempotent and fast when the venv is already complete: only the import check runs.
set -euo pipefail
venv="${XDG_CACHE_HOME:-$HOME/.cache}/kdfd-pyvenv"
py="$venv/bin/python"
check() { "$py" -c 'import argon2.low_level, cryptography.hazmat.primitives.ciphers' 2>/dev/null; }
if [ -x "$py" ] && check; then
    echo "$py"
    exit 0
fi
mkdir -p "$(dirname "$venv")"
# A half-made venv (interrupted earlier) is rebuilt from scratch.
rm -rf "$venv"
python3 -m venv "$venv" >&2
"$py" -m pip install --quiet 'argon2-cffi>=21' 'cryptography>=41' >&2
check || { echo "ensure-venv: argon2-cffi/cryptography did not import" >&2; exit 1; }
echo "$py"
