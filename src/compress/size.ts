// What a quantization costs on disk, from the packed layout (docs/quantized-format.md): codes, per-block scale and
// minimum, held-out indices and values for each quantized weight; every other tensor as the source stores it.
import type { Model } from "../engine/model.js";
import { packedTensorBytes } from "../quant/format.js";
import { codeBits, geometry, type Scheme } from "../quant/scheme.js";
import type { SelectedTensor } from "./tensors.js";

export interface LayoutSize {
  /** Bytes of the quantized tensors (in the source's storage for the unquantized model). */
  quantizedBytes: number;
  /** Every tensor of the checkpoint. */
  totalBytes: number;
  /** 8 · quantizedBytes / the quantized tensors' elements. */
  bitsPerWeight: number;
}

/** The sizes of the model with `tensors` quantized under `scheme` (held out: `kept(tensor)` weights each), or as
 * it is stored when `scheme` is null. */
export function layoutSize(
  model: Model,
  tensors: readonly SelectedTensor[],
  scheme: Scheme | null,
  kept: (tensor: string) => number = () => 0,
): LayoutSize {
  const all = model.source.names().reduce((sum, n) => sum + model.source.info(n).bytes, 0);
  const source = tensors.reduce((sum, t) => sum + t.sourceBytes, 0);
  const elements = tensors.reduce((sum, t) => sum + t.elements, 0);
  const quantizedBytes = scheme
    ? tensors.reduce((sum, t) => {
        const g = geometry(scheme.block, t.shape);
        return sum + packedTensorBytes(g.elements, g.blocks, codeBits(scheme), kept(t.name));
      }, 0)
    : source;
  return { quantizedBytes, totalBytes: all - source + quantizedBytes, bitsPerWeight: (8 * quantizedBytes) / elements };
}
