// Lint: typescript-eslint's recommended rules plus the project's few conventions.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['out/**', 'node_modules/**', 'test/fixtures/**', 'test-output/**', 'training/**', '.tools/**', 'sample-workspace/**', '*.vsix'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // The protocol and the engine run in the webview and in Node: no editor or Node imports there.
    // Only the Node hosts and the ONNX Runtime backend (which runs in Node) may use Node modules.
    files: ['src/shared/**/*.ts', 'engine/**/*.ts'],
    ignores: ['engine/hosts/node*.ts', 'engine/onnx/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: ['vscode'], patterns: ['node:*', 'fs', 'path', 'child_process'] }],
    },
  },
  {
    // Nothing in the engine may import the editor.
    files: ['engine/hosts/node*.ts', 'engine/onnx/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: ['vscode'] }] },
  },
  {
    // esbuild's text loader gives WGSL sources as a default export; only the shim declares it.
    files: ['types/*.d.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
