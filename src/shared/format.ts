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
