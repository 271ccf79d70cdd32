#!/usr/bin/env bash
# Packs what bench/gpu/validate.sh needs on a GPU machine that has no internet and no Node.js into
# .carry/ (ignored by git through .git/info/exclude; the device tool carries it, 64 MiB at most for
# the whole working tree): this machine's Node.js, Dawn (the npm `webgpu` package, linux-x64 only),
# the built bundles the validation runs (out/bench, out/test/gpu, out/cli.js, tree-sitter grammars)
# and the default model's tokenized training data (training/work/data, made by training/corpus.py
# and training/tokenizer.py --skip-train with default-model/tokenizer.json).
# Also downloads the Vulkan loader (libvulkan1) into .gl/ as the device tool's README says.
# Usage: bash bench/gpu/prepare.sh    (then: device run with carry [".gl", ".carry"])
set -euo pipefail
cd "$(dirname "$0")/../.."
for pattern in /.gl/ /.carry/; do grep -qxF "$pattern" .git/info/exclude 2>/dev/null || echo "$pattern" >> .git/info/exclude; done
rm -rf .carry && mkdir -p .carry
node esbuild.js
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null && (cd .gl && apt-get $o download libvulkan1 >/dev/null)
fi
xz -T2 -9 -c "$(command -v node)" > .carry/node.xz
tar -cJf .carry/webgpu.tar.xz node_modules/webgpu/package.json node_modules/webgpu/index.js node_modules/webgpu/LICENSE.md node_modules/webgpu/dist/linux-x64
tar -cJf .carry/out.tar.xz out/bench/*.js out/test/gpu/*.js out/cli.js out/tree-sitter
data=training/work/data
for split in train valid tune; do
  [ -f "$data/$split.bin" ] || { echo "missing $data/$split.bin: run training/corpus.py and training/tokenizer.py --skip-train first (training/README.md)" >&2; exit 1; }
done
xz -T2 -9 -c "$data/train.bin" > .carry/train.bin.xz
cp "$data/valid.bin" "$data/tune.bin" .carry/
du -ch .carry/* .gl/* | tail -1
echo "travelling in all (tracked + untracked + carried): $(( ( $(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1) + $(du -cb .carry .gl | tail -1 | cut -f1) ) / 1048576 )) MiB of 64"
