// llama.cpp's byte-level BPE pre-tokenizers, by the `tokenizer.ggml.pre` names that select them, and the
// check-text hashes by which llama.cpp's converter (convert_hf_to_gguf.py) names a tokenizer.json's one.
// Read from llama.cpp's src/llama-vocab.cpp and conversion/base.py at the release inside node-llama-cpp 3.21.1.
//
// A kind is the list of regexes llama.cpp splits text with, one after the other (each piece is split again by
// the next regex; matches and the gaps between them both become pieces), plus the flags llama.cpp sets for it.
// The regexes are llama.cpp's own forms (case-insensitive groups spelled out); `\s` is Unicode White_Space,
// which is llama.cpp's whitespace set and what the tokenizer library makes of `\s` too.

export interface LlamaPreTokenizer {
  /** llama.cpp's LLAMA_VOCAB_PRE_TYPE_* without the prefix. */
  kind: string;
  regexes: readonly string[];
  /** A pre-token that is itself in the vocabulary is taken whole, without merges. */
  ignoreMerges: boolean;
  /** add_bos default when the file has no `tokenizer.ggml.add_bos_token`. */
  addBos: boolean;
  /** False where llama.cpp has no default BOS token for this kind (ChatGLM). */
  defaultBos: boolean;
}

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const TAIL = " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|${TAIL}`;
const QWEN2 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|${TAIL}`;
const QWEN35 =
  `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+` +
  "|\\s+(?!\\S)|\\s+";
// Upper/lower case as llama.cpp can test it: a letter that is not a-z / not A-Z (so any non-ASCII letter is both).
const UPPER = "((?=[\\p{L}])([^a-z]))";
const LOWER = "((?=[\\p{L}])([^A-Z]))";
const TEKKEN =
  `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*|\\p{N}` +
  "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const GPT4O =
  `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+${CONTRACTIONS}?|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*${CONTRACTIONS}?` +
  "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const kind = (name: string, regexes: string[], flags: Partial<LlamaPreTokenizer> = {}): LlamaPreTokenizer => ({
  kind: name,
  regexes,
  ignoreMerges: false,
  addBos: false,
  defaultBos: true,
  ...flags,
});

const DEFAULT = kind("DEFAULT", ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"]);
const KINDS = {
  DEFAULT,
  LLAMA3: kind("LLAMA3", [LLAMA3], { ignoreMerges: true, addBos: true }),
  DBRX: kind("DBRX", [LLAMA3]),
  CHATGLM4: kind("CHATGLM4", [LLAMA3], { defaultBos: false }),
  FALCON: kind("FALCON", ["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"]),
  STARCODER: kind("STARCODER", ["\\p{N}", GPT2]),
  GPT2: kind("GPT2", [GPT2]),
  QWEN2: kind("QWEN2", [QWEN2]),
  QWEN35: kind("QWEN35", [QWEN35]),
  TEKKEN: kind("TEKKEN", [TEKKEN], { ignoreMerges: true, addBos: true }),
  GPT4O: kind("GPT4O", [GPT4O]),
};

/** `tokenizer.ggml.pre` → kind, for the names supported here (llama.cpp knows more; those are refused). */
const BY_NAME: Record<string, LlamaPreTokenizer> = {
  default: KINDS.DEFAULT,
  ...names(KINDS.LLAMA3, "llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano"),
  ...names(KINDS.DBRX, "dbrx smaug-bpe"),
  ...names(KINDS.CHATGLM4, "glm4 chatglm-bpe"),
  falcon: KINDS.FALCON,
  ...names(KINDS.STARCODER, "starcoder refact command-r smollm codeshell exaone minerva-7b mellum2"),
  ...names(KINDS.GPT2, "gpt-2 phi-2 gigachat a.x-4.0 mellum mpt olmo jais trillion granite-docling exaone4"),
  ...names(KINDS.QWEN2, "qwen2 deepseek-r1-qwen kormo f2llmv2 megrez stablelm2 hunyuan solar-open"),
  qwen35: KINDS.QWEN35,
  tekken: KINDS.TEKKEN,
  ...names(KINDS.GPT4O, "gpt-4o llama4 kanana2 talkie minimax-m2"),
};

function names(k: LlamaPreTokenizer, list: string): Record<string, LlamaPreTokenizer> {
  return Object.fromEntries(list.split(" ").map((n) => [n, k]));
}

/** The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value (absent: "default"); undefined if unsupported. */
export function llamaPreTokenizer(pre: string | undefined): LlamaPreTokenizer | undefined {
  return pre === undefined ? DEFAULT : Object.hasOwn(BY_NAME, pre) ? BY_NAME[pre] : undefined;
}

export const SUPPORTED_PRE_NAMES: readonly string[] = Object.keys(BY_NAME);

/**
 * The name to write for a tokenizer.json whose pre-tokenizer splits with `regexes` (llama.cpp's forms) and whose
 * BPE has `ignoreMerges`, when the check-text hash named none: the first name of the kind that splits the same way.
 * Only kinds whose llama.cpp regexes mean what the Hugging Face originals mean can match (not TEKKEN, GPT4O).
 */
export function preNameForSplits(regexes: readonly string[], ignoreMerges: boolean): string | undefined {
  for (const [name, k] of Object.entries(BY_NAME)) {
    if (k === KINDS.TEKKEN || k === KINDS.GPT4O || k.ignoreMerges !== ignoreMerges) continue;
    if (k.regexes.length === regexes.length && k.regexes.every((r, i) => r === regexes[i])) return name;
  }
  return undefined;
}

/** A Hugging Face pre-tokenizer regex in llama.cpp's form (the inline case-insensitive contractions spelled out). */
export function llamaFormOfRegex(regex: string): string {
  return regex.replaceAll("(?i:'s|'t|'re|'ve|'m|'ll|'d)", CONTRACTIONS);
}

/** The GPT-2 regex, which a ByteLevel pre-tokenizer with use_regex applies (its trailing `|\s+` changes nothing). */
export const GPT2_REGEX = GPT2;

/** The text convert_hf_to_gguf.py tokenizes; sha256 of Python's str() of the ids names the pre-tokenizer. */
export const CHECK_TEXT =
  "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\u{1f680} (normal) \u{1f636}\u200d\u{1f32b}" +
  "\ufe0f (multiple emojis concatenated) \u2705 \u{1f999}\u{1f999} 3 33 333 3333 33333 333333 33333" +
  "33 33333333 3.3 3..3 3...3 \u1780\u17b6\u1793\u17cb\u178f\u17c2\u1796\u17b7\u179f\u17c1\u179f" +
  "\u17a2\u17b6\u1785\u{1f601} ?\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e ------======" +
  "= \u043d\u0435\u0449\u043e \u043d\u0430 \u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438 '" +
  "'''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'l" +
  "l make it, 'D you like some tea? We'Ve a'lL";

/** convert_hf_to_gguf.py's hash → name table, for the names supported here (model each was taken from). */
const KNOWN_HASHES: Record<string, string> = {
  "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe", // Meta-Llama-3-8B
  "9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e": "falcon3", // Falcon3-7B-Base
  a6b57017d60e6edb4d88ecc2845188e0eb333a70357e45dcc9b53964a73bbae6: "falcon-h1", // Falcon-H1-0.5B-Base
  "60476e1243776c4fb1b993dbd7a5f15ac22f83c80afdf425fa5ae01c8d44ef86": "falcon-h1", // Falcon-H1-1B-Base
  "3eda48b4c4dc7de733d1a8b3e3b4a85243dbbf704da2ee9d42c6beced8897896": "falcon-h1", // Falcon-H1-7B-Base
  "48f8e02c0359c0bbdd82f26909171fac1c18a457bb47573ed1fe3bbb2c1cfd4b": "falcon-h1", // Falcon-H1-34B-Base
  "0e9433cbbb161f89e264eb32e8e64bfe69e834973ffca5d41d3948a604a3e2a3": "pixtral", // pixtral-12b
  f6791d196f87ce6b56a7d234be618e0d58f8cda3549416635b2bebcd22cd95c4: "midm-2.0", // Midm-2.0-Base-Instruct
  "9e454714343b69b99b71795c1d27a68c2a1d15dab111f4d353109f966af29da7": "lfm2", // LFM2.5-8B-A1B
  "169bf0296a13c4d9b7672313f749eb36501d931022de052aad6e36f2bf34dd51": "lfm2", // LFM2.5-350M
  a023e9fdc5a11f034d3ef515b92350e56fb2af1f66c6b6811a4444ea9bf8763d: "jina-v5-nano", // jina-embeddings-v5-text-nano
  a8594e3edff7c29c003940395316294b2c623e09894deebbc65f33f1515df79e: "dbrx", // dbrx-base
  c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d: "smaug-bpe", // Smaug-Llama-3-70B-Instruct
  b6e8e1518dc4305be2fe39c313ed643381c4da5db34a98f6a04c093f8afbe99b: "chatglm-bpe", // glm-4-9b-chat
  "81d72c7348a9f0ebe86f23298d37debe0a5e71149e29bd283904c02262b27516": "chatglm-bpe", // glm-4-9b-chat
  a1336059768a55c99a734006ffb02203cd450fed003e9a71886c88acf24fdbc2: "glm4", // glm-4-9b-hf
  "9ca2dd618e8afaf09731a7cf6e2105b373ba6a1821559f258b272fe83e6eb902": "glm4", // GLM-4.5-Air
  cdf5f35325780597efd76153d4d1c16778f766173908894c04afc20108536267: "glm4", // GLM-4.7-Flash
  "8aeee3860c56296a157a1fe2fad249ec40aa59b1bb5709f4ade11c4e6fe652ed": "falcon", // falcon-7b
  "35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34": "starcoder", // starcoder2-3b
  "6221ad2852e85ce96f791f476e0b390cf9b474c9e3d1362f53a24a06dc8220ff": "refact", // Refact-1_6-base
  "9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8": "command-r", // c4ai-command-r-v01
  "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm", // SmolLM-135M
  "7b3e7548e4308f52a76e8229e4e6cc831195d0d1df43aed21ac6c93da05fec5f": "codeshell", // CodeShell-7B
  "4e2b24cc4770243d65a2c9ec19770a72f08cffc161adbb73fcbb6b7dd45a0aae": "exaone", // EXAONE-3.0-7.8B-Instruct
  "1431a23e583c97432bc230bff598d103ddb5a1f89960c8f1d1051aaa944d0b35": "minerva-7b", // Minerva-7B-base-v1.0
  "9dcf830ee9990cdbf78cc523a5f7bd9ad8f3f9890c2d3581d2785ad10f07049d": "mellum2", // Mellum2-12B-A2.5B-Base
  "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2", // openai-community/gpt2
  "0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4": "gpt-2", // ruGPT3XL
  fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085: "phi-2", // phi-2
  ad851be1dba641f2e3711822f816db2c265f788b37c63b4e1aeacb9ee92de8eb: "gigachat", // GigaChat-20B-A3B-instruct
  b0a6b1c0bd5998ebd9df08611efde34a4ff03faed45ae09c43e6b31ebd4b94cf: "a.x-4.0", // A.X-4.0
  a1e163ecab2e718a4c829d1148b6e86824ec36163bb71941c3dca9cd5ac25756: "mellum", // Mellum-4b-base
  b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166: "olmo", // mpt-7b, OLMo-1.7-7B (last wins)
  b53802fb28e26d645c3a310b34bfe07da813026ec7c7716883404d5e0f8b1901: "jais", // jais-13b
  "1994ffd01900cfb37395608534236ecd63f2bd5995d6cb1004dda1af50240f15": "trillion", // Trillion-7B-preview
  "53e325976a6e142379c19b09afcae354f2f496f147afa8f9e189a33fe4e3024e": "granite-docling", // granite-docling-258M
  "2085e1638f6c377a0aa4ead21b27bb4cb941bf800df86ed391011769c1758dfb": "exaone4", // EXAONE-4.0-32B
  d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c: "qwen2", // Qwen3-Embedding-0.6B
  e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea: "qwen2", // Qwen1.5-7B
  b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5: "deepseek-r1-qwen", // R1-Distill-Qwen-1.5B
  "4a2e2abae11ca2b86d570fc5b44be4d5eb5e72cc8f22dd136a94b37da83ab665": "kormo", // KORMo-tokenizer
  "862f827721df956049dff5ca81a57f29e575280bc622e290d3bf4e35eca29015": "f2llmv2", // F2LLM-v2-4B
  d4c8f286ea6b520b3d495c4455483cfa2302c0cfcd4be05d781b6a8a0a7cdaf1: "megrez", // Megrez-3B-Instruct
  "32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3": "stablelm2", // stablelm-2-zephyr-1_6b
  "7e57df22b1fe23a7b1e1c7f3dc4e3f96d43a4eb0836d0c6bdc3436d7b2f1c664": "hunyuan", // Hunyuan-A13B-Instruct
  "16389f0a1f51ee53e562ffd51c371dc508639ab0e4261502071836e50e223e91": "solar-open", // Solar-Open-100B
  "1444df51289cfa8063b96f0e62b1125440111bc79a52003ea14b6eac7016fd5f": "qwen35", // MiniCPM-V-4_6
  d30d75d9059f1aa2c19359de71047b3ae408c70875e8a3ccf8c5fba56c9d8af4: "qwen35", // Qwen3.5-9B-Instruct
  "63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e": "tekken", // Mistral-Nemo-Base-2407
  ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e: "gpt-4o", // Xenova/gpt-4o
  d353350c764d8c3b39c763113960e4fb4919bea5fbf208a0e3b22e8469dc7406: "llama4", // Llama-4-Scout-17B-16E-Instruct
  e4d54df1ebc1f2b91acd986c5b51aa50837d5faf7c7398e73c1f9e9ee5d19869: "kanana2", // kanana-2-30b-a3b-instruct-2601
  f728162c1315c26e40249849799b4ba3fe584c32084b4795b03eb295e63cb5af: "talkie", // talkie-1930-13b-it-hf
  f4f37b6c8eb9ea29b3eac6bb8c8487c5ab7885f8d8022e67edc1c68ce8403e95: "minimax-m2", // MiniMax-M2
};

/** The converter's name for a check-text hash, when it is one of the supported names. */
export function preNameForHash(hash: string): string | undefined {
  return Object.hasOwn(KNOWN_HASHES, hash) ? KNOWN_HASHES[hash] : undefined;
}
