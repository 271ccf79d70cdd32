/**
 * The code's own references: each identifier use in a file resolved by name to the file's own
 * definitions and imports (the ones tree-sitter found, src/analysis/definitions.ts). These are the
 * ground-truth edges the dependency map and the definition-heads table compare attention with.
 *
 * Resolution is scope-aware for bare names in every supported grammar: a name declared in an
 * enclosing function or block (a parameter, a local variable, a destructured binding, a loop or
 * catch variable) shadows the file-level definition, and that use resolves to nothing here.
 * Member accesses (`this.total()`, `self.step()`, `order.id`, `p->next`) cannot be resolved without
 * types, so they resolve *by name only* to methods and fields of that name, and say so.
 * No `vscode` import: the CLI and unit tests use it too. Offsets are UTF-16 code units.
 */
import type { Node as SyntaxNode } from '@vscode/tree-sitter-wasm';
import type { SourceDefinition } from './definitions';

/** How a reference was resolved: through the scopes, or by name only (member accesses). */
export type ReferenceResolution = 'scoped' | 'byName';

export interface CodeReference {
  /** The identifier's UTF-16 range in the text. */
  readonly start: number;
  readonly end: number;
  readonly name: string;
  /** Indices into the definitions the references were resolved against (best candidate first). */
  readonly targets: readonly number[];
  readonly resolution: ReferenceResolution;
  /** The innermost definition whose node contains the use (a function, method, class...), or -1. */
  readonly enclosing: number;
}

/** Node types whose identifier children are uses of a name. */
const NAME_NODE = /^(identifier|type_identifier|property_identifier|field_identifier|shorthand_property_identifier|namespace_identifier|constant|simple_identifier)$/;

/** Node types that open a scope for local declarations. */
const SCOPE_NODE =
  /^(function_declaration|function_definition|function_expression|generator_function_declaration|generator_function|arrow_function|method_definition|method_declaration|constructor_declaration|function_item|closure_expression|lambda|lambda_expression|func_literal|local_function_statement|anonymous_method_expression|statement_block|block|compound_statement|for_statement|for_in_statement|for_of_statement|enhanced_for_statement|catch_clause|with_statement|list_comprehension|dictionary_comprehension|set_comprehension|generator_expression|accessor_declaration)$/;

/** Parent types whose `name`/`pattern`/`declarator`/`left` child is a local declaration. */
const DECLARING_PARENT =
  /parameter|variable_declarator|init_declarator|let_declaration|var_spec|const_spec|short_var_declaration|catch_clause|for_in_statement|for_of_statement|for_statement|enhanced_for_statement|foreach_statement|closure_parameters|lambda_parameters|as_pattern_target|with_item|local_variable_declaration|reference_declarator|pointer_declarator|range_clause|for_in_clause|typed_parameter|default_parameter|typed_default_parameter|declaration$/;

/** Parents that hold plain parameter identifiers as children (JS `(a, b) =>`, Python `def f(a, b)`). */
const PARAMETER_LIST = /^(formal_parameters|parameters|lambda_parameters|closure_parameters|parameter_list|pattern_list|tuple_pattern|list_pattern|array_pattern|object_pattern|expression_list|identifier_list)$/;

/** Python assignment targets declare a local name inside a function. */
const ASSIGNMENT = /^(assignment|augmented_assignment)$/;

/** Parents whose named child in this field is a member name, not a variable. */
const MEMBER_FIELDS: ReadonlyArray<[RegExp, string]> = [
  [/^member_expression$/, 'property'],
  [/^attribute$/, 'attribute'],
  [/^selector_expression$/, 'field'],
  [/^field_expression$/, 'field'],
  [/^field_access$/, 'field'],
  [/^method_invocation$/, 'name'],
  [/^member_access_expression$/, 'name'],
  [/^scoped_identifier$/, 'name'],
  [/^qualified_identifier$/, 'name'],
  [/^scoped_type_identifier$/, 'name'],
  [/^qualified_type$/, 'name'],
  [/^nested_type_identifier$/, 'name'],
];

/** Parents whose name children are labels, keys or fields written, not uses. */
const NOT_A_USE = /^(pair|pair_pattern|property_signature|public_field_definition|field_definition|labeled_statement|break_statement|continue_statement|keyword_argument|field_initializer|shorthand_field_initializer|jsx_attribute|enum_assignment|enumerator|field_declaration)$/;

function fieldChild(parent: SyntaxNode, field: string): SyntaxNode | null {
  return parent.childForFieldName(field);
}

function same(a: SyntaxNode | null | undefined, b: SyntaxNode): boolean {
  return !!a && a.startIndex === b.startIndex && a.endIndex === b.endIndex && a.type === b.type;
}

/** True when `node` is written as a member name (`x.node`, `A::node`), so its binding needs types. */
function isMemberName(node: SyntaxNode): boolean {
  const parent = node.parent;
  if (!parent) return false;
  if (node.type === 'property_identifier' || node.type === 'field_identifier') return true;
  for (const [type, field] of MEMBER_FIELDS) {
    if (type.test(parent.type) && same(fieldChild(parent, field), node)) {
      // `Foo::bar` / `pkg.Name`: the qualified name's last part, resolvable by name only.
      return true;
    }
  }
  return false;
}

/** True when `node` (a name) is itself declared here: a parameter, a local variable, a loop variable. */
function isLocalDeclaration(node: SyntaxNode): boolean {
  if (node.type === 'shorthand_property_identifier_pattern') return true;
  let child = node;
  let parent = node.parent;
  // Climb through destructuring patterns and lists: `const { a, b: [c] } = x`, `for k, v in d`.
  while (parent && PARAMETER_LIST.test(parent.type) && parent.parent) {
    if (/^(formal_parameters|parameters|lambda_parameters|closure_parameters|parameter_list)$/.test(parent.type)) return true;
    child = parent;
    parent = parent.parent;
  }
  if (!parent) return false;
  if (parent.type === 'pair_pattern') return same(fieldChild(parent, 'value'), child);
  if (/^(required_parameter|optional_parameter)$/.test(parent.type)) return same(fieldChild(parent, 'pattern'), child);
  if (ASSIGNMENT.test(parent.type)) return same(fieldChild(parent, 'left'), child) && insideScope(parent);
  if (parent.type === 'short_var_declaration') return same(fieldChild(parent, 'left'), child);
  if (/^(for_statement|for_in_statement|for_of_statement|for_in_clause)$/.test(parent.type)) return same(fieldChild(parent, 'left'), child);
  if (parent.type === 'catch_clause') return same(fieldChild(parent, 'parameter'), child);
  if (parent.type === 'as_pattern_target' || parent.type === 'with_item') return true;
  if (DECLARING_PARENT.test(parent.type)) {
    for (const field of ['name', 'pattern', 'declarator', 'left']) if (same(fieldChild(parent, field), child)) return insideScope(parent);
  }
  return false;
}

function insideScope(node: SyntaxNode): boolean {
  for (let p = node.parent; p; p = p.parent) if (SCOPE_NODE.test(p.type)) return true;
  return false;
}

function nearestScope(node: SyntaxNode): SyntaxNode | undefined {
  for (let p = node.parent; p; p = p.parent) if (SCOPE_NODE.test(p.type)) return p;
  return undefined;
}

/** Key of a node that is stable across the wrapper objects tree-sitter hands out. */
function nodeKey(node: SyntaxNode): string {
  return `${node.startIndex}:${node.endIndex}:${node.type}`;
}

/**
 * Resolves every identifier use under `root` against `definitions` (as DefinitionExtractor found
 * them in the same text), in text order.
 */
export function resolveReferences(root: SyntaxNode, definitions: readonly SourceDefinition[]): CodeReference[] {
  // Names bound at file level, and the member names (methods, fields) of classes.
  const byName = new Map<string, number[]>();
  definitions.forEach((definition, index) => {
    for (const name of definition.names) {
      const list = byName.get(name) ?? [];
      list.push(index);
      byName.set(name, list);
    }
  });
  const imports = definitions.map((d) => d.kind === 'import');

  // First pass: local declarations per scope node, and the names that declare definitions.
  const scopes = new Map<string, Set<string>>();
  const names: SyntaxNode[] = [];
  const visit = (node: SyntaxNode) => {
    if (NAME_NODE.test(node.type) || node.type === 'shorthand_property_identifier_pattern') {
      if (isLocalDeclaration(node)) {
        const scope = nearestScope(node);
        if (scope) {
          const key = nodeKey(scope);
          const set = scopes.get(key) ?? new Set<string>();
          set.add(node.text);
          scopes.set(key, set);
        }
      } else if (node.type !== 'shorthand_property_identifier_pattern') {
        names.push(node);
      }
      return;
    }
    for (let i = 0; i < node.childCount; i++) {
      const child = node.child(i);
      if (child) visit(child);
    }
  };
  visit(root);

  const references: CodeReference[] = [];
  for (const node of names) {
    const name = node.text;
    const candidates = byName.get(name);
    if (!candidates) continue;
    const start = node.startIndex;
    // The names inside imports, and a definition's own name, declare rather than use.
    if (candidates.some((d) => isDeclaringOccurrence(definitions[d], node, imports[d]))) continue;
    if (definitions.some((d, i) => imports[i] && d.nodeStart <= start && node.endIndex <= d.nodeEnd)) continue;
    const parent = node.parent;
    if (parent && NOT_A_USE.test(parent.type) && !same(fieldChild(parent, 'value'), node)) continue;
    if (parent?.type === 'shorthand_property_identifier') continue;

    let resolution: ReferenceResolution = 'scoped';
    let targets: number[];
    if (isMemberName(node)) {
      // Without types the receiver is unknown: match methods and fields of that name.
      targets = candidates.filter((d) => definitions[d].kind === 'method' || definitions[d].kind === 'variable' || definitions[d].kind === 'function');
      resolution = 'byName';
    } else {
      if (shadowed(node, name, scopes)) continue;
      // A bare name does not reach a method (in every supported language it needs a receiver).
      targets = candidates.filter((d) => definitions[d].kind !== 'method');
      if (targets.length === 0) continue;
      // Several definitions of one name: the nearest one before the use first.
      targets.sort((a, b) => rank(definitions[a], start) - rank(definitions[b], start));
    }
    if (targets.length === 0) continue;
    references.push({ start, end: node.endIndex, name, targets, resolution, enclosing: enclosingDefinition(definitions, start, node.endIndex) });
  }
  return references;
}

/** Sort key: definitions before the use by distance, then later ones (hoisting) by distance. */
function rank(definition: SourceDefinition, use: number): number {
  return definition.nodeStart <= use ? use - definition.nodeStart : 1e12 + definition.nodeStart - use;
}

function isDeclaringOccurrence(definition: SourceDefinition, node: SyntaxNode, isImport: boolean): boolean {
  return !isImport && definition.nameStart === node.startIndex;
}

function shadowed(node: SyntaxNode, name: string, scopes: ReadonlyMap<string, Set<string>>): boolean {
  for (let p = node.parent; p; p = p.parent) {
    if (!SCOPE_NODE.test(p.type)) continue;
    if (scopes.get(nodeKey(p))?.has(name)) return true;
  }
  return false;
}

/** Index of the innermost definition whose whole node contains [start, end), or -1. */
export function enclosingDefinition(definitions: readonly SourceDefinition[], start: number, end: number): number {
  let best = -1;
  for (let i = 0; i < definitions.length; i++) {
    const d = definitions[i];
    if (d.kind === 'import' || d.nodeStart > start || d.nodeEnd < end) continue;
    if (best < 0 || d.nodeEnd - d.nodeStart < definitions[best].nodeEnd - definitions[best].nodeStart) best = i;
  }
  return best;
}
