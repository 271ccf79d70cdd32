/**
 * The error every model reader throws for a file it cannot use: a missing or malformed
 * config.json, a corrupt safetensors file, a missing tensor. Its message names the file, says what
 * is wrong and what to do; `file` lets a UI point at the file.
 */
export class ModelFormatError extends Error {
  override readonly name = 'ModelFormatError';

  constructor(
    /** The file at fault, as the model source names it (e.g. "/models/x/model.safetensors"). */
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}
