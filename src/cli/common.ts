// What every command shares: turning the model argument into an open model (folder, Hugging Face cache
// id, or --demo), and the token inputs (--prompt through the model's tokenizer, or --ids).
import { UserError } from "../errors.js";
import { Model } from "../engine/model.js";
import { resolveModel, modelIdFromConfig } from "../checkpoint/resolve.js";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer.js";
import { tokenizerFromGguf } from "../tokenizer/gguf-vocab.js";
import { GgufCheckpoint } from "../gguf/source.js";
import { ensureDemo } from "../demo/demo.js";
import { getBackend } from "../engine/matmul.js";
import { downloadProgress } from "../report/progress.js";
import type { Command } from "commander";

/** Where a command's result goes: stdout. A test that runs a command in its own process points it elsewhere. */
export const output = { write: (text: string): void => void process.stdout.write(text) };

export interface ModelOptions {
  demo?: boolean;
  download?: boolean;
  revision?: string;
  offline?: boolean;
  modelId?: string;
  /** --allow-non-finite: go on past NaN or infinite values instead of stopping at the first. */
  allowNonFinite?: boolean;
}

export const ALLOW_NON_FINITE = [
  "--allow-non-finite",
  "go on when a NaN or an infinity appears (default: stop and name the tensor that holds it)",
] as const;

/** The options every command that opens a model shares (after its own). */
export function modelOptions(command: Command): Command {
  return command
    .option("--demo", "use the embedded demo model (built on first use, no download)")
    .option("--download", "download the model from the Hugging Face Hub when it is not in the local cache")
    .option("--revision <rev>", "the Hub revision (branch, tag or commit) of a model id (same as id@rev)")
    .option("--offline", "never use the network (as HF_HUB_OFFLINE=1)")
    .option(...ALLOW_NON_FINITE);
}

export interface OpenedModel {
  model: Model;
  /** What the user named it (folder or id), for output. */
  label: string;
  /** Hugging Face model id when known (cache path, --model-id, or config.json's _name_or_path). */
  modelId?: string;
  tokenizer?: TextTokenizer;
  /** Why the folder's tokenizer could not be loaded: an error only when text must be tokenized. */
  tokenizerError?: UserError;
}

/** The model's tokenizer (a GGUF file carries its own); a broken one is kept as an error, so that runs on
 * token ids still work. */
function tokenizerOf(model: Model): Pick<OpenedModel, "tokenizer" | "tokenizerError"> {
  try {
    const { source } = model;
    if (source instanceof GgufCheckpoint) {
      const metadata = Object.fromEntries([...source.metadata].map(([key, kv]) => [key, kv.value]));
      return { tokenizer: "tokenizer.ggml.model" in metadata ? tokenizerFromGguf(metadata, source.path) : undefined };
    }
    return { tokenizer: loadTokenizer(model.path) };
  } catch (e) {
    if (e instanceof UserError) return { tokenizerError: e };
    throw e;
  }
}

export async function openModel(ref: string | undefined, o: ModelOptions): Promise<OpenedModel> {
  if (o.demo && ref) throw new UserError(`give either a model or --demo, not both (got "${ref}")`);
  if (!o.demo && !ref)
    throw new UserError("no model given: pass a checkpoint folder, a Hugging Face model id, or --demo");
  if (o.allowNonFinite) process.env.SUPERWEIGHT_ALLOW_NON_FINITE = "1";
  const folder = o.demo ? await ensureDemo() : undefined;
  const resolved = folder
    ? { folder, modelId: "superweight/demo" }
    : await resolveModel(ref!, {
        download: o.download,
        revision: o.revision,
        offline: o.offline,
        onProgress: downloadProgress(),
      });
  const model = Model.open(resolved.folder);
  const backend = await getBackend();
  if (backend.fallbackReason)
    process.stderr.write(
      `superweight: warning: ${backend.fallbackReason}; using the plain TypeScript products (much slower)\n`,
    );
  return {
    model,
    label: o.demo ? "demo" : ref!,
    modelId: o.modelId ?? resolved.modelId ?? modelIdFromConfig(resolved.folder),
    ...tokenizerOf(model),
  };
}

/** "1,2,3" (or "1 2 3") → [1, 2, 3]; anything else, an empty entry included, is an error naming the option. */
export function parseIds(text: string, option = "--ids"): number[] {
  const trimmed = text.trim();
  if (!trimmed) throw new UserError(`${option} "${text}" holds no token ids`);
  const parts = trimmed.split(/\s*,\s*|\s+/);
  if (parts.some((p) => p === ""))
    throw new UserError(`${option} "${text}" has an empty entry (two commas, or a comma at an end)`);
  return parts.map((p) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || !Number.isSafeInteger(n))
      throw new UserError(`${option}: "${p}" is not a token id (a non-negative integer)`);
    return n;
  });
}

export interface Input {
  /** The prompt text, or the ids as text. */
  label: string;
  ids: number[];
}

/** The inputs from repeatable --prompt / --ids options (or a default prompt when neither is given). */
export function inputs(opened: OpenedModel, prompts: string[], idLists: string[], defaultPrompt?: string): Input[] {
  const out: Input[] = idLists.map((s) => ({ label: `ids ${s}`, ids: parseIds(s) }));
  const texts = prompts.length || idLists.length ? prompts : defaultPrompt !== undefined ? [defaultPrompt] : [];
  for (const text of texts) {
    if (opened.tokenizerError) throw opened.tokenizerError;
    if (!opened.tokenizer)
      throw new UserError(
        `${opened.model.path} has no tokenizer.json, so --prompt cannot be tokenized: give token ids with --ids 1,2,3`,
      );
    const ids = opened.tokenizer.encode(text);
    const onlyBos = ids.length === 1 && ids[0] === opened.model.spec.bosTokenId;
    if (!ids.length || onlyBos)
      throw new UserError(
        `the prompt ${JSON.stringify(text)} tokenizes to no tokens${onlyBos ? " (only the BOS token)" : ""}`,
      );
    out.push({ label: text, ids });
  }
  if (!out.length) throw new UserError("nothing to run: give --prompt TEXT or --ids 1,2,3");
  for (const input of out) {
    const bad = input.ids.find((id) => id >= opened.model.spec.vocab);
    if (bad !== undefined)
      throw new UserError(
        `token id ${bad} is outside the vocabulary of ${opened.model.path} (0..${opened.model.spec.vocab - 1})`,
      );
  }
  return out;
}

/** Progress goes to stderr only when it is a terminal, as src/report/progress.ts decides: SUPERWEIGHT_PROGRESS=0
 * silences it, =1 prints it anywhere. (`json` no longer changes the answer: --json output is on stdout, progress
 * on stderr; the argument stays for the commands that pass it.) */
export function quietProgress(_json?: boolean): boolean {
  const mode = process.env.SUPERWEIGHT_PROGRESS;
  return mode === "0" || (mode !== "1" && !process.stderr.isTTY);
}

/** Collect a repeatable option's values. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Parse a number option, with its name in the error. */
export function numberOption(name: string, check: (n: number) => boolean, must: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || !check(n))
      throw new UserError(`${name} ${value}: must be ${must}`);
    return n;
  };
}
