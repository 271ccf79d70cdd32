/**
 * How the panel writes numbers that the host's shared helpers (src/shared/format.ts) do not cover.
 */

/**
 * A signed number with a real minus sign, "+0.17" or "−0.42", as the editor's hover writes
 * Δ log p (src/editor/hoverProvider.ts): the sign is the point of the number, so it is always shown.
 */
export function formatSigned(value: number, digits = 2): string {
  return `${value >= 0 ? '+' : '\u2212'}${Math.abs(value).toFixed(digits)}`;
}
