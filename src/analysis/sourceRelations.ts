/**
 * What kind of source an attended span is for the identifier that attends to it, from the code's
 * own references (src/analysis/references.ts):
 * - `definition`: the definition or import of the hovered name (the reference resolves to it);
 * - `earlierUse`: not its definition, but the span holds an earlier use of the same name (e.g. a
 *   use of an imported type attending to another function's signature that mentions the type),
 *   which reads as "copying an earlier occurrence", not as a dependency on that function;
 * - `unrelated`: neither.
 * No `vscode` import; the hover, overlay, sources list, panel and map share it.
 */
import type { PreparedDocument } from './documentAnalysis';
import type { SourceDefinition } from './definitions';

export type SourceRelation =
  | { readonly kind: 'definition'; readonly resolution: 'scoped' | 'byName' }
  | { readonly kind: 'earlierUse' }
  | { readonly kind: 'unrelated' };

/** The identifier group index whose tokens include `token`, or -1. */
export function identifierIndexOfToken(doc: PreparedDocument, token: number): number {
  let lo = 0;
  let hi = doc.identifiers.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const group = doc.identifiers[mid];
    if (token < group.tokens[0]) hi = mid - 1;
    else if (token > group.tokens[group.tokens.length - 1]) lo = mid + 1;
    else return group.tokens.includes(token) ? mid : -1;
  }
  return -1;
}

/** True when the token span [start, end) holds an identifier spelled `name` that starts before `before`. */
function spanHoldsName(doc: PreparedDocument, start: number, end: number, name: string, before: number): boolean {
  for (let t = start; t < end && t < before; t++) {
    const g = identifierIndexOfToken(doc, t);
    if (g >= 0 && doc.identifiers[g].name === name && doc.identifiers[g].tokens[0] < before) return true;
  }
  return false;
}

/**
 * How definition `definition` relates to the identifier group `identifier` that attends to it.
 * Without references for the file (no grammar), a definition that binds the same name still
 * counts as its definition, by name.
 */
export function relationOf(doc: PreparedDocument, identifier: number, definition: number): SourceRelation {
  const group = doc.identifiers[identifier];
  const d: SourceDefinition = doc.definitions[definition];
  const r = doc.identifierReference[identifier];
  if (r >= 0) {
    const reference = doc.references[r];
    if (reference.targets.includes(definition)) return { kind: 'definition', resolution: reference.resolution };
  } else if (doc.references.length === 0 && d.names.includes(group.name)) {
    return { kind: 'definition', resolution: 'byName' };
  }
  const span = doc.spans[definition];
  if (spanHoldsName(doc, span.start, span.end, group.name, group.tokens[0])) return { kind: 'earlierUse' };
  return { kind: 'unrelated' };
}

/** A short label for the views, e.g. "definition of Money", "earlier use of Money", "unrelated". */
export function relationLabel(relation: SourceRelation, name: string): string {
  switch (relation.kind) {
    case 'definition':
      return relation.resolution === 'byName' ? `definition of ${name} (matched by name)` : `definition of ${name}`;
    case 'earlierUse':
      return `earlier use of ${name}`;
    case 'unrelated':
      return 'unrelated';
  }
}
