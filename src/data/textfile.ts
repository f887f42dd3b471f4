// Reading a user's text file whole: bounded size, strict UTF-8 (the first bad line is named), no BOM.
import { readFileSync, statSync } from "node:fs";
import { DataError } from "./errors.js";

/** Larger files are refused rather than read into memory. */
export const MAX_FILE_BYTES = 1024 * 1024 * 1024;

export function readUtf8File(file: string): string {
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw new DataError(file, "is a folder, not a file", "FILE_UNREADABLE");
    size = st.size;
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(
      file,
      `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      "FILE_UNREADABLE",
    );
  }
  if (size > MAX_FILE_BYTES) {
    throw new DataError(file, `is ${size} bytes, over the ${MAX_FILE_BYTES}-byte limit`, "FILE_TOO_LARGE");
  }
  const bytes = readFileSync(file);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes); // drops a leading BOM
  } catch {
    const line = firstBadLine(bytes);
    throw new DataError(file, `line ${line.number}: not valid UTF-8 (byte ${line.offset} of the file)`, "NOT_UTF8");
  }
}

/** Lines without their "\n" or "\r\n"; a final newline does not start another line. */
export function splitLines(text: string): string[] {
  const lines = text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** 0x0A never occurs inside a UTF-8 sequence, so lines can be checked one by one. */
function firstBadLine(bytes: Uint8Array): { number: number; offset: number } {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let start = 0;
  for (let number = 1; ; number++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    try {
      decoder.decode(bytes.subarray(start, end));
    } catch {
      return { number, offset: start + firstBadByte(bytes.subarray(start, end)) };
    }
    start = end + 1;
  }
}

function firstBadByte(line: Uint8Array): number {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let good = 0;
  for (let end = 1; end <= line.length; end++) {
    try {
      decoder.decode(line.subarray(good, end));
      good = end;
    } catch {
      if (end - good >= 4) return good; // no UTF-8 sequence is longer than 4 bytes
    }
  }
  return good;
}
