// --limit N: the first N items of a task (or windows of a corpus), in file order.
import { UserError } from "../errors.js";

export interface LoadOptions {
  /** The first N items (corpora: windows), in file order. */
  limit?: number;
}

export function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
    throw new UserError(`--limit ${limit}: expected a positive whole number of items`);
  }
}
