/**
 * Errors of the model download, each with a `kind` the UI can act on and a message that says what
 * happened and what to do. No message ever contains the access token.
 */

export type HubErrorKind =
  /** The endpoint cannot be reached (no network, DNS, refused, timed out). */
  | 'offline'
  /** 401: the repo is private or gated and no (valid) token was sent. */
  | 'unauthorized'
  /** 403: the token lacks access, or the model's license must be accepted on its page first. */
  | 'forbidden'
  /** 404: no such repo, revision or file. */
  | 'notFound'
  /** A downloaded file's sha256 differs from the hub's, twice in a row. */
  | 'hashMismatch'
  /** Not enough free space in the cache, before or during the download. */
  | 'diskFull'
  /** The user cancelled; partial files stay for a later resume. */
  | 'cancelled'
  /** config.json names an architecture the engines do not run. */
  | 'unsupportedArchitecture'
  /** The repo has no files Attention Lens can load (e.g. only pickled weights), or its files are malformed. */
  | 'unusableModel'
  /** The server answered something a hub does not (unexpected status, bad JSON). */
  | 'badResponse';

export class HubError extends Error {
  override readonly name = 'HubError';

  constructor(
    readonly kind: HubErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export function isHubError(error: unknown, kind?: HubErrorKind): error is HubError {
  return error instanceof HubError && (kind === undefined || error.kind === kind);
}
