#!/usr/bin/env bash
# Builds the simulator's container image with no base image and no network, pushes it to the loopback
# registry and removes the local copies, so that tests do a real pull.
#
#   scripts/ci/build-sim-image.sh [--force]
#
# The image holds only the node binary, the libraries ldd names for it (with the dynamic loader), a few
# files in /etc, a 1777 /tmp, dist/sim/ and dist/openai-server/ (the OpenAI wire and access code it shares
# with the CPU engine; run `npm run build` first). Tags: 127.0.0.1:5000/cs-llm/sim:test and :<package
# version>. A label records a hash of what went in (those folders, node, this script); when the registry
# already has both tags with that hash, nothing is rebuilt. --force rebuilds anyway.
# CS_LLM_SIM_DIST overrides the folder the simulator is taken from (default: dist/sim); openai-server is
# taken from beside it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

force=no
case "${1:-}" in
  '') ;;
  --force) force=yes ;;
  *) die "usage: $0 [--force]" ;;
esac

repo_root="$(cd "$here/../.." && pwd)"
sim_dir="$(cd "${CS_LLM_SIM_DIST:-$repo_root/dist/sim}" 2>/dev/null && pwd)" \
  || die "no ${CS_LLM_SIM_DIST:-$repo_root/dist/sim}: run 'npm run build' first"
[ -f "$sim_dir/main.js" ] || die "no $sim_dir/main.js: run 'npm run build' first"
shared_dir="$(dirname "$sim_dir")/openai-server"
[ -d "$shared_dir" ] || die "no $shared_dir: run 'npm run build' first"
node "$here/check-image-imports.mjs" "$sim_dir" "$shared_dir"

image_repo="$REGISTRY_ADDR/cs-llm/sim"
version="$(node -p "require('$repo_root/package.json').version")"
tags=(test "$version")
tag_list="$image_repo:{$(IFS=,; echo "${tags[*]}")}"
node_bin="$(readlink -f "$(command -v node)")"
label_key=cs-llm.sim.content

# What goes into the image, as one hash: the simulator's and the shared files (names and contents), node, this script.
content_hash="$(
  {
    (cd "$sim_dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    (cd "$shared_dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    sha256sum "$node_bin" | cut -d' ' -f1
    sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
  } | sha256sum | cut -c1-32
)"

# registry_label TAG: prints the content label of TAG as stored in the registry (empty when absent).
registry_label() {
  # --input-type=module for the top-level await (Node 20.18 does not detect ES module syntax by itself).
  node --input-type=module - "http://$REGISTRY_ADDR/v2/cs-llm/sim" "$1" "$label_key" <<'JS' 2>/dev/null || true
const [base, tag, key] = process.argv.slice(2);
const manifest = await fetch(`${base}/manifests/${tag}`, {
  headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  signal: AbortSignal.timeout(5000),
});
if (!manifest.ok) process.exit(0);
const { config } = await manifest.json();
const blob = await fetch(`${base}/blobs/${config.digest}`, { signal: AbortSignal.timeout(5000) });
if (!blob.ok) process.exit(0);
const { config: imageConfig } = await blob.json();
process.stdout.write(imageConfig?.Labels?.[key] ?? '');
JS
}

registry_current() {
  local tag
  for tag in "${tags[@]}"; do
    [ "$(registry_label "$tag")" = "$content_hash" ] || return 1
  done
}

[ "$(registry_status)" = 200 ] || die "no registry answers on http://$REGISTRY_ADDR/v2/: run scripts/ci/start-registry.sh"

if [ "$force" = no ] && registry_current; then
  log "registry already has $tag_list with content $content_hash; not rebuilding"
  exit 0
fi

# Hold the dockerd lock while importing and pushing, so that another process's restart-docker.sh (a test
# switching the nvidia hook) waits instead of cutting the push off with "unexpected EOF".
lock_dockerd

rootfs="$(mktemp -d /tmp/cs-llm-sim-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

# node and every library it links, at the same paths, so its built-in interpreter path resolves.
install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
libraries="$(ldd "$node_bin")"
if grep -q 'not found' <<<"$libraries"; then die "ldd cannot resolve every library of $node_bin:
$libraries"; fi
while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libraries")

mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/app/dist"
chmod 1777 "$rootfs/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$rootfs/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
cp -R "$sim_dir" "$rootfs/app/dist/sim"
cp -R "$shared_dir" "$rootfs/app/dist/openai-server"
# Makes node treat /app/dist/sim/*.js as ES modules, as the repository's package.json does.
printf '{"name":"cs-llm-sim","version":"%s","private":true,"type":"module"}\n' "$version" >"$rootfs/app/package.json"

log "importing $image_repo:test ($(du -sm "$rootfs" | cut -f1) MB, content $content_hash)"
tar -C "$rootfs" --owner=0 --group=0 --numeric-owner -c . | docker import \
  -c 'ENTRYPOINT ["/usr/local/bin/node", "/app/dist/sim/main.js"]' \
  -c 'CMD ["--host", "0.0.0.0", "--port", "8000"]' \
  -c 'EXPOSE 8000' \
  -c 'WORKDIR /app' \
  -c 'USER 65534:65534' \
  -c "LABEL $label_key=$content_hash org.opencontainers.image.version=$version org.opencontainers.image.title=cs-llm-sim" \
  -m "cs-llm simulator $version ($content_hash)" \
  - "$image_repo:test" >/dev/null

for tag in "${tags[@]}"; do
  [ "$tag" = test ] || docker tag "$image_repo:test" "$image_repo:$tag"
  log "pushing $image_repo:$tag"
  docker push --quiet "$image_repo:$tag" >/dev/null
done

# Tests must pull for real; a container still using the image keeps it, which only costs that.
for tag in "${tags[@]}"; do
  docker image rm "$image_repo:$tag" >/dev/null 2>&1 || log "warning: could not remove the local $image_repo:$tag (in use?)"
done

# Earlier builds of the simulator that lost their tags; only dangling images with our label.
docker image prune --force --filter "label=$label_key" >/dev/null || true

registry_current || die "the registry does not list $tag_list with content $content_hash after the push"
log "registry has $tag_list (content $content_hash)"
