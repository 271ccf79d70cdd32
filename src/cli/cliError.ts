/**
 * Errors the command line reports as one line on stderr. `exitCode` 2 means the user's input (an
 * argument, a file, a model folder) is at fault; 1 means the run itself failed.
 */
export class CliError extends Error {
  override readonly name = 'CliError';

  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 2,
  ) {
    super(message);
  }
}
