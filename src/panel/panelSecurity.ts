/**
 * What the Attention Lens webview may load and run, as pure functions (no `vscode` import) so the
 * policy itself is unit-tested (test/unit/panelSecurity.test.ts; SECURITY.md lists the claims).
 */

/**
 * The panel's Content-Security-Policy: nothing by default; styles, fonts and images from the
 * extension's own webview resources; scripts only with this page's nonce (no inline handlers, no
 * eval); fetches only of webview resources (the model files).
 */
export function panelContentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `img-src ${cspSource} data:`,
    `script-src 'nonce-${nonce}'`,
    // Model files are fetched from the model folder's webview resource URL.
    `connect-src ${cspSource}`,
  ].join('; ');
}

/**
 * Folders the webview may read, relative to the extension: its bundle, media and the embedded
 * model. The folder of a model the user chose is added by the panel, nothing else.
 */
export const PANEL_RESOURCE_FOLDERS: readonly (readonly string[])[] = [['out', 'webview'], ['media'], ['default-model']];

/** True when `folder` is one of `roots` or inside one (path prefixes that end at a separator). */
export function isUnderRoots(folder: string, roots: readonly string[]): boolean {
  return roots.some((root) => folder === root || folder.startsWith(root.endsWith('/') ? root : `${root}/`));
}
