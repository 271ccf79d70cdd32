#!/usr/bin/env python3
"""Stage 1: build the training corpus.

Sources (all permissively licensed, available offline):
  * npm packages' own JS/TS sources, fetched with `npm pack NAME@VERSION` (license checked
    from each package.json; only MIT / Apache-2.0 / BSD / ISC are kept),
  * the Python standard library in /usr/lib/python3.11 (PSF license).

Filters: minified / bundled files are removed (.min.js, dist/bundle/umd paths, long lines,
low newline density), exact duplicates removed (sha256 of normalised text), vendored
node_modules removed.  Files are split BY WHOLE FILE into train / valid / tune with a
hash of the path (fixed seed), so the split is reproducible.

Outputs (training/work/corpus/):
  train.jsonl, valid.jsonl, tune.jsonl   one {"path", "lang", "source", "text"} per line,
                                          files of the same package/directory kept adjacent
  stats.json
and NOTICE (every source with its license): training/NOTICE with --v1 (the shipped model's
corpus), training/work/corpus/NOTICE otherwise.

Corpus v2 (the default model v2) adds training-only sources (EXTRA_TRAIN_NPM, EXTRA_TRAIN_PY):
their files all go to the train split, so validation and tuning are v1's files exactly.

Usage:  /usr/bin/python3 training/corpus.py [--skip-npm] [--v1]
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "work")
NPM_DIR = os.path.join(WORK, "npm")
OUT = os.path.join(WORK, "corpus")
SEED = "attention-lens-corpus-v1"

# name, pinned version.  All checked to declare a permissive license (re-checked below).
NPM_PACKAGES = [
    ("lodash", "4.17.21"),
    ("rxjs", "7.8.1"),
    ("express", "4.21.2"),
    ("commander", "12.1.0"),
    ("eslint", "8.57.0"),
    ("webpack", "5.97.1"),
    ("immer", "10.1.1"),
    ("mobx", "6.13.5"),
    ("redux", "5.0.1"),
    ("axios", "1.7.9"),
    ("three", "0.160.0"),
    ("preact", "10.25.4"),
    ("svelte", "4.2.19"),
    ("graphql", "16.10.0"),
    ("moment", "2.30.1"),
    ("fp-ts", "2.16.9"),
    ("ajv", "8.17.1"),
    ("date-fns", "3.6.0"),
]
# Training-only sources (corpus v2, the default model v2): all their files go to the train split, so
# the validation and tuning splits stay exactly those of v1 and the two models compare on them.
EXTRA_TRAIN_NPM = [
    ("effect", "3.10.0"),
    ("@tanstack/query-core", "5.62.0"),
    ("@trpc/server", "10.45.2"),
    ("zod", "3.23.8"),
    ("marked", "15.0.3"),
    ("luxon", "3.5.0"),
    ("undici", "6.21.0"),
    ("fastify", "4.28.1"),
    ("mongoose", "8.8.4"),
    ("knex", "3.1.0"),
    ("sequelize", "6.37.5"),
    ("mathjs", "13.2.3"),
    ("phaser", "3.80.1"),
]
# Python packages from Debian 12 (python3-sympy, python3-numpy), training-only as well.
EXTRA_TRAIN_PY = [
    ("sympy", "/usr/lib/python3/dist-packages/sympy", "BSD-3-Clause", "python3-sympy (Debian 12)"),
    ("numpy", "/usr/lib/python3/dist-packages/numpy", "BSD-3-Clause", "python3-numpy (Debian 12)"),
]
PERMISSIVE = {"MIT", "APACHE-2.0", "BSD-2-CLAUSE", "BSD-3-CLAUSE", "ISC", "0BSD"}
PY_STDLIB = "/usr/lib/python3.11"

EXT_LANG = {".py": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
            ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript",
            ".cts": "typescript"}
BUNDLE_PATH = re.compile(r"(^|/)(dist|bundles?|umd|min|build/(?:umd|esm5?|cjs)|vendor|node_modules|"
                         r"site-packages|dist-packages)(/|$)", re.I)


def sh(cmd, cwd=None):
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def fetch_npm(packages=NPM_PACKAGES):
    os.makedirs(NPM_DIR, exist_ok=True)
    got = []
    for name, ver in packages:
        tgz = [f for f in os.listdir(NPM_DIR) if f.endswith(".tgz") and
               f.startswith(name.replace("@", "").replace("/", "-") + "-" + ver)]
        if not tgz:
            print("npm pack %s@%s" % (name, ver), flush=True)
            try:
                out = sh(["npm", "pack", "--silent", "%s@%s" % (name, ver)], cwd=NPM_DIR)
            except subprocess.CalledProcessError as e:
                print("  failed:", e.stderr[-300:], file=sys.stderr)
                continue
            tgz = [out.strip().splitlines()[-1]]
        got.append((name, ver, os.path.join(NPM_DIR, tgz[0])))
    return got


def looks_minified(text, path):
    if re.search(r"[.-]min\.[cm]?js$|\.bundle\.js$|\.prod\.js$|\.umd\.", path):
        return True
    lines = text.split("\n")
    if not lines:
        return True
    longest = max(len(l) for l in lines)
    if longest > 1000:
        return True
    if len(text) > 2000 and len(text) / max(1, len(lines)) > 120:
        return True
    # many lines > 300 chars
    if sum(1 for l in lines if len(l) > 300) > 5:
        return True
    if "sourceMappingURL=data:" in text:
        return True
    return False


def keep_text(text, path):
    if len(text) < 200 or len(text) > 400_000:
        return False
    if "\x00" in text:
        return False
    return not looks_minified(text, path)


def split_of(path):
    h = int(hashlib.sha256((SEED + path).encode()).hexdigest()[:8], 16) % 100
    if h < 3:
        return "valid"
    if h < 5:
        return "tune"
    return "train"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-npm", action="store_true", help="only the Python stdlib")
    ap.add_argument("--v1", action="store_true", help="the v1 corpus only (no training-only extra sources)")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    files = []  # (source, path, lang, text)
    notices = []
    seen = set()
    stats = {}

    train_only = set()

    def add(source, path, text, force_train=False):
        ext = os.path.splitext(path)[1]
        lang = EXT_LANG.get(ext)
        if lang is None:
            return
        if path.endswith(".d.ts") and len(text) > 100_000:
            return
        if BUNDLE_PATH.search(path.split("/", 1)[-1]):
            return
        text = text.replace("\r\n", "\n")
        if not keep_text(text, path):
            return
        key = hashlib.sha256(re.sub(r"\s+", " ", text).strip().encode()).hexdigest()
        if key in seen:
            return
        seen.add(key)
        files.append((source, path, lang, text))
        if force_train:
            train_only.add(path)
        s = stats.setdefault(source, [0, 0])
        s[0] += 1
        s[1] += len(text.encode())

    def add_npm(packages, force_train=False):
        for name, ver, tgz in fetch_npm(packages):
            with tarfile.open(tgz) as tf:
                members = [m for m in tf.getmembers() if m.isfile()]
                pj = [m for m in members if m.name == "package/package.json"]
                lic = json.load(tf.extractfile(pj[0])).get("license", "") if pj else ""
                if isinstance(lic, dict):
                    lic = lic.get("type", "")
                if lic.upper() not in PERMISSIVE:
                    print("skip %s: license %r" % (name, lic))
                    continue
                for m in sorted(members, key=lambda m: m.name):
                    if os.path.splitext(m.name)[1] not in EXT_LANG:
                        continue
                    raw = tf.extractfile(m).read()
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        continue
                    add("npm:%s@%s" % (name, ver), "%s/%s" % (name, m.name[len("package/"):]), text, force_train)
                notices.append("npm package %s@%s — license: %s — https://www.npmjs.com/package/%s%s"
                               % (name, ver, lic, name, " (training split only)" if force_train else ""))

    if not args.skip_npm:
        add_npm(NPM_PACKAGES)
    n_py = 0
    for root, dirs, fnames in os.walk(PY_STDLIB):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "dist-packages", "__pycache__",
                                                      "lib2to3", "idlelib"))
        for f in sorted(fnames):
            if not f.endswith(".py"):
                continue
            p = os.path.join(root, f)
            try:
                text = open(p, encoding="utf-8").read()
            except (UnicodeDecodeError, OSError):
                continue
            add("python3.11-stdlib", "cpython/" + os.path.relpath(p, PY_STDLIB), text)
            n_py += 1
    notices.append("Python 3.11 standard library (%s, Debian python3.11) — license: "
                   "PSF-2.0 (Python Software Foundation License) — https://docs.python.org/3/license.html"
                   % PY_STDLIB)

    if not args.v1:
        # After every v1 source, so that deduplication keeps v1's files as they were.
        if not args.skip_npm:
            add_npm(EXTRA_TRAIN_NPM, force_train=True)
        for name, folder, lic, origin in EXTRA_TRAIN_PY:
            if not os.path.isdir(folder):
                print("skip %s: %s not found (apt-get install %s)" % (name, folder, origin.split()[0]))
                continue
            for root, dirs, fnames in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for f in sorted(fnames):
                    if not f.endswith(".py"):
                        continue
                    p = os.path.join(root, f)
                    try:
                        text = open(p, encoding="utf-8").read()
                    except (UnicodeDecodeError, OSError):
                        continue
                    add("python:%s" % name, "%s/%s" % (name, os.path.relpath(p, folder)), text, True)
            notices.append("Python package %s from %s (%s) — license: %s (training split only)"
                           % (name, origin, folder, lic))

    # keep files of the same directory adjacent (natural repetition of identifiers)
    files.sort(key=lambda x: x[1])
    counts = {"train": [0, 0], "valid": [0, 0], "tune": [0, 0]}
    outs = {k: open(os.path.join(OUT, k + ".jsonl"), "w") for k in counts}
    for source, path, lang, text in files:
        sp = "train" if path in train_only else split_of(path)
        outs[sp].write(json.dumps({"path": path, "lang": lang, "source": source, "text": text}) + "\n")
        counts[sp][0] += 1
        counts[sp][1] += len(text.encode())
    for f in outs.values():
        f.close()
    langs = {}
    for _, _, lang, text in files:
        langs[lang] = langs.get(lang, 0) + len(text.encode())
    summary = {"sources": {k: {"files": v[0], "bytes": v[1]} for k, v in stats.items()},
               "splits": {k: {"files": v[0], "bytes": v[1]} for k, v in counts.items()},
               "languages_bytes": langs}
    json.dump(summary, open(os.path.join(OUT, "stats.json"), "w"), indent=1)
    # training/NOTICE lists the sources of the shipped model (v1); a v2 corpus writes its own beside it.
    notice_path = os.path.join(HERE, "NOTICE") if args.v1 else os.path.join(OUT, "NOTICE")
    with open(notice_path, "w") as f:
        f.write("Attention Lens default model — training data sources\n"
                "=====================================================\n\n"
                "The default model in default-model/ was trained on source code from the following\n"
                "permissively licensed projects (license as declared by each package). Minified and\n"
                "bundled files were removed and duplicates dropped; see training/corpus.py.\n\n")
        for n in notices:
            f.write("- " + n + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
