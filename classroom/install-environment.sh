#!/usr/bin/env bash
# Install the learners' environment into an existing Python 3.11 environment (a venv or a conda prefix):
#
#     sudo bash classroom/install-environment.sh /opt/course-env
#
# 1. torch alone, as requirements.lock pins it: the CPU build (torch==<version>+cpu on Linux), from PyTorch's CPU
#    index (on PyPI, torch for Linux is the multi-GB CUDA build; a +cpu version cannot resolve to it).
#    TORCH_INDEX="" uses only pip's configured indexes (a machine with a local CPU wheel).
# 2. requirements.lock + the class extras (classroom/requirements.txt); torch is already satisfied.
# 3. course_lib from this checkout, editable, so that data/ stays beside it (run from a checkout that stays,
#    e.g. /srv/course, the handout or the repository at the commit you teach).
# 4. the learner settings into PREFIX/etc/jupyter: kernel culling (merged into jupyter_server_config.json) and
#    nbgrader's exchange (nbgrader_config.py); nbgrader's instructor tools hidden from learners.
set -euo pipefail
PREFIX=${1:?usage: install-environment.sh PREFIX (an existing Python 3.11 venv or conda environment)}
PREFIX=$(cd "$PREFIX" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECKOUT=$(dirname "$HERE")
PYTHON="$PREFIX/bin/python"
TORCH_INDEX=${TORCH_INDEX-https://download.pytorch.org/whl/cpu}

"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, {sys.version.split()[0]} found"'
TORCH_PINS=$(mktemp)
trap 'rm -f "$TORCH_PINS"' EXIT
grep '^torch==' "$CHECKOUT/requirements.lock" > "$TORCH_PINS" || { echo "no torch== pin in requirements.lock" >&2; exit 1; }

echo "== torch (CPU build): $(tr '\n' ' ' < "$TORCH_PINS")"
"$PYTHON" -m pip install --no-deps ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} -r "$TORCH_PINS"

echo "== requirements.lock + classroom/requirements.txt"
"$PYTHON" -m pip install -r "$HERE/requirements.txt"

echo "== course_lib (editable, from $CHECKOUT)"
"$PYTHON" -m pip install --no-deps --no-build-isolation -e "$CHECKOUT"

echo "== learner settings in $PREFIX/etc/jupyter"
# (jupyter_server_config.json itself: Jupyter Server reads the *.d/ folders only to enable extensions.)
"$PYTHON" - "$HERE/jupyter_server_config.json" "$PREFIX/etc/jupyter/jupyter_server_config.json" <<'MERGE'
import json, os, sys
ours, target = sys.argv[1], sys.argv[2]
settings = json.load(open(target)) if os.path.exists(target) else {}
for section, values in json.load(open(ours)).items():
    settings.setdefault(section, {}).update(values)
os.makedirs(os.path.dirname(target), exist_ok=True)
with open(target, "w") as handle:
    json.dump(settings, handle, indent=2)
MERGE
install -m 644 "$HERE/nbgrader_config.py" "$PREFIX/etc/jupyter/nbgrader_config.py"
# Learners submit (Assignments tab); creating and grading assignments is the instructor's, from the repository.
"$PREFIX/bin/jupyter" server extension disable --sys-prefix nbgrader.server_extensions.formgrader
"$PREFIX/bin/jupyter" server extension disable --sys-prefix nbgrader.server_extensions.course_list
for plugin in formgrader course-list create-assignment; do
    "$PREFIX/bin/jupyter" labextension disable --level=sys_prefix "@jupyter/nbgrader:$plugin"
done
"$PYTHON" -c "import torch, course_lib; assert '+cpu' in torch.__version__ or not torch.cuda.is_available(); print('torch', torch.__version__, '| course_lib from', course_lib.__file__)"
