#!/usr/bin/env bash
# Builds the CPU engine's container image (llama.cpp through node-llama-cpp) with no base image and no
# network, pushes it to the loopback registry and removes the local copies, so that tests do a real pull.
#
#   scripts/ci/build-cpu-image.sh [--force]
#
# Needs `npm run build` (dist/cpu, dist/openai-server) and `npm run setup:cpu` (engines/cpu/node_modules, installed
# with --omit=optional: linux-x64 CPU binaries only). The image holds the node binary, the system
# libraries that ldd names for node, llama-addon.node and every .so of the prebuilt folder (all
# libggml-cpu-*.so variants: llama.cpp picks one for the CPU at run time), dist/cpu + dist/openai-server (the OpenAI wire it shares with the simulator) and
# engines/cpu. No model: `cs-llm up` mounts the GGUF read-only at /models. Tags:
# 127.0.0.1:5000/cs-llm/cpu:test and :<package version>; a label records a hash of what went in, and when
# the registry already has both tags with that hash nothing is rebuilt (--force rebuilds anyway).
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
dist="$(cd "${CS_LLM_DIST:-$repo_root/dist}" 2>/dev/null && pwd)" || die "no ${CS_LLM_DIST:-$repo_root/dist}: run 'npm run build' first"
# The folders of dist/ the engine's code imports (check-image-imports.mjs below proves it needs no others).
dist_dirs=(cpu openai-server)
for dir in "${dist_dirs[@]}"; do [ -d "$dist/$dir" ] || die "no $dist/$dir: run 'npm run build' first"; done
[ -f "$dist/cpu/main.js" ] || die "no $dist/cpu/main.js: run 'npm run build' first"
node "$here/check-image-imports.mjs" "${dist_dirs[@]/#/$dist/}"
runtime="$repo_root/engines/cpu"
prebuilt="$runtime/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
[ -f "$prebuilt/llama-addon.node" ] || die "no $prebuilt/llama-addon.node: run 'npm run setup:cpu' first"
if compgen -G "$runtime/node_modules/@node-llama-cpp/*cuda*" >/dev/null || compgen -G "$runtime/node_modules/@node-llama-cpp/*vulkan*" >/dev/null; then
  die "$runtime/node_modules has CUDA/Vulkan builds: reinstall with 'npm run setup:cpu' (npm ci --omit=optional)"
fi

image_repo="$REGISTRY_ADDR/cs-llm/cpu"
version="$(node -p "require('$repo_root/package.json').version")"
tags=(test "$version")
node_bin="$(readlink -f "$(command -v node)")"
label_key=cs-llm.cpu.content

content_hash="$(
  {
    (cd "$dist" && find "${dist_dirs[@]}" -type f -name '*.js' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    sha256sum "$runtime/package-lock.json" "$node_bin" "${BASH_SOURCE[0]}" | cut -d' ' -f1
  } | sha256sum | cut -c1-32
)"

registry_label() {
  node --input-type=module - "http://$REGISTRY_ADDR/v2/cs-llm/cpu" "$1" "$label_key" <<'JS' 2>/dev/null || true
const [base, tag, key] = process.argv.slice(2);
const manifest = await fetch(`${base}/manifests/${tag}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' }, signal: AbortSignal.timeout(5000) });
if (!manifest.ok) process.exit(0);
const { config } = await manifest.json();
const blob = await fetch(`${base}/blobs/${config.digest}`, { signal: AbortSignal.timeout(5000) });
if (!blob.ok) process.exit(0);
process.stdout.write((await blob.json()).config?.Labels?.[key] ?? '');
JS
}
registry_current() {
  local tag
  for tag in "${tags[@]}"; do [ "$(registry_label "$tag")" = "$content_hash" ] || return 1; done
}

[ "$(registry_status)" = 200 ] || die "no registry answers on http://$REGISTRY_ADDR/v2/: run scripts/ci/start-registry.sh"
if [ "$force" = no ] && registry_current; then
  log "registry already has $image_repo:{test,$version} with content $content_hash; not rebuilding"
  exit 0
fi
lock_dockerd

rootfs="$(mktemp -d /tmp/cs-llm-cpu-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
# System libraries of node, of the addon and of every shared object beside it (the ggml CPU variants
# are dlopen'ed, so ldd on the addon alone does not name them). Libraries of the prebuilt folder itself
# are resolved there through their RUNPATH, so only absolute system paths are copied here.
libraries="$(for f in "$node_bin" "$prebuilt"/*.node "$prebuilt"/*.so; do ldd "$f"; done)"
if grep -v "$prebuilt" <<<"$libraries" | grep -q 'not found'; then die "ldd cannot resolve every system library:
$libraries"; fi
while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libraries" | grep -v "^$runtime" | sort -u)

mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/models" "$rootfs/app/dist" "$rootfs/app/engines/cpu"
chmod 1777 "$rootfs/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$rootfs/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
(cd "$dist" && find "${dist_dirs[@]}" -name '*.js' -print0 | xargs -0 -I{} install -D -m 0644 {} "$rootfs/app/dist/{}")
cp "$runtime/package.json" "$runtime/package-lock.json" "$rootfs/app/engines/cpu/"
# readlink -f: in a git worktree engines/cpu/node_modules is often a symlink to the main checkout's; copy
# the folder it names, not the link (which would dangle inside the image).
cp -R "$(readlink -f "$runtime/node_modules")" "$rootfs/app/engines/cpu/node_modules"
printf '{"name":"cs-llm-cpu","version":"%s","private":true,"type":"module"}\n' "$version" >"$rootfs/app/package.json"

log "importing $image_repo:test ($(du -sm "$rootfs" | cut -f1) MB, $(grep -c . <<<"$(ls "$rootfs"/lib*/*/ "$rootfs"/lib64/ 2>/dev/null | grep '\.so')") system libraries, content $content_hash)"
tar -C "$rootfs" --owner=0 --group=0 --numeric-owner -c . | docker import \
  -c 'ENTRYPOINT ["/usr/local/bin/node", "/app/dist/cpu/main.js"]' \
  -c 'CMD ["--host", "0.0.0.0", "--port", "8000"]' \
  -c 'EXPOSE 8000' \
  -c 'WORKDIR /app' \
  -c 'ENV HOME=/tmp' \
  -c 'USER 65534:65534' \
  -c "LABEL $label_key=$content_hash org.opencontainers.image.version=$version org.opencontainers.image.title=cs-llm-cpu" \
  -m "cs-llm cpu engine $version ($content_hash)" \
  - "$image_repo:test" >/dev/null

for tag in "${tags[@]}"; do
  [ "$tag" = test ] || docker tag "$image_repo:test" "$image_repo:$tag"
  log "pushing $image_repo:$tag"
  docker push --quiet "$image_repo:$tag" >/dev/null
done
for tag in "${tags[@]}"; do
  docker image rm "$image_repo:$tag" >/dev/null 2>&1 || log "warning: could not remove the local $image_repo:$tag (in use?)"
done
docker image prune --force --filter "label=$label_key" >/dev/null || true

registry_current || die "the registry does not list $image_repo:{test,$version} with content $content_hash after the push"
log "registry has $image_repo:{test,$version} (content $content_hash)"
