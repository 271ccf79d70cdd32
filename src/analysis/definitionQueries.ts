/**
 * Tree-sitter queries that find the definitions and imports of a file, per grammar. Each pattern
 * captures the whole node as `@<kind>` (import, function, class, method, interface, type, enum,
 * variable, module), its name as `@name` and, where the node has one, its body as `@body` (the span
 * summed by the engine is the header: node start up to the body).
 */

export type DefinitionKind = 'import' | 'function' | 'class' | 'method' | 'interface' | 'type' | 'enum' | 'variable' | 'module';

export const DEFINITION_KINDS: readonly DefinitionKind[] = ['import', 'function', 'class', 'method', 'interface', 'type', 'enum', 'variable', 'module'];

/** The grammars shipped in @vscode/tree-sitter-wasm that this extension uses. */
export type GrammarName = 'typescript' | 'tsx' | 'javascript' | 'python' | 'go' | 'rust' | 'java' | 'cpp' | 'c-sharp';

/** VS Code language ids mapped to the grammar that parses them. */
export const GRAMMAR_FOR_LANGUAGE: Readonly<Record<string, GrammarName>> = {
  typescript: 'typescript',
  typescriptreact: 'tsx',
  javascript: 'tsx',
  javascriptreact: 'tsx',
  python: 'python',
  go: 'go',
  rust: 'rust',
  java: 'java',
  c: 'cpp',
  cpp: 'cpp',
  cuda: 'cpp',
  csharp: 'c-sharp',
};

const typescriptLike = `
(import_statement) @import
(function_declaration name: (identifier) @name body: (_) @body) @function
(generator_function_declaration name: (identifier) @name body: (_) @body) @function
(class_declaration name: (_) @name body: (class_body) @body) @class
(abstract_class_declaration name: (_) @name body: (class_body) @body) @class
(method_definition name: (_) @name body: (_) @body) @method
(interface_declaration name: (_) @name body: (_) @body) @interface
(type_alias_declaration name: (_) @name) @type
(enum_declaration name: (_) @name body: (_) @body) @enum
(lexical_declaration (variable_declarator name: (identifier) @name)) @variable
(variable_declaration (variable_declarator name: (identifier) @name)) @variable
(internal_module name: (_) @name body: (_) @body) @module
`;

export const DEFINITION_QUERIES: Readonly<Record<GrammarName, string>> = {
  typescript: typescriptLike,
  tsx: typescriptLike,
  // JavaScript files are parsed with the TSX grammar (a superset), so one query serves both.
  javascript: `
(import_statement) @import
(function_declaration name: (identifier) @name body: (_) @body) @function
(class_declaration name: (_) @name body: (class_body) @body) @class
(method_definition name: (_) @name body: (_) @body) @method
(lexical_declaration (variable_declarator name: (identifier) @name)) @variable
(variable_declaration (variable_declarator name: (identifier) @name)) @variable
`,
  python: `
(import_statement) @import
(import_from_statement) @import
(future_import_statement) @import
(function_definition name: (identifier) @name body: (block) @body) @function
(class_definition name: (identifier) @name body: (block) @body) @class
(expression_statement (assignment left: (identifier) @name)) @variable
`,
  go: `
(import_declaration) @import
(function_declaration name: (identifier) @name body: (block) @body) @function
(method_declaration name: (field_identifier) @name body: (block) @body) @method
(type_declaration (type_spec name: (type_identifier) @name)) @type
(const_declaration (const_spec name: (identifier) @name)) @variable
(var_declaration (var_spec name: (identifier) @name)) @variable
`,
  rust: `
(use_declaration) @import
(extern_crate_declaration) @import
(function_item name: (identifier) @name body: (block) @body) @function
(struct_item name: (type_identifier) @name) @class
(enum_item name: (type_identifier) @name) @enum
(trait_item name: (type_identifier) @name body: (_) @body) @interface
(type_item name: (type_identifier) @name) @type
(const_item name: (identifier) @name) @variable
(static_item name: (identifier) @name) @variable
(mod_item name: (identifier) @name) @module
(macro_definition name: (identifier) @name) @function
`,
  java: `
(import_declaration) @import
(class_declaration name: (identifier) @name body: (class_body) @body) @class
(record_declaration name: (identifier) @name body: (_) @body) @class
(interface_declaration name: (identifier) @name body: (_) @body) @interface
(enum_declaration name: (identifier) @name body: (_) @body) @enum
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name body: (_) @body) @method
(field_declaration declarator: (variable_declarator name: (identifier) @name)) @variable
`,
  cpp: `
(preproc_include) @import
(using_declaration) @import
(function_definition declarator: (_) @name body: (_) @body) @function
(class_specifier name: (_) @name body: (_) @body) @class
(struct_specifier name: (_) @name body: (_) @body) @class
(enum_specifier name: (_) @name) @enum
(namespace_definition name: (_) @name body: (_) @body) @module
(type_definition declarator: (_) @name) @type
(alias_declaration name: (_) @name) @type
(translation_unit (declaration declarator: (init_declarator declarator: (identifier) @name)) @variable)
(preproc_def name: (identifier) @name) @variable
`,
  'c-sharp': `
(using_directive) @import
(class_declaration name: (identifier) @name body: (_) @body) @class
(struct_declaration name: (identifier) @name body: (_) @body) @class
(record_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name body: (_) @body) @interface
(enum_declaration name: (identifier) @name body: (_) @body) @enum
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name) @method
(field_declaration (variable_declaration (variable_declarator (identifier) @name))) @variable
(namespace_declaration name: (_) @name body: (_) @body) @module
(delegate_declaration name: (identifier) @name) @type
`,
};
