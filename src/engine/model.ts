// A model = a tensor source (a safetensors folder, a packed quantized checkpoint, a GGUF file) + its
// resolved spec + the architecture that describes it. Opening reads headers only; weights stay on disk until
// a layer needs them.
import { statSync } from "node:fs";
import { Checkpoint } from "../checkpoint/checkpoint.js";
import { GgufCheckpoint } from "../gguf/source.js";
import { PackedCheckpoint } from "../quant/packed-source.js";
import type { SourceTensor, TensorSource } from "../checkpoint/source.js";
import { CheckpointError } from "../errors.js";
import { ConfigReader, type ModelSpec } from "../models/spec.js";
import type { Architecture } from "../models/architecture.js";
import { architectureFor } from "../models/registry.js";
import type { WeightOverride } from "./variants.js";

/** The tensor source a path holds: a .gguf file (or split set), a packed quantized folder, or a safetensors folder. */
export function openSource(path: string): TensorSource {
  let file = false;
  try {
    file = statSync(path).isFile();
  } catch {
    // a missing path is reported by the folder reader
  }
  if (file || path.endsWith(".gguf")) return GgufCheckpoint.open(path);
  const plain = Checkpoint.open(path);
  if (!PackedCheckpoint.isPacked(plain.config)) return plain;
  plain.close();
  return PackedCheckpoint.open(path);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export class Model {
  /** Overrides whose `prepare` has run (once per override object). */
  readonly prepared = new WeakSet<WeightOverride>();

  private constructor(
    readonly source: TensorSource,
    readonly spec: ModelSpec,
    readonly arch: Architecture,
    /** canonical name → stored name */
    private readonly stored: Map<string, string>,
  ) {}

  /** Open a checkpoint: a Hugging Face folder (plain or packed quantized), or a GGUF file. */
  static open(path: string): Model {
    return Model.fromSource(openSource(path));
  }

  /** A model over any tensor source; the architecture comes from `model_type` unless given. */
  static fromSource(source: TensorSource, architecture?: Architecture): Model {
    try {
      const arch = architecture ?? architectureFor(source.config["model_type"], source.configFile);
      const spec = arch.config(new ConfigReader(source.config, source.configFile));
      const stored = new Map<string, string>();
      for (const name of source.names()) {
        const canonical = arch.sanitize(name, spec);
        if (canonical !== null) stored.set(canonical, name);
      }
      const model = new Model(source, spec, arch, stored);
      model.checkTensors();
      return model;
    } catch (e) {
      source.close();
      throw e;
    }
  }

  /**
   * The layers the config claims are the layers the weights hold — checked before the table of expected
   * tensors is built, so that a config claiming 10⁹ layers is an error, not 10⁹ table rows.
   */
  private checkLayerCount(): void {
    const [before, after] = this.arch.layerPrefix(0).split("0");
    const pattern = new RegExp(`^${escape(before)}(\\d+)${escape(after)}`);
    let top = -1;
    for (const name of this.stored.keys()) {
      const m = pattern.exec(name);
      if (m) top = Math.max(top, Number(m[1]));
    }
    // More layers held than configured: the unexpected-tensor check names them.
    if (top + 1 < this.spec.layers) {
      const held = top < 0 ? "no layer tensors" : top === 0 ? "only layer 0" : `layers 0 to ${top}`;
      const claimed = `${this.spec.layers} layer${this.spec.layers === 1 ? "" : "s"}`;
      throw new CheckpointError(
        this.source.configFile,
        `says the model has ${claimed}, but the weights hold ${held}`,
        "BAD_CONFIG",
      );
    }
  }

  /** Every tensor the config implies is stored with that shape, and nothing else is. */
  private checkTensors(): void {
    this.checkLayerCount();
    const expected = this.arch.tensors(this.spec);
    for (const [name, shape] of expected) {
      if (!this.stored.has(name))
        throw (
          this.source.missingReason?.(name) ??
          new CheckpointError(
            this.path,
            `tensor "${name}" is missing (model_type "${this.spec.modelType}" with this config needs it)`,
            "MISSING_TENSOR",
          )
        );
      const info = this.info(name);
      // A source may hold a 2-D weight transposed from how Hugging Face stores it (GGUF's GPT-2).
      const want = shape.length === 2 && this.layout(name) !== this.hfLayout(name) ? [shape[1], shape[0]] : shape;
      if (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i]))
        throw new CheckpointError(
          this.source.fileOf(this.storedName(name)),
          `tensor "${name}" has shape [${info.shape}] but the config implies [${want}]`,
          "WRONG_SHAPE",
        );
    }
    const unexpected = [...this.stored.keys()].filter((n) => !expected.has(n));
    if (unexpected.length) {
      const more = unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : "";
      throw new CheckpointError(
        this.source.fileOf(this.storedName(unexpected[0])),
        `unexpected tensor(s) for model_type "${this.spec.modelType}" with this config: ${unexpected.slice(0, 5).join(", ")}${more}`,
        "UNEXPECTED_TENSOR",
      );
    }
  }

  /** The checkpoint folder (or file) the model was opened from. */
  get path(): string {
    return this.source.path;
  }

  has(name: string): boolean {
    return this.stored.has(name);
  }

  info(name: string): SourceTensor {
    return this.source.info(this.storedName(name));
  }

  shape(name: string): number[] {
    return this.info(name).shape;
  }

  dtype(name: string): string {
    return this.info(name).dtype;
  }

  /** How a 2-D weight's rows read: [out, in] ("nk") or [in, out] ("kn"). */
  layout(name: string): "nk" | "kn" {
    return this.info(name).layout ?? this.hfLayout(name);
  }

  /** How Hugging Face stores a 2-D weight: the architecture's layout, but embeddings and the head are [vocab, hidden]. */
  private hfLayout(name: string): "nk" | "kn" {
    return name === this.arch.lmHead(this.spec) || name === this.arch.embedding ? "nk" : this.arch.layout;
  }

  /** Rows [r0, r1) of a tensor as float32 (into `out`, else a buffer the source owns until its next read). */
  readRows(name: string, r0: number, r1: number, out?: Float32Array): Float32Array {
    return this.source.readRows(this.storedName(name), r0, r1, out);
  }

  /** The whole tensor as float32, in a new array (small tensors: norms, biases). */
  read(name: string): Float32Array {
    const shape = this.shape(name);
    return this.readRows(
      name,
      0,
      shape.length === 0 ? 1 : shape[0],
      new Float32Array(shape.reduce((a, b) => a * b, 1)),
    );
  }

  /** One weight by its stored [row, column] index. */
  weight(name: string, row: number, column: number): number {
    const shape = this.shape(name);
    if (shape.length !== 2 || !(row >= 0 && column >= 0 && row < shape[0] && column < shape[1]))
      throw new RangeError(`[${row}, ${column}] is outside ${name} of shape [${shape}]`);
    return this.readRows(name, row, row + 1)[column];
  }

  close(): void {
    this.source.close();
  }

  private storedName(name: string): string {
    const s = this.stored.get(name);
    if (s === undefined)
      throw new CheckpointError(this.path, `tensor "${name}" is missing from the checkpoint`, "MISSING_TENSOR");
    return s;
  }
}
