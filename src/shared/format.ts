/** Small formatting helpers shared by the extension host, the webview and the CLI. */

/** A short human name for an adapter, e.g. "google swiftshader". */
export function describeAdapter(vendor: string, architecture: string, description: string): string {
  const name = [vendor, architecture].filter(Boolean).join(' ') || description || 'unknown adapter';
  return name.length > 40 ? `${name.slice(0, 39)}…` : name;
}

/** Bytes in binary units with one decimal, e.g. "1.5 MiB". */
export function formatBytes(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(1)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** What the views need to know of a model's layers: sliding windows and layers without positions. */
export interface LayerFacts {
  /** Per layer, the positions a query sees (itself and those before it); 0: all. */
  readonly slidingWindow?: readonly number[];
  /** Per layer, whether it rotates queries and keys (false: a NoPE layer, no positional encoding). */
  readonly ropeLayers?: readonly boolean[];
}

/** What `layer` sees when it differs from every earlier token, e.g. "sees only the last 512 tokens". */
export function layerScope(facts: LayerFacts | undefined, layer: number): string | undefined {
  const window = facts?.slidingWindow?.[layer] ?? 0;
  const parts: string[] = [];
  if (window > 0) parts.push(`sees only the last ${window.toLocaleString('en-US')} tokens`);
  if (facts?.ropeLayers?.[layer] === false) parts.push('no positional encoding');
  return parts.length ? parts.join('; ') : undefined;
}

/** One line on the layers of `layers` whose view is limited, e.g. "layers 3, 7 see only the last 512 tokens"; undefined when none is. */
export function limitedLayersNote(facts: LayerFacts | undefined, layers: readonly number[]): string | undefined {
  const byWindow = new Map<number, number[]>();
  for (const layer of layers) {
    const window = facts?.slidingWindow?.[layer] ?? 0;
    if (window > 0) byWindow.set(window, [...(byWindow.get(window) ?? []), layer]);
  }
  const notes = [...byWindow].map(([window, which]) => `${which.length === 1 ? 'layer' : 'layers'} ${listLayers(which)} ${which.length === 1 ? 'sees' : 'see'} only the last ${window.toLocaleString('en-US')} tokens`);
  const nope = layers.filter((layer) => facts?.ropeLayers?.[layer] === false);
  if (nope.length) notes.push(`${nope.length === 1 ? 'layer' : 'layers'} ${listLayers(nope)} without positional encoding`);
  return notes.length ? notes.join('; ') : undefined;
}

/** "3, 7, 11" or "1-27" for a run of consecutive layers. */
function listLayers(layers: readonly number[]): string {
  const consecutive = layers.length > 2 && layers.every((layer, i) => i === 0 || layer === layers[i - 1] + 1);
  return consecutive ? `${layers[0]}-${layers[layers.length - 1]}` : layers.join(', ');
}
