import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { DefinitionExtractor } from '../../src/analysis/definitions';

const wasmDir = join(__dirname, '..', '..', '..', 'node_modules', '@vscode', 'tree-sitter-wasm', 'wasm');
let extractor: DefinitionExtractor;

before(async () => {
  extractor = await DefinitionExtractor.create((name) => readFile(join(wasmDir, name)));
});

/** "line:name -> kind target (resolution)" for every resolved use, in order. */
async function edges(languageId: string, lines: string[]): Promise<string[]> {
  const text = lines.join('\n');
  const { definitions, references } = await extractor.extractWithReferences(languageId, text);
  const lineOf = (offset: number) => text.slice(0, offset).split('\n').length;
  return references.map((r) => {
    const target = definitions[r.targets[0]];
    const inside = r.enclosing >= 0 ? ` in ${definitions[r.enclosing].name}` : '';
    return `${lineOf(r.start)}:${r.name} -> ${target.kind} ${target.names.includes(r.name) ? r.name : target.name}${r.resolution === 'byName' ? ' (by name)' : ''}${inside}`;
  });
}

test('TypeScript: imports, shadowing by parameters and locals, methods by name', async () => {
  const found = await edges('typescript', [
    "import { Money, add } from './money';", // 1
    "import * as path from 'node:path';", // 2
    'const LIMIT = 10;', // 3
    'export function total(items: Money[]): Money {', // 4
    '  let sum = add(items[0], items[1]);', // 5
    '  return path.join(sum, LIMIT);', // 6
    '}', // 7
    'function shadow(LIMIT: number, add: string) {', // 8
    '  const Money = 3;', // 9
    '  return LIMIT + add + Money + total([]);', // 10
    '}', // 11
    'class Cart {', // 12
    '  size(): number { return LIMIT; }', // 13
    '  twice() { return this.size() * 2; }', // 14
    '}', // 15
    'const { LIMIT: renamed } = { LIMIT };', // 16
  ]);
  assert.deepEqual(found, [
    '4:Money -> import Money in total',
    '4:Money -> import Money in total',
    '5:add -> import add in total',
    '6:path -> import path in total',
    '6:LIMIT -> variable LIMIT in total',
    '10:total -> function total in shadow',
    '13:LIMIT -> variable LIMIT in size',
    '14:size -> method size (by name) in twice',
    '16:LIMIT -> variable LIMIT',
  ]);
});

test('JavaScript: arrow parameters, destructuring and catch variables shadow', async () => {
  const found = await edges('javascript', [
    "const fs = require('fs');", // 1
    'function read(file) { return fs.readFileSync(file); }', // 2
    'const use = (read) => read + 1;', // 3
    'function other({ fs }) { try { return read(fs); } catch (read) { return read; } }', // 4
  ]);
  assert.deepEqual(found, ['2:fs -> variable fs in read', '4:read -> function read in other']);
});

test('Python: imports with aliases, parameters and local assignments shadow, self.method by name', async () => {
  const found = await edges('python', [
    'import os', // 1
    'from collections import OrderedDict as OD', // 2
    'LIMIT = 3', // 3
    'def build(items):', // 4
    '    table = OD()', // 5
    '    return os.path.join(table, LIMIT)', // 6
    'def shadow(os):', // 7
    '    LIMIT = 4', // 8
    '    return os, LIMIT, build([])', // 9
    'class Walker:', // 10
    '    def step(self):', // 11
    '        return self.step() + LIMIT', // 12
    '    def run(self):', // 13
    '        for LIMIT in range(3):', // 14
    '            pass', // 15
    '        return [os for os in ()]', // 16
  ]);
  assert.deepEqual(found, [
    '5:OD -> import OD in build',
    '6:os -> import os in build',
    '6:LIMIT -> variable LIMIT in build',
    '9:build -> function build in shadow',
    '12:step -> method step (by name) in step',
    '12:LIMIT -> variable LIMIT in step',
  ]);
});

test('Go: imports, parameters, := locals and methods', async () => {
  const found = await edges('go', [
    'package main', // 1
    'import "fmt"', // 2
    'const Limit = 3', // 3
    'type Cart struct { n int }', // 4
    'func (c *Cart) Size() int { return c.n + Limit }', // 5
    'func main() {', // 6
    '  c := &Cart{}', // 7
    '  fmt.Println(c.Size(), Limit)', // 8
    '}', // 9
    'func shadow(Limit int) int { Cart := 2; return Limit + Cart }', // 10
  ]);
  assert.deepEqual(found, [
    '5:Cart -> type Cart in Size',
    '5:Limit -> variable Limit in Size',
    '7:Cart -> type Cart in main',
    '8:fmt -> import fmt in main',
    '8:Size -> method Size (by name) in main',
    '8:Limit -> variable Limit in main',
  ]);
});

test('Rust: use declarations, let and parameter shadowing, methods', async () => {
  const found = await edges('rust', [
    'use std::collections::HashMap;', // 1
    'const LIMIT: usize = 3;', // 2
    'struct Cart { items: HashMap<u32, u32> }', // 3
    'impl Cart {', // 4
    '    fn size(&self) -> usize { self.items.len() + LIMIT }', // 5
    '}', // 6
    'fn main() { let LIMIT = 1; let c = Cart { items: HashMap::new() }; c.size(); }', // 7
  ]);
  assert.deepEqual(found, [
    '3:HashMap -> import HashMap in Cart',
    '4:Cart -> class Cart',
    '5:LIMIT -> variable LIMIT in size',
    '7:Cart -> class Cart in main',
    '7:HashMap -> import HashMap in main',
    '7:size -> method size (by name) in main',
  ]);
});

test('Java: imports, fields, parameters and locals shadow, method calls by name', async () => {
  const found = await edges('java', [
    'import java.util.List;', // 1
    'class Cart {', // 2
    '  int limit = 3;', // 3
    '  int size(List<String> items) { return items.size() + limit; }', // 4
    '  int twice(int limit) { int size = 2; return size() * limit + size; }', // 5
    '}', // 6
  ]);
  // `size()` in twice calls the method (Java keeps methods and variables apart); the bare `limit`
  // and `size` there are the parameter and the local.
  assert.deepEqual(found, ['4:List -> import List in size', '4:size -> method size (by name) in size', '4:limit -> variable limit in size', '5:size -> method size (by name) in twice']);
});

test('C++: includes, parameters shadow, member calls by name', async () => {
  const found = await edges('cpp', [
    '#include <vector>', // 1
    'const int LIMIT = 3;', // 2
    'struct Cart { int n; };', // 3
    'int size(Cart c) { return c.n + LIMIT; }', // 4
    'int shadow(int LIMIT) { int size = 1; return LIMIT + size; }', // 5
    'int main() { Cart c; return size(c); }', // 6
  ]);
  assert.deepEqual(found, ['4:Cart -> class Cart in size', '4:LIMIT -> variable LIMIT in size', '6:Cart -> class Cart in main', '6:size -> function size in main']);
});

test('C#: usings, fields, parameters and locals shadow, methods', async () => {
  const found = await edges('csharp', [
    'using System.Text;', // 1
    'class Cart {', // 2
    '  int limit = 3;', // 3
    '  int Size() { return limit; }', // 4
    '  int Twice(int limit) { var sb = new StringBuilder(); return this.Size() + limit; }', // 5
    '}', // 6
  ]);
  assert.deepEqual(found, ['4:limit -> variable limit in Size', '5:Size -> method Size (by name) in Twice']);
});
