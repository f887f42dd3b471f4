// Text → tokens as the evaluations need them: without the special tokens the tokenizer adds to every text
// (a chat template or a window writes its own), and the harness's context/continuation split.
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import { pyStrip } from "../data/pytext.js";

/** ids of `text` without the tokens the tokenizer adds around every text (BOS, EOS): `add_special_tokens=False`. */
export type PlainEncoder = (text: string) => number[];

export function plainEncoder(tokenizer: TextTokenizer): PlainEncoder {
  // What an empty text gets, split into what goes before and after any text (found with a probe).
  const specials = tokenizer.encode(""), probe = tokenizer.encode("a");
  let before = 0;
  for (let p = specials.length; p >= 0; p--) {
    const after = specials.slice(p);
    if (specials.slice(0, p).every((id, i) => probe[i] === id) && after.every((id, i) => probe[probe.length - after.length + i] === id)) {
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
export function encodePair(encode: PlainEncoder, context: string, continuation: string, prefix: readonly number[], empty: number):
  { context: number[]; continuation: number[] } {
  const kept = rstrip(context);
  const moved = context.slice(kept.length) + continuation;
  if (kept === "") return { context: prefix.length ? [...prefix] : [empty], continuation: encode(moved) };
  const whole = encode(kept + moved), head = encode(kept);
  return { context: [...prefix, ...head], continuation: whole.slice(head.length) };
}
