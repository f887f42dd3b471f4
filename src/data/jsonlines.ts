// JSON Lines from a downloaded data file, plain or gzip-compressed (C4's json.gz), streamed so that
// reading the first N records of a large file stops early. Strict UTF-8; faults name the line.
import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import type { Readable } from "node:stream";
import { DataError } from "./errors.js";

export async function readJsonLines(file: string, options: { gzip: boolean; max?: number }): Promise<unknown[]> {
  const raw = createReadStream(file);
  let source: Readable = raw;
  if (options.gzip) {
    const gunzip = createGunzip();
    raw.on("error", (e) => gunzip.destroy(e));
    source = raw.pipe(gunzip);
  }
  const records: unknown[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let line = 0;
  const take = (bytes: Uint8Array): boolean => {
    line++;
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw new DataError(file, `line ${line}: not valid UTF-8`, "NOT_UTF8");
    }
    if (text.trim() === "") return true;
    try {
      records.push(JSON.parse(text));
    } catch (e) {
      throw new DataError(file, `line ${line}: not valid JSON (${(e as Error).message})`, "BAD_JSON");
    }
    return options.max === undefined || records.length < options.max;
  };
  try {
    let rest: Buffer = Buffer.alloc(0);
    let more = true;
    for await (const chunk of source) {
      let buf = rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
      let nl: number;
      while (more && (nl = buf.indexOf(0x0a)) >= 0) {
        more = take(buf.subarray(0, nl));
        buf = buf.subarray(nl + 1);
      }
      rest = buf;
      if (!more) break;
    }
    if (more && rest.length) take(rest);
  } catch (e) {
    if (e instanceof DataError) throw e;
    const what = options.gzip ? "not a readable gzip file" : "cannot be read";
    throw new DataError(file, `${what} (${(e as Error).message})`, options.gzip ? "BAD_GZIP" : "FILE_UNREADABLE");
  } finally {
    raw.destroy();
  }
  return records;
}
