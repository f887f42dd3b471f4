// Errors for data files (a user's task file, a downloaded data set): the file, where in it
// ("line 3: …", "row 12: …") and what is wrong, with one UPPER_SNAKE code per fault.
import { UserError } from "../errors.js";

export class DataError extends UserError {
  constructor(
    file: string,
    message: string,
    readonly code: string,
  ) {
    super(message, file);
    this.name = "DataError";
  }
}
