// A compressed checkpoint written to disk: the packed format (rtn, nf4 codes; docs/quantized-format.md) or plain
// safetensors of the dequantized weights, with the chosen tensors quantized and the super weights held out
// exactly; and the typed report of a `quantize` run (what was written, what was compared), for src/report/.
import type { Model } from "../engine/model.js";
import { Checkpoint } from "../checkpoint/checkpoint.js";
import { UserError } from "../errors.js";
import type { WriteBytes } from "../checkpoint/writer.js";
import { writeDequantizedCheckpoint } from "../quant/dequantized-writer.js";
import type { KeptWeight } from "../quant/format.js";
import { writePackedCheckpoint } from "../quant/packed-writer.js";
import type { Scheme } from "../quant/scheme.js";
import type { QuantizeComparison } from "./compare.js";
import { layoutSize, type LayoutSize } from "./size.js";
import { includeOf, keepRequests, keptIndices, selectTensors, type HeldWeight, type Selection } from "./tensors.js";
import { schemeText } from "./weights.js";

export const QUANTIZE_REPORT_VERSION = 1;

export type CompressedFormat = "packed" | "dequantized";

export interface WriteRequest {
  format: CompressedFormat;
  scheme: Scheme;
  selection?: Selection;
  held: HeldWeight[];
  /** dequantized: the stored dtype. */
  dtype?: "BF16" | "F16";
  force?: boolean;
  /** Tests: how bytes reach the files (one that fails), and the largest shard. */
  write?: WriteBytes;
  maxShardBytes?: number;
}

export interface WrittenCheckpoint {
  folder: string;
  format: CompressedFormat;
  /** "rtn4 block 128 clip none", and the dtype of a dequantized checkpoint. */
  scheme: string;
  dtype?: "BF16" | "F16";
  /** The quantized tensors (stored names). */
  tensors: string[];
  elements: number;
  /** The packed layout's sizes (a dequantized checkpoint stores 16 bits per weight instead). */
  size: LayoutSize;
  /** Bytes of the tensors in the folder's safetensors files. */
  writtenBytes: number;
  sourceBytes: number;
  kept: KeptWeight[];
  seconds: number;
}

/** The safetensors folder a model was opened from, refusing anything else (a GGUF file, a packed checkpoint). */
export function safetensorsSource(model: Model): string {
  if (!(model.source instanceof Checkpoint))
    throw new UserError("is not a safetensors checkpoint folder: quantize a Hugging Face folder", model.path);
  return model.path;
}

export function writeCompressed(model: Model, out: string, r: WriteRequest): WrittenCheckpoint {
  const t0 = performance.now();
  const source = safetensorsSource(model);
  const tensors = selectTensors(model, r.selection);
  if (!tensors.length) throw new UserError("has no weight to quantize", model.path);
  const options = {
    scheme: r.scheme,
    keep: keepRequests(r.held),
    include: includeOf(tensors),
    force: r.force,
    write: r.write,
    maxShardBytes: r.maxShardBytes,
  };
  const summary =
    r.format === "packed"
      ? writePackedCheckpoint(source, out, options)
      : writeDequantizedCheckpoint(source, out, { ...options, dtype: r.dtype ?? "BF16" });
  return {
    folder: summary.folder,
    format: r.format,
    scheme: schemeText(r.scheme),
    ...(r.format === "dequantized" ? { dtype: r.dtype ?? "BF16" } : {}),
    tensors: tensors.map((t) => t.stored),
    elements: tensors.reduce((s, t) => s + t.elements, 0),
    size: layoutSize(model, tensors, r.scheme, (t) => keptIndices(r.held, t).length),
    writtenBytes: summary.tensors.reduce((s, t) => s + t.bytes, 0),
    sourceBytes: summary.tensors.reduce((s, t) => s + t.sourceBytes, 0),
    kept: summary.kept,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Everything a `quantize` run with --format rtn, nf4 or dequantized did: what `--json` prints. */
export interface QuantizeReport {
  kind: "quantize";
  version: typeof QUANTIZE_REPORT_VERSION;
  model: string;
  format: "rtn" | "nf4" | "dequantized";
  superWeights: { source: "scan" | "keep" | "none"; held: HeldWeight[] };
  written: WrittenCheckpoint | null;
  comparison: QuantizeComparison | null;
}

export function quantizeReport(
  model: Model,
  format: QuantizeReport["format"],
  superWeights: QuantizeReport["superWeights"],
  written: WrittenCheckpoint | null,
  comparison: QuantizeComparison | null,
): QuantizeReport {
  return {
    kind: "quantize",
    version: QUANTIZE_REPORT_VERSION,
    model: model.path,
    format,
    superWeights,
    written,
    comparison,
  };
}
