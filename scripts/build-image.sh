#!/usr/bin/env bash
# Builds the kinetick container image from the Dockerfile without a Docker engine or registry
# access, then smoke-tests it. buildah runs with chroot isolation on vfs storage; the base images
# the Dockerfile takes as build arguments are made here: a Debian bookworm minbase root file
# system (debootstrap) for the runtime, and the same plus a C compiler, make and this machine's
# Rust toolchain for the builder. Bases are made once and reused.
#
# Smoke test (buildah run, chroot isolation): `kinetick --version` in the image, then `kinetick produce` and `kinetick run` in the
# image against the AWS emulator on loopback (scripts/local-aws.sh), which must land ticks in the
# table and Parquet files in the bucket, and stop with exit 0 on SIGTERM.
#
# Needs root, buildah and debootstrap (Debian packages). IMAGE names the result (kinetick:latest).
# BUILDER_IMAGE and RUNTIME_IMAGE, when set, name the bases instead (then pulled from their
# registry, and not made here): by tag, or pinned by digest as name[:tag]@sha256:<64 hex digits>.
# Both must be Debian based; the builder needs cargo, a C compiler and make, as the official
# rust images have. `--smoke-test-only` tests the image already built.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/kinetick:latest}
RUNTIME_BASE=localhost/kinetick-runtime-base:bookworm
# The builder's tag names what it has beyond minbase, so a base made before a package was added
# is not reused.
BUILDER_BASE=localhost/kinetick-builder-base:bookworm-gcc-make
runtime_image=${RUNTIME_IMAGE:-$RUNTIME_BASE}
builder_image=${BUILDER_IMAGE:-$BUILDER_BASE}
for image in "$runtime_image" "$builder_image"; do
  if [[ $image == *@* && ! $image =~ ^[^@]+@sha256:[0-9a-f]{64}$ ]]; then
    echo "build-image: $image: a pinned image is name[:tag]@sha256:<64 hex digits>" >&2
    exit 1
  fi
done
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
buildah=(buildah --storage-driver vfs)

# base_image NAME PACKAGES [TOOLCHAIN]: a bookworm minbase with PACKAGES (and a Rust toolchain
# under /usr/local/rust), committed as NAME unless it exists.
base_image() {
  local name=$1 packages=$2 toolchain=${3:-}
  if "${buildah[@]}" inspect --type image "$name" > /dev/null 2>&1; then
    echo "Base $name: cached."
    return
  fi
  echo "Base $name: debootstrap bookworm ($packages) ..."
  local work
  work=$(mktemp -d)
  debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs" "$MIRROR" > "$work/debootstrap.log" \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  local container
  container=$("${buildah[@]}" from scratch)
  "${buildah[@]}" add "$container" "$work/rootfs.tar" /
  if [ -n "$toolchain" ]; then
    # The compiler and standard library only (no docs, no sources).
    tar -C "$toolchain" -cf "$work/rust.tar" bin lib
    "${buildah[@]}" add "$container" "$work/rust.tar" /usr/local/rust
    "${buildah[@]}" config --env PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env CARGO_HOME=/usr/local/cargo "$container"
  fi
  "${buildah[@]}" commit --quiet "$container" "$name" > /dev/null
  "${buildah[@]}" rm "$container" > /dev/null
  rm -rf "$work"
}

started=$(date +%s)
trap 'echo "Image build or smoke test failed after $(( $(date +%s) - started )) s." >&2' ERR
if [ "${1:-}" != --smoke-test-only ]; then
if [ "$runtime_image" = "$RUNTIME_BASE" ]; then
  base_image "$RUNTIME_BASE" ca-certificates
fi
if [ "$builder_image" = "$BUILDER_BASE" ]; then
  # make: jemalloc (the binary's allocator) is built from source with configure and make.
  base_image "$BUILDER_BASE" ca-certificates,gcc,libc6-dev,make "$(rustc --print sysroot)"
fi

echo "Building $IMAGE ..."
# Crates are vendored here and the build inside is offline: it needs no registry access or trust
# store of its own. The build directory persists between builds, like a CI cache.
mkdir -p target/image/cargo target/image/build
# Vendored again only when the lock file changes: fresh files would rebuild every crate.
if ! cmp -s Cargo.lock target/image/vendor.lock; then
  rm -rf target/image/vendor
  cargo vendor --locked --quiet target/image/vendor > /dev/null
  cp Cargo.lock target/image/vendor.lock
fi
cat > target/image/cargo/config.toml <<'TOML'
[source.crates-io]
replace-with = "vendored"

[source.vendored]
directory = "/vendor"

[net]
offline = true
TOML
"${buildah[@]}" build --isolation chroot --layers=false --format docker \
  --build-arg BUILDER_IMAGE="$builder_image" \
  --build-arg RUNTIME_IMAGE="$runtime_image" \
  --volume "$PWD/target/image/cargo:/src/.cargo:ro" \
  --volume "$PWD/target/image/vendor:/vendor:ro" \
  --volume "$PWD/target/image/build:/src/target" \
  --tag "$IMAGE" .
echo "Built $IMAGE in $(( $(date +%s) - started )) s."
fi

echo "Smoke test: --version"
container=$("${buildah[@]}" from "$IMAGE")
emulator_pid=
cleanup() {
  "${buildah[@]}" rm "$container" > /dev/null 2>&1 || true
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2> /dev/null || true
}
trap cleanup EXIT
"${buildah[@]}" run --isolation chroot "$container" -- /usr/local/bin/kinetick --version

echo "Smoke test: produce and run against the AWS emulator"
source scripts/moto.sh
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PORT=$port SHARDS=2 scripts/local-aws.sh > /dev/null
emulator_pid=$(cat target/local-aws.pid)
aws_env=(--env "AWS_ENDPOINT_URL=http://127.0.0.1:$port" --env AWS_REGION=us-east-1
  --env AWS_ACCESS_KEY_ID=ANOTREAL --env AWS_SECRET_ACCESS_KEY=notreal --env AWS_EC2_METADATA_DISABLED=true
  --env KINETICK_AWS__BUCKET=kinetick-lake --env KINETICK_AWS__S3_FORCE_PATH_STYLE=true
  --env KINETICK_CHECKPOINT__INTERVAL=2s --env KINETICK_HEALTH__LISTEN=127.0.0.1:0)
"${buildah[@]}" run --isolation chroot "${aws_env[@]}" "$container" -- \
  /usr/local/bin/kinetick produce --stream kinetick-ticks --count 500 --rate 0 --no-progress
# SIGTERM after 20 s: the graceful stop must flush, checkpoint and exit 0.
"${buildah[@]}" run --isolation chroot "${aws_env[@]}" "$container" -- \
  timeout --preserve-status -s TERM 20 /usr/local/bin/kinetick run > target/image/smoke-run.log
"$venv/bin/python" - "$port" <<'PY'
import sys
import boto3

session = boto3.session.Session(aws_access_key_id="ANOTREAL", aws_secret_access_key="notreal", region_name="us-east-1")
endpoint = f"http://127.0.0.1:{sys.argv[1]}"
items = session.client("dynamodb", endpoint_url=endpoint).scan(TableName="kinetick-ticks", Select="COUNT")["Count"]
objects = session.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="kinetick-lake", Prefix="ticks/").get("KeyCount", 0)
print(f"ticks table: {items} items; lake: {objects} Parquet objects")
if items != 500 or objects == 0:
    sys.exit("smoke test failed: the image's kinetick run did not write the produced ticks")
PY
echo "Image $IMAGE built and smoke-tested in $(( $(date +%s) - started )) s."
