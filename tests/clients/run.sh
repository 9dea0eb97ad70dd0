#!/usr/bin/env bash
# The client conformance suite (GitHub issue 7): drives the gateway with the official Python
# SDKs. Needs the gateway binary already built (`cargo build`); see tests/clients/conftest.py
# for how it is found. Network: PyPI only, and only when requirements.txt changed.
#
#   tests/clients/run.sh [pytest args...]        e.g. tests/clients/run.sh -k stream -x
#
# The venv lives at ${SWITCHYARD_VENV:-<repo>/.venv} (Python 3.10 or newer); the exit code is
# pytest's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${SWITCHYARD_VENV:-$repo/.venv}"
[[ "$venv" = /* ]] || venv="$PWD/$venv"
requirements="$here/requirements.txt"
stamp="$venv/.switchyard-clients-requirements.sha256"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "tests/clients: creating the venv at $venv" >&2
    python3 -m venv "$venv"
fi
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "tests/clients: installing $requirements" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi

cd "$repo"
exec "$venv/bin/python" -m pytest tests/clients -q "$@"
