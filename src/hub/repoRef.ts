/**
 * Hugging Face repo references as users write them: `org/name`, optionally `org/name@revision`.
 * Also tells a repo id from a local folder path in the `attentionLens.model` setting.
 */
import * as path from 'node:path';

export interface RepoRef {
  /** `org/name`. */
  readonly repo: string;
  /** Branch, tag or commit sha; `main` when not given. */
  readonly revision: string;
}

export const DEFAULT_REVISION = 'main';

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const REVISION = /^[A-Za-z0-9._-][A-Za-z0-9._/-]{0,255}$/;

/** Parses `org/name[@revision]`; undefined when the text is not a valid repo reference. */
export function parseRepoRef(text: string): RepoRef | undefined {
  const trimmed = text.trim();
  const at = trimmed.indexOf('@');
  const repo = at < 0 ? trimmed : trimmed.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : trimmed.slice(at + 1);
  // The hub forbids '--' and '..' in names; the cache layout (models--org--name) relies on it.
  if (!REPO_ID.test(repo) || repo.includes('..') || repo.includes('--') || repo.endsWith('.git')) return undefined;
  if (!REVISION.test(revision) || revision.split('/').some((part) => part === '' || part === '.' || part === '..')) return undefined;
  return { repo, revision };
}

/** The setting value for a repo reference: `org/name`, or `org/name@revision` for other revisions. */
export function formatRepoRef(ref: RepoRef): string {
  return ref.revision === DEFAULT_REVISION ? ref.repo : `${ref.repo}@${ref.revision}`;
}

/**
 * What a value of `attentionLens.model` (or the CLI's `--model`) names: the embedded default, a
 * local folder (absolute, or starting with `.` or `~`), or a Hugging Face repo.
 */
export type ModelChoice = { readonly kind: 'default' } | { readonly kind: 'folder'; readonly folder: string } | { readonly kind: 'repo'; readonly ref: RepoRef };

export function classifyModelSetting(value: string, home = ''): ModelChoice {
  const text = value.trim();
  if (text === '') return { kind: 'default' };
  if (text === '~' || text.startsWith('~/')) return { kind: 'folder', folder: path.join(home, text.slice(1)) };
  if (path.isAbsolute(text) || path.win32.isAbsolute(text) || text.startsWith('.')) return { kind: 'folder', folder: path.resolve(text) };
  const ref = parseRepoRef(text);
  return ref ? { kind: 'repo', ref } : { kind: 'folder', folder: path.resolve(text) };
}

/** True for a full 40-hex-digit commit sha. */
export function isCommitSha(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}
