#!/usr/bin/env bash
# Students' JupyterLab: nbgrader's instructor parts (formgrader, Create Assignment toolbar,
# course list) switched off, its student parts (assignment list, Validate button) left on.
# Run it with the environment's python and jupyter first on PATH. LEVEL=sys_prefix (default:
# the environment, as in the container image) or LEVEL=user (this user's JUPYTER_CONFIG_DIR).
# Undo: `jupyter labextension enable` the same plugins and set the two entries below to true.
set -euo pipefail
LEVEL="${LEVEL:-sys_prefix}"
plugins=(@jupyter/nbgrader:formgrader @jupyter/nbgrader:create-assignment @jupyter/nbgrader:course-list)
jupyter labextension disable --level="$LEVEL" "${plugins[@]}"
jupyter labextension lock --level="$LEVEL" "${plugins[@]}"  # no re-enabling from the UI
# The server side: `jupyter server extension disable` refuses nbgrader's extensions here (its
# validation cannot import them), so the setting goes into the level's jupyter_server_config.json,
# which jupyter_server reads after the config.d files that switched them on.
python - "$LEVEL" <<'PY'
import json, os, sys
from jupyter_core.paths import jupyter_config_dir
folder = os.path.join(sys.prefix, "etc", "jupyter") if sys.argv[1] == "sys_prefix" else jupyter_config_dir()
path = os.path.join(folder, "jupyter_server_config.json")
config = json.load(open(path)) if os.path.exists(path) else {}
extensions = config.setdefault("ServerApp", {}).setdefault("jpserver_extensions", {})
extensions.update({f"nbgrader.server_extensions.{name}": False for name in ("formgrader", "course_list")})
os.makedirs(folder, exist_ok=True)
with open(path, "w") as f:
    json.dump(config, f, indent=2)
print(f"wrote {path}")
PY
