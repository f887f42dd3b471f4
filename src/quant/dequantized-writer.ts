// Writing a quantized model as a plain safetensors checkpoint any Hugging Face tool loads: every quantized weight
// stored as its dequantized values (what the packed reader returns: ŵ with the held-out weights exact) rounded to
// bf16 or f16, every other tensor copied byte for byte. Streamed chunk by chunk like the packed writer, into a
// folder that appears whole or not at all; the source is never written.
import { writeCheckpoint, type RawTensorToWrite, type TensorToWrite } from "../checkpoint/writer.js";
import type { FloatDtype } from "../checkpoint/dtype.js";
import { checkTarget, writeFolder } from "./folder.js";
import { formatClip, checkScheme, codeBits, type Scheme } from "./scheme.js";
import {
  copyBytes,
  MAX_SHARD_BYTES,
  openUnquantized,
  planQuantization,
  type PackOptions,
  type PackSummary,
} from "./packed-writer.js";

/** Config.json's record of where the weights came from (not `quantization`: the folder reads as a plain one). */
export const DEQUANTIZED_SECTION = "superweight_dequantized";

export interface DequantizeOptions extends PackOptions {
  /** The dtype the dequantized weights are stored in. */
  dtype: Extract<FloatDtype, "BF16" | "F16">;
}

export function writeDequantizedCheckpoint(source: string, out: string, options: DequantizeOptions): PackSummary {
  checkScheme(options.scheme);
  const ckpt = openUnquantized(source);
  try {
    const target = checkTarget(source, out, options.force ?? false);
    const plan = planQuantization(ckpt, options);
    const tensors: (TensorToWrite | RawTensorToWrite)[] = plan.map((t) => {
      const { name, info } = t;
      if (t.copy) return { name, dtype: info.dtype, shape: info.shape, bytes: () => copyBytes(ckpt, info) };
      return { name, dtype: options.dtype, shape: info.shape, data: () => t.job.dequantized() };
    });
    const kept = plan.flatMap((t) => (t.copy ? [] : t.kept));
    const config = {
      ...ckpt.config,
      torch_dtype: options.dtype === "BF16" ? "bfloat16" : "float16",
      [DEQUANTIZED_SECTION]: provenance(
        options.scheme,
        plan.filter((t) => !t.copy).map((t) => t.name),
        kept,
      ),
    };
    const sharding = { maxBytes: options.maxShardBytes ?? MAX_SHARD_BYTES };
    writeFolder(source, target, (partial) => writeCheckpoint(partial, config, tensors, sharding, {}, options.write));
    const summary = plan.map((t) => {
      const sourceBytes = t.info.byteLength;
      const bytes = t.copy ? sourceBytes : t.info.shape.reduce((a, b) => a * b, 1) * 2;
      return { name: t.name, dtype: t.copy ? t.info.dtype : options.dtype, bytes, sourceBytes };
    });
    return { folder: target, tensors: summary, kept };
  } finally {
    ckpt.close();
  }
}

function provenance(scheme: Scheme, tensors: string[], kept: PackSummary["kept"]) {
  return {
    scheme: scheme.kind,
    bits: codeBits(scheme),
    ...(scheme.kind === "nf4" ? { nf4_range: scheme.range } : {}),
    block: scheme.block,
    clip: formatClip(scheme.clip),
    tensors,
    kept,
  };
}
