/** VS Code language ids by file extension, for the CLI (the extension gets them from the document). */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  '.ts': 'typescript', '.mts': 'typescript', '.cts': 'typescript',
  '.tsx': 'typescriptreact',
  '.js': 'javascript', '.mjs': 'javascript', '.cjs': 'javascript',
  '.jsx': 'javascriptreact',
  '.py': 'python', '.pyi': 'python',
  '.go': 'go',
  '.rs': 'rust',
  '.java': 'java',
  '.c': 'c', '.h': 'c',
  '.cc': 'cpp', '.cpp': 'cpp', '.cxx': 'cpp', '.hpp': 'cpp', '.hh': 'cpp', '.hxx': 'cpp',
  '.cs': 'csharp',
};

export function languageIdForFile(file: string): string {
  const dot = file.lastIndexOf('.');
  return dot >= 0 ? (BY_EXTENSION[file.slice(dot).toLowerCase()] ?? 'plaintext') : 'plaintext';
}
