/** An error a user can act on: it names the file (or option) and what is wrong with it. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = "UserError";
  }
}

/** A checkpoint that cannot be trusted: bad header, missing tensor, wrong shape, truncated file. */
export class CheckpointError extends UserError {
  constructor(
    file: string,
    message: string,
    readonly code: string,
  ) {
    super(message, file);
    this.name = "CheckpointError";
  }
}
