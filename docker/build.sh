#!/usr/bin/env bash
# build.sh: build the pyzk image (and push it, when asked) with whichever of docker,
# podman or nerdctl is installed. The seed's build-command.sh, generalised.
#
#   docker/build.sh [--push] [--wheelhouse] [--engine E] [TAG] [-- ENGINE-BUILD-ARGS...]
#
#   TAG            the image tag (default: the version in pyproject.toml)
#   --push         push IMAGE:TAG after building (IMAGE must name a registry for that)
#   --wheelhouse   first fill docker/wheelhouse/ with the pyzk wheel and its dependencies
#                  for the image's Python and CPU (needs PyPI or a mirror here), so the
#                  build itself needs no index: add `-- --network=none` to prove it
#   --engine E     docker, podman or nerdctl (default: the first one that works)
#   IMAGE          environment: the image name (default pyzk), e.g.
#                  IMAGE=harbor.example.com/project/pyzk docker/build.sh --push 0.1.0
#   PYTHON         environment: the Python that runs pip for --wheelhouse (default python3)
# Arguments after -- go to the engine's build command (e.g. --pull=never).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
image=${IMAGE:-pyzk}
python=${PYTHON:-python3}
# The image's Python (docker/Dockerfile's PYTHON_IMAGE) and CPU, for --wheelhouse.
target_python=3.11
push=no wheelhouse=no engine="" tag=""

while [ $# -gt 0 ]; do
  case $1 in
    --push) push=yes ;;
    --wheelhouse) wheelhouse=yes ;;
    --engine)
      engine=${2:?--engine needs a value}
      shift
      ;;
    --) shift; break ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    *) tag=$1 ;;
  esac
  shift
done

if [ -z "$engine" ]; then
  # docker and nerdctl only count with their daemon up (a docker client alone is common).
  for candidate in docker podman nerdctl; do
    command -v "$candidate" >/dev/null || continue
    if [ "$candidate" = podman ] || "$candidate" info >/dev/null 2>&1; then
      engine=$candidate
      break
    fi
  done
fi
[ -n "$engine" ] || { echo "build.sh: none of docker, podman, nerdctl is installed" >&2; exit 1; }
if [ -z "$tag" ]; then
  tag=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/pyproject.toml" | head -n 1)
fi

if [ "$wheelhouse" = yes ]; then
  dir=$root/docker/wheelhouse
  rm -f "$dir"/*.whl
  case $(uname -m) in
    x86_64 | amd64) platform=manylinux2014_x86_64 ;;
    aarch64 | arm64) platform=manylinux2014_aarch64 ;;
    *) echo "build.sh: no wheel platform known for $(uname -m)" >&2; exit 1 ;;
  esac
  "$python" -m pip wheel --quiet --no-deps --wheel-dir "$dir" "$root"
  "$python" -m pip download --quiet --only-binary=:all: --dest "$dir" \
    --platform "$platform" --python-version "$target_python" --implementation cp \
    "$dir"/pyzk-*.whl
  echo "build.sh: wheelhouse ready: $(cd "$dir" && echo *.whl)" >&2
fi

format=()
# podman's default OCI format has no HEALTHCHECK; the docker format keeps it.
[ "$engine" = podman ] && format=(--format docker)
"$engine" build "${format[@]}" -f "$root/docker/Dockerfile" -t "$image:$tag" "$@" "$root"
echo "build.sh: built $image:$tag with $engine" >&2

if [ "$push" = yes ]; then
  "$engine" push "$image:$tag"
fi
