/**
 * Finds the definitions and imports of a source file with tree-sitter (the grammars VS Code itself
 * ships in @vscode/tree-sitter-wasm). These spans are what the engine sums attention mass over.
 * No `vscode` import: the CLI and unit tests use it too. Offsets are UTF-16 code units, like
 * VS Code's `document.offsetAt`.
 */
import { Language, Parser, Query, type Node as SyntaxNode } from '@vscode/tree-sitter-wasm';
import { resolveReferences, type CodeReference } from './references';
import { DEFINITION_KINDS, DEFINITION_QUERIES, GRAMMAR_FOR_LANGUAGE, type DefinitionKind, type GrammarName } from './definitionQueries';

export interface SourceDefinition {
  readonly kind: DefinitionKind;
  /** The defined name; for imports, the names the statement binds (or its module). */
  readonly name: string;
  /** Every name the definition binds (one, except for imports). */
  readonly names: readonly string[];
  /** The span whose attention is summed: the header (node start up to its body), trimmed. */
  readonly start: number;
  readonly end: number;
  /** The whole syntax node. */
  readonly nodeStart: number;
  readonly nodeEnd: number;
  /** Where the declared name is written (absent for imports). */
  readonly nameStart?: number;
}

/** A range of the text (character offsets, end exclusive). */
export interface TextRange {
  readonly start: number;
  readonly end: number;
}

/** The grammar's comments (`comment`, or `line_comment` and `block_comment` where a grammar names them so). */
function commentQuery(language: Language): Query | undefined {
  for (const source of ['(comment) @comment', '[(line_comment) (block_comment)] @comment']) {
    try {
      return new Query(language, source);
    } catch {
      // This grammar has no such node type: try the next spelling.
    }
  }
  return undefined;
}

/** Loads grammar files: a path on disk in Node, or bytes from wherever the host keeps them. */
export type WasmLoader = (fileName: string) => Promise<Uint8Array>;

/** Node types that open a local scope: variables declared inside them are not file-level definitions. */
const LOCAL_SCOPE = /function|method|arrow|lambda|closure|constructor|accessor|block_statement|statement_block/;

const IDENTIFIER = /identifier$|^name$|^dotted_name$|^scoped_identifier$|^qualified_name$/;

export class DefinitionExtractor {
  private readonly grammars = new Map<GrammarName, Promise<{ language: Language; query: Query; comments?: Query }>>();

  private constructor(private readonly loadWasm: WasmLoader) {}

  /** Initialises the tree-sitter runtime once. `runtimeWasm` is the bytes of tree-sitter.wasm. */
  static async create(loadWasm: WasmLoader): Promise<DefinitionExtractor> {
    const runtime = await loadWasm('tree-sitter.wasm');
    await Parser.init({ wasmBinary: runtime } as unknown as { locateFile: (file: string, folder: string) => string });
    return new DefinitionExtractor(loadWasm);
  }

  /** True when `languageId` (a VS Code language id) has a grammar. */
  static supports(languageId: string): boolean {
    return languageId in GRAMMAR_FOR_LANGUAGE;
  }

  private grammar(name: GrammarName): Promise<{ language: Language; query: Query; comments?: Query }> {
    let pending = this.grammars.get(name);
    if (!pending) {
      pending = (async () => {
        const language = await Language.load(await this.loadWasm(`tree-sitter-${name}.wasm`));
        return { language, query: new Query(language, DEFINITION_QUERIES[name]), comments: commentQuery(language) };
      })();
      this.grammars.set(name, pending);
      pending.catch(() => this.grammars.delete(name));
    }
    return pending;
  }

  /** The definitions and imports of `text`, sorted by position; [] for languages without a grammar. */
  async extract(languageId: string, text: string): Promise<SourceDefinition[]> {
    return (await this.extractWithReferences(languageId, text)).definitions;
  }

  /**
   * The definitions and imports of `text` and, from the same parse, every identifier use resolved
   * to them (src/analysis/references.ts); both empty for languages without a grammar.
   */
  async extractWithReferences(languageId: string, text: string): Promise<{ definitions: SourceDefinition[]; references: CodeReference[]; comments: TextRange[] }> {
    const grammarName = GRAMMAR_FOR_LANGUAGE[languageId];
    if (!grammarName) return { definitions: [], references: [], comments: [] };
    const { language, query, comments } = await this.grammar(grammarName);
    const parser = new Parser();
    try {
      parser.setLanguage(language);
      const tree = parser.parse(text);
      if (!tree) return { definitions: [], references: [], comments: [] };
      try {
        const definitions = collect(query, tree.rootNode, text);
        const commentRanges = comments ? comments.captures(tree.rootNode).map((c) => ({ start: c.node.startIndex, end: c.node.endIndex })).sort((a, b) => a.start - b.start) : [];
        return { definitions, references: resolveReferences(tree.rootNode, definitions), comments: commentRanges };
      } finally {
        tree.delete();
      }
    } finally {
      parser.delete();
    }
  }
}

/**
 * Where a definition's header ends: before its body, and before any comments between the two (a
 * Python block starts after the comments that open it, so they would count as the header's).
 */
function headerEnd(node: SyntaxNode, body: SyntaxNode): number {
  let end = body.startIndex;
  for (let i = node.childCount - 1; i >= 0; i--) {
    const child = node.child(i);
    if (!child || child.startIndex >= body.startIndex) continue;
    if (child.type === 'comment') {
      end = Math.min(end, child.startIndex);
      continue;
    }
    return Math.min(end, Math.max(child.endIndex, node.startIndex));
  }
  return end;
}

function collect(query: Query, root: SyntaxNode, text: string): SourceDefinition[] {
  const found = new Map<string, SourceDefinition>();
  for (const match of query.matches(root)) {
    let node: SyntaxNode | undefined;
    let kind: DefinitionKind | undefined;
    let nameNode: SyntaxNode | undefined;
    let body: SyntaxNode | undefined;
    for (const capture of match.captures) {
      if (capture.name === 'name') nameNode = capture.node;
      else if (capture.name === 'body') body = capture.node;
      else if ((DEFINITION_KINDS as readonly string[]).includes(capture.name)) {
        node = capture.node;
        kind = capture.name as DefinitionKind;
      }
    }
    if (!node || !kind) continue;
    if (kind === 'variable') {
      if (isInsideLocalScope(node)) continue;
      // `const f = () => ...` defines a function: its header ends where the arrow's body starts.
      const value = nameNode?.parent?.childForFieldName('value');
      if (value && /arrow_function|function_expression|function$/.test(value.type)) {
        kind = 'function';
        body = value.childForFieldName('body') ?? undefined;
      }
    }
    const container = node.parent;
    if (kind === 'function' && container && /class_body|declaration_list|field_declaration_list/.test(container.type) && !/namespace|mod_item/.test(container.parent?.type ?? '')) kind = 'method';
    // Python: a def in a class body is a method, decorated or not.
    const holder = node.parent?.type === 'decorated_definition' ? node.parent : node.parent;
    const block = node.parent?.type === 'decorated_definition' ? holder?.parent : holder;
    if (kind === 'function' && block?.type === 'block' && block.parent?.type === 'class_definition') kind = 'method';

    const declared = kind === 'import' || !nameNode ? undefined : declaredNameNode(nameNode);
    const names = kind === 'import' ? importedNames(node) : declared ? [declared.text] : [];
    const name = names.length === 0 ? firstLine(node.text) : names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')}, …`;
    const start = node.startIndex;
    let end = body && body.startIndex > start ? headerEnd(node, body) : node.endIndex;
    while (end > start && /\s/.test(text[end - 1])) end--;
    const key = `${start}:${end}`;
    if (!found.has(key)) found.set(key, { kind, name, names, start, end, nodeStart: node.startIndex, nodeEnd: node.endIndex, ...(declared ? { nameStart: declared.startIndex } : {}) });
  }
  return [...found.values()].sort((a, b) => a.start - b.start || a.end - b.end);
}

function isInsideLocalScope(node: SyntaxNode): boolean {
  for (let parent = node.parent; parent; parent = parent.parent) {
    if (LOCAL_SCOPE.test(parent.type)) return true;
  }
  return false;
}

/** The plain name node inside a name node (C++ declarators wrap it: `int *f(int)` -> `f`). */
function declaredNameNode(node: SyntaxNode): SyntaxNode {
  if (/declarator$/.test(node.type)) {
    const inner = node.childForFieldName('declarator');
    if (inner) return declaredNameNode(inner);
  }
  return node;
}

/** The names an import binds: the last identifier of each imported path or alias. */
function importedNames(node: SyntaxNode): string[] {
  const names: string[] = [];
  const visit = (current: SyntaxNode) => {
    if (current.type === 'string' || current.type === 'string_literal' || current.type === 'interpreted_string_literal' || current.type === 'system_lib_string') {
      if (names.length === 0 && current.parent && /import|include|use/.test(current.parent.type)) names.push(current.text.replace(/^["'<`]|["'>`]$/g, ''));
      return;
    }
    if (IDENTIFIER.test(current.type) && current.childCount === 0) {
      names.push(current.text);
      return;
    }
    for (const child of current.namedChildren) if (child) visit(child);
  };
  visit(node);
  return [...new Set(names)].filter((n) => !/^(import|from|as|use|using|static|type)$/.test(n));
}

function firstLine(text: string): string {
  const line = text.split(/\r?\n/, 1)[0].trim();
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}
