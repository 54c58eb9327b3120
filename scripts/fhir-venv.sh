#!/usr/bin/env bash
# Creates (once, and again when scripts/fhir-requirements.txt changes) the venv
# holding the pinned FHIR R4 validator, target/fhir-venv, and prints the path of
# its python. Used by scripts/test.sh, .ci/run and the FHIR integration test
# (tests/api/fhir.rs), which runs scripts/fhir_validate.py with that python.
# Safe to run concurrently: the first caller builds, the others wait.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO_ROOT
readonly VENV_DIR="$REPO_ROOT/target/fhir-venv"
readonly REQUIREMENTS="$REPO_ROOT/scripts/fhir-requirements.txt"

die() {
  printf 'fhir-venv.sh: %s\n' "$*" >&2
  exit 1
}
command -v python3 >/dev/null 2>&1 || die "python3 not found; install it (apt-get install python3 python3-venv)."

mkdir -p -- "$REPO_ROOT/target"
exec 9>"$REPO_ROOT/target/fhir-venv.lock"
flock 9

stamp="$VENV_DIR/.requirements.sha256"
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if ! [[ -x $VENV_DIR/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  printf 'fhir-venv.sh: installing the FHIR validator into %s\n' "$VENV_DIR" >&2
  rm -rf -- "$VENV_DIR"
  python3 -m venv "$VENV_DIR" ||
    die "python3 -m venv failed; install the venv module (apt-get install python3-venv)."
  "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" >&2 ||
    die "pip install -r $REQUIREMENTS failed (see above)."
  printf '%s\n' "$want" >"$stamp"
fi
printf '%s\n' "$VENV_DIR/bin/python"
