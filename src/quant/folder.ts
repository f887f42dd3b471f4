// An output checkpoint folder that appears whole or not at all: everything is written into a hidden sibling
// (`.NAME.partial-PID-TIME`) that is renamed into place at the end; a failure removes it, and a sibling left by a
// process that was killed mid-write is removed by the next write to the same folder. The source checkpoint is
// never written: the output may not be it, contain it or lie inside it.
import { copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { UserError } from "../errors.js";

/** Files beside the weights that a quantized copy keeps: tokenizer and generation settings. */
export const COPIED_FILES: readonly string[] = [
  "tokenizer.json",
  "tokenizer.model",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "vocab.txt",
  "merges.txt",
  "generation_config.json",
  "chat_template.json",
  "chat_template.jinja",
];

/** The absolute output folder, after refusing the source itself, a folder around or inside it, or a non-empty one. */
export function checkTarget(source: string, out: string, force: boolean): string {
  const src = realpathSync(source);
  const target = realPath(out);
  if (target === src) throw new UserError("is the source checkpoint; write the quantized copy to another folder", out);
  if (src.startsWith(target + sep)) throw new UserError(`contains the source checkpoint ${source}`, out);
  if (target.startsWith(src + sep)) throw new UserError(`is inside the source checkpoint ${source}`, out);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new UserError("exists and is not a folder", out);
    if (readdirSync(target).length > 0 && !force)
      throw new UserError("exists and is not empty (use --force to replace it)", out);
  }
  return target;
}

/**
 * Write a checkpoint folder at `target` (checked by checkTarget): `fill` writes the weights and config.json into
 * the hidden partial folder, after the tokenizer and generation files of `source` were copied there.
 */
export function writeFolder(source: string, target: string, fill: (partial: string) => void): void {
  mkdirSync(dirname(target), { recursive: true });
  removeStalePartials(target);
  const partial = join(dirname(target), `${partialPrefix(target)}${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(partial);
  try {
    for (const f of readdirSync(source)) if (COPIED_FILES.includes(f)) copyFileSync(join(source, f), join(partial, f));
    fill(partial);
    publish(partial, target);
  } catch (e) {
    rmSync(partial, { recursive: true, force: true });
    throw e;
  }
}

const partialPrefix = (target: string) => `.${basename(target)}.partial-`;

/** Partial siblings of `target` whose writing process no longer exists (killed mid-write). */
function removeStalePartials(target: string): void {
  const prefix = partialPrefix(target);
  for (const name of readdirSync(dirname(target))) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1]);
    if (Number.isSafeInteger(pid) && pid > 0 && !alive(pid))
      rmSync(join(dirname(target), name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The absolute path with every link resolved, for a path whose last parts may not exist yet. */
function realPath(path: string): string {
  const absolute = resolve(path);
  if (existsSync(absolute)) return realpathSync(absolute);
  const parent = dirname(absolute);
  return parent === absolute ? absolute : join(realPath(parent), basename(absolute));
}

/** Rename the finished folder into place; an existing one is moved aside first and removed after. */
function publish(partial: string, target: string): void {
  if (!existsSync(target)) return renameSync(partial, target);
  const old = `${partial}.replaced`;
  renameSync(target, old);
  try {
    renameSync(partial, target);
  } catch (e) {
    renameSync(old, target);
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
}
