// Text → tokens as the evaluations need them: without the special tokens the tokenizer adds to every text
// (a chat template or a window writes its own), the harness's context/continuation split, and a prompt
// through the model's chat template.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import type { Model } from "../engine/model.js";
import { GgufCheckpoint } from "../gguf/source.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import { chatTemplateOf, chatTokensOf, renderChat, type ChatOptions } from "../tokenizer/chat.js";
import { pyStrip } from "../data/pytext.js";

/** ids of `text` without the tokens the tokenizer adds around every text (BOS, EOS): `add_special_tokens=False`. */
export type PlainEncoder = (text: string) => number[];

export function plainEncoder(tokenizer: TextTokenizer): PlainEncoder {
  // What an empty text gets, split into what goes before and after any text (found with a probe).
  const specials = tokenizer.encode(""),
    probe = tokenizer.encode("a");
  let before = 0;
  for (let p = specials.length; p >= 0; p--) {
    const after = specials.slice(p);
    if (
      specials.slice(0, p).every((id, i) => probe[i] === id) &&
      after.every((id, i) => probe[probe.length - after.length + i] === id)
    ) {
      before = p;
      break;
    }
  }
  const after = specials.length - before;
  return (text) => {
    const ids = tokenizer.encode(text);
    return ids.slice(before, ids.length - after);
  };
}

/** Python's str.rstrip(): the leading "x" keeps pyStrip from touching the front. */
const rstrip = (s: string) => pyStrip(`x${s}`).slice(1);

/**
 * lm-evaluation-harness's _encode_pair: trailing whitespace of the context moves onto the continuation;
 * the continuation's tokens are those of context + continuation after the context's own tokens. `prefix`
 * starts every context (the BOS with add_bos_token, else nothing); `empty` stands in for an empty context
 * (the harness's prefix_token_id).
 */
export function encodePair(
  encode: PlainEncoder,
  context: string,
  continuation: string,
  prefix: readonly number[],
  empty: number,
): { context: number[]; continuation: number[] } {
  const kept = rstrip(context);
  const moved = context.slice(kept.length) + continuation;
  if (kept === "") return { context: prefix.length ? [...prefix] : [empty], continuation: encode(moved) };
  const whole = encode(kept + moved),
    head = encode(kept);
  return { context: [...prefix, ...head], continuation: whole.slice(head.length) };
}

/** A model's chat template with the special tokens it refers to, and where it came from (for errors). */
export interface ChatTemplate {
  template: string;
  options: ChatOptions;
  label: string;
}

/** The chat template of a model: tokenizer_config.json's `chat_template` (a folder), or a GGUF's
 * tokenizer.chat_template with its bos/eos tokens. */
export function chatTemplateFor(model: Model): ChatTemplate {
  const { source } = model;
  if (source instanceof GgufCheckpoint) {
    const meta = source.metadata;
    const template = meta.get("tokenizer.chat_template")?.value;
    if (typeof template !== "string")
      throw new UserError("has no tokenizer.chat_template, so --chat has no template to apply", source.path);
    const tokens = meta.get("tokenizer.ggml.tokens")?.value as unknown[] | undefined;
    const token = (key: string) => {
      const id = meta.get(key)?.value;
      return typeof id === "number" || typeof id === "bigint"
        ? (tokens?.[Number(id)] as string | undefined)
        : undefined;
    };
    return {
      template,
      label: source.path,
      options: { bosToken: token("tokenizer.ggml.bos_token_id"), eosToken: token("tokenizer.ggml.eos_token_id") },
    };
  }
  const file = join(model.path, "tokenizer_config.json");
  if (!existsSync(file)) throw new UserError("is missing, so --chat has no template to apply", file);
  let config: Record<string, unknown>;
  try {
    // Stryker disable next-line StringLiteral: equivalent, JSON.parse reads a Buffer as its UTF-8 text.
    config = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new UserError(`is not valid JSON (${(e as Error).message})`, file);
  }
  const template = chatTemplateOf(config, "default", file);
  if (template === undefined) throw new UserError("has no chat_template, so --chat has no template to apply", file);
  return { template, label: file, options: chatTokensOf(config) };
}

/** One user turn through the template, ending with the assistant's header, tokenized as apply_chat_template
 * does (the template writes the special tokens itself). */
export function chatPromptIds(encode: PlainEncoder, chat: ChatTemplate, text: string): number[] {
  return encode(
    renderChat(chat.template, [{ role: "user", content: text }], {
      ...chat.options,
      addGenerationPrompt: true,
      label: chat.label,
    }),
  );
}
