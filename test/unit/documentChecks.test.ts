import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDocument, type DocumentFacts } from '../../src/analysis/documentChecks';

const base: DocumentFacts = { text: 'const x = 1;\n', fileName: 'a.ts', uriScheme: 'file', isSelection: false, maxFileTokens: 1000 };
const reasons = (facts: Partial<DocumentFacts>) => checkDocument({ ...base, ...facts }).map((p) => `${p.kind}:${p.reason}`);

test('ordinary source passes without problems', () => {
  assert.deepEqual(reasons({}), []);
  assert.deepEqual(reasons({ uriScheme: 'untitled' }), [], 'untitled documents are analysed');
  assert.deepEqual(reasons({ uriScheme: 'git' }), [], 'read-only virtual documents are analysed from their text');
});

test('empty, whitespace-only, binary, huge and non-source documents are refused with a message', () => {
  assert.deepEqual(reasons({ text: '' }), ['refuse:empty']);
  assert.deepEqual(reasons({ text: ' \n\t\n' }), ['refuse:empty']);
  assert.deepEqual(reasons({ text: 'PK\u0003\u0004\u0000\u0000binary' }), ['refuse:binary']);
  assert.deepEqual(reasons({ text: 'x'.repeat(1000 * 16 + 1) }), ['refuse:tooLarge']);
  assert.deepEqual(reasons({ uriScheme: 'output' }), ['refuse:notSource']);
  const huge = checkDocument({ ...base, text: 'x'.repeat(20000) })[0];
  assert.match(huge.message, /Analyze Selection/, 'the message says how to analyse part of the file');
  assert.match(checkDocument({ ...base, text: '', isSelection: true })[0].message, /^The selection is empty/);
});

test('invalid UTF-8, minified code and notebook cells are analysed with a warning', () => {
  assert.deepEqual(reasons({ text: 'let s = "caf\uFFFD";\n' }), ['warn:invalidUtf8']);
  assert.deepEqual(reasons({ text: `var a=1;${'b=a+1;'.repeat(1000)}` }), ['warn:minified']);
  assert.deepEqual(reasons({ uriScheme: 'vscode-notebook-cell' }), ['warn:notebookCell']);
});
