// The tensor-source contract: what a checkpoint reader gives the engine. A safetensors folder is one source;
// a packed quantized checkpoint and a GGUF file are others. A source names tensors in Hugging Face terms,
// knows their shapes and storage, and reads a block of rows as float32 — never the whole file.

/** config.json as parsed, or its equivalent rebuilt from a file's metadata (transformers' field names). */
export type RawConfig = Record<string, unknown>;

export interface SourceTensor {
  /** Canonical Hugging Face name, e.g. "model.layers.1.mlp.down_proj.weight". */
  name: string;
  /** Shape as `readRows` lays the tensor out (row-major; a row is the product of the trailing dims). */
  shape: number[];
  /** Storage type as the file has it ("F32", "BF16", "Q4_K", "rtn4", …): for messages and reports. */
  dtype: string;
  /** Bytes the tensor occupies in the file(s) (for throughput figures). */
  bytes: number;
  /** How a 2-D weight's rows read: "nk" = [out, in] (torch Linear), "kn" = [in, out] (GPT-2's Conv1D as
   * Hugging Face stores it). Absent: as the architecture stores that tensor. */
  layout?: "nk" | "kn";
}

export interface TensorSource {
  /** Folder or file, for messages. */
  readonly path: string;
  readonly config: RawConfig;
  /** Where `config` comes from (config.json, or the file whose metadata it was rebuilt from), for messages. */
  readonly configFile: string;
  names(): string[];
  /** Throws a CheckpointError (MISSING_TENSOR) naming the tensor when it is absent. */
  info(name: string): SourceTensor;
  /**
   * Rows [r0, r1) as float32, the exact value of what is stored. Into `out` when given (length ≥ the rows'
   * elements); else into a buffer the reader owns, valid until its next read.
   */
  readRows(name: string, r0: number, r1: number, out?: Float32Array): Float32Array;
  /** The file that holds a tensor (a shard, a split part), for messages; the source's path when it is one file. */
  fileOf(name: string): string;
  /** Why a tensor the model needs is absent, when the source can tell (an index that leaves its shard out). */
  missingReason?(name: string): Error | undefined;
  close(): void;
}

/** Elements of a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Elements of one row (the product of the trailing dims). */
export function rowSize(shape: readonly number[]): number {
  return elementCount(shape.slice(1));
}
