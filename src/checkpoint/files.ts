// Opening the files of a checkpoint safely: only regular files (a named pipe would block forever, a device
// would read without end), only inside the folder given (an index naming "../x" or "/etc/passwd" is refused;
// symlinks — the Hugging Face cache layout — are followed), bounded sizes for text files, and every I/O
// error turned into a one-line CheckpointError that names the file.
import { lstatSync, readFileSync, statSync, type Stats } from "node:fs";
import { isAbsolute, join, normalize, sep } from "node:path";
import { CheckpointError } from "../errors.js";

/** Whether something exists at `path` (a dangling symlink counts: it is reported, not ignored). */
export function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The stat of a regular file (symlinks followed); a CheckpointError naming it otherwise. */
export function regularFile(path: string): Stats {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && exists(path))
      throw new CheckpointError(path, "is a symlink to nothing (a half-deleted download?)", "BROKEN_LINK");
    if (code === "ELOOP") throw new CheckpointError(path, "is a symlink loop", "BROKEN_LINK");
    if (code === "ENOENT") throw new CheckpointError(path, "does not exist", "MISSING_FILE");
    throw new CheckpointError(path, `cannot be read: ${(e as Error).message}`, "IO");
  }
  if (!stats.isFile()) {
    const kind = stats.isDirectory()
      ? "a folder"
      : stats.isFIFO()
        ? "a named pipe"
        : stats.isSocket()
          ? "a socket"
          : stats.isCharacterDevice() || stats.isBlockDevice()
            ? "a device"
            : "not a file";
    throw new CheckpointError(path, `is ${kind}, not a regular file`, "NOT_A_FILE");
  }
  return stats;
}

/** A text file of at most `maxBytes`, decoded as UTF-8 (invalid bytes are an error). */
export function readText(path: string, maxBytes = 64 * 1024 * 1024): string {
  const { size } = regularFile(path);
  if (size > maxBytes)
    throw new CheckpointError(
      path,
      `is ${size} bytes, more than the ${maxBytes} a file of this kind may hold`,
      "FILE_TOO_LARGE",
    );
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(path, `cannot be read: ${(e as Error).message}`, "IO");
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new CheckpointError(path, "is not valid UTF-8 text", "NOT_UTF8");
  }
}

/** A JSON object from a text file; `code` names the fault in errors. */
export function readJsonObject(path: string, code: string): Record<string, unknown> {
  const text = readText(path);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(path, `not valid JSON (${(e as Error).message})`, code);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new CheckpointError(path, "is not a JSON object", code);
  return value as Record<string, unknown>;
}

/**
 * `name` (from an index or a listing) as a path inside `folder`: relative, without ".." segments, so that
 * nothing outside the folder is opened by name. `from` is the file that gave the name, for the error.
 */
export function inside(folder: string, name: string, from: string): string {
  const parts = normalize(name).split(sep);
  if (name === "" || isAbsolute(name) || name.includes("\0") || parts.includes(".."))
    throw new CheckpointError(
      from,
      `names file ${JSON.stringify(name)}, which is outside the checkpoint folder`,
      "OUTSIDE_FOLDER",
    );
  return join(folder, name);
}
