import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { DefinitionExtractor, type SourceDefinition } from '../../src/analysis/definitions';

const wasmDir = join(__dirname, '..', '..', '..', 'node_modules', '@vscode', 'tree-sitter-wasm', 'wasm');
let extractor: DefinitionExtractor;

before(async () => {
  extractor = await DefinitionExtractor.create((name) => readFile(join(wasmDir, name)));
});

function summary(defs: readonly SourceDefinition[]): string[] {
  return defs.map((d) => `${d.kind} ${d.name}`);
}

function spanText(text: string, d: SourceDefinition): string {
  return text.slice(d.start, d.end);
}

test('TypeScript: imports, functions, classes, methods, interfaces, types, enums, file-level variables', async () => {
  const text = [
    "import { readFile, writeFile as write } from 'node:fs/promises';",
    "import * as path from 'node:path';",
    'export interface Options { depth: number }',
    'type Id = string;',
    'enum Color { Red, Green }',
    'export const LIMIT = 10;',
    'const double = (x: number) => { return x * 2; };',
    'export async function load(file: string): Promise<string> {',
    '  const local = 1;',
    '  return readFile(file, "utf8");',
    '}',
    'class Cache {',
    '  get(key: Id) { return key; }',
    '}',
  ].join('\n');
  const defs = await extractor.extract('typescript', text);
  assert.deepEqual(summary(defs), [
    'import readFile, writeFile, write',
    'import path',
    'interface Options',
    'type Id',
    'enum Color',
    'variable LIMIT',
    'function double',
    'function load',
    'class Cache',
    'method get',
  ]);
  const load = defs.find((d) => d.name === 'load')!;
  assert.equal(spanText(text, load), 'async function load(file: string): Promise<string>', 'the summed span is the header, without the body');
  assert.ok(!defs.some((d) => d.name === 'local'), 'variables inside functions are not file-level definitions');
});

test('Python: imports, functions, classes with methods, module constants', async () => {
  const text = ['import os', 'from collections import OrderedDict as OD', 'MAX = 3', '', 'class Walker:', '    def step(self):', '        x = 1', '        return x', '', 'def main():', '    pass', ''].join('\n');
  assert.deepEqual(summary(await extractor.extract('python', text)), ['import os', 'import collections, OrderedDict, OD', 'variable MAX', 'class Walker', 'method step', 'function main']);
});

test('Python: comments between a header and its body are not part of the header; decorated defs in a class are methods', async () => {
  const text = ['class Walker:', '    # the walker\'s state', '    def step(self, x):', '        # first the step', '        return x', '', '    @property', '    # a comment after the decorator', '    def size(self):', '        return 1', ''].join('\n');
  const defs = await extractor.extract('python', text);
  assert.deepEqual(summary(defs), ['class Walker', 'method step', 'method size']);
  assert.deepEqual(defs.map((d) => spanText(text, d)), ['class Walker:', 'def step(self, x):', 'def size(self):'], 'the highlighted headers hold no comment lines');
});

test('Go, Rust, Java, C++ and C# each find their imports and definitions', async () => {
  const cases: Array<[string, string, string[]]> = [
    ['go', 'package main\nimport "fmt"\ntype Point struct{ X int }\nconst Max = 3\nfunc (p Point) Len() int { return p.X }\nfunc main() { fmt.Println(Max) }\n', ['import fmt', 'type Point', 'variable Max', 'method Len', 'function main']],
    ['rust', 'use std::collections::HashMap;\nstruct Point { x: i32 }\ntrait Shape { fn area(&self) -> f64; }\nconst MAX: i32 = 3;\nfn main() { let m: HashMap<i32, i32> = HashMap::new(); }\n', ['import std, collections, HashMap', 'class Point', 'interface Shape', 'variable MAX', 'function main']],
    ['java', 'import java.util.List;\npublic class App {\n  private int count = 0;\n  public App() {}\n  void run(List<String> xs) { }\n}\n', ['import java, util, List', 'class App', 'variable count', 'method App', 'method run']],
    ['cpp', '#include <vector>\nnamespace geo {\nstruct Point { int x; };\nint area(int w, int h) { return w * h; }\n}\n', ['import vector', 'module geo', 'class Point', 'function area']],
    ['csharp', 'using System.Text;\nnamespace Demo {\n  class Greeter {\n    private string name;\n    public string Greet() { return name; }\n  }\n}\n', ['import System, Text', 'module Demo', 'class Greeter', 'variable name', 'method Greet']],
  ];
  for (const [language, text, expected] of cases) {
    assert.deepEqual(summary(await extractor.extract(language, text)), expected, language);
  }
});

test('JavaScript and TSX parse with the TSX grammar', async () => {
  const text = "import React from 'react';\nexport function App() { return <div>{React.version}</div>; }\n";
  assert.deepEqual(summary(await extractor.extract('javascriptreact', text)), ['import React', 'function App']);
  assert.deepEqual(summary(await extractor.extract('typescriptreact', text)), ['import React', 'function App']);
});

test('offsets are UTF-16 code units, also after emoji and CRLF line ends', async () => {
  const text = "// 😀 émoji\r\nimport { a } from 'x';\r\nfunction f() {}\r\n";
  const defs = await extractor.extract('typescript', text);
  assert.deepEqual(defs.map((d) => spanText(text, d)), ["import { a } from 'x';", 'function f()']);
});

test('languages without a grammar yield no definitions, and broken code still yields what parses', async () => {
  assert.deepEqual(await extractor.extract('plaintext', 'import x'), []);
  const defs = await extractor.extract('typescript', "import { a } from 'a';\nfunction broken( {\nfunction ok() {}\n");
  assert.ok(defs.some((d) => d.kind === 'import'));
});
