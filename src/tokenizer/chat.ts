// Chat templates: the Jinja template of tokenizer_config.json (or a GGUF's tokenizer.chat_template) rendered to
// the prompt text, as transformers' apply_chat_template renders it (blocks trimmed and left-stripped; messages,
// add_generation_prompt and the special tokens as variables; raise_exception), with @huggingface/jinja.
import { Template } from "@huggingface/jinja";
import { UserError } from "../errors.js";

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatOptions {
  /** End with the header of the assistant's turn (apply_chat_template's add_generation_prompt). Default false. */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  unkToken?: string;
  padToken?: string;
  /** Further template variables (tools, documents, date_string, …), as apply_chat_template's extra arguments. */
  variables?: Record<string, unknown>;
  /** Names the template's source in errors (e.g. the tokenizer_config.json). */
  label?: string;
}

/** The prompt text `template` makes of `messages`; a template that does not parse or raises: UserError. */
export function renderChat(template: string, messages: ChatMessage[], options: ChatOptions = {}): string {
  const label = options.label ?? "chat template";
  let parsed: Template;
  try {
    parsed = new Template(template);
  } catch (e) {
    throw new UserError(`cannot parse the chat template: ${oneLine(e)}`, label);
  }
  try {
    // Special tokens the tokenizer does not have stay undefined, as in transformers.
    const tokens = {
      bos_token: options.bosToken,
      eos_token: options.eosToken,
      unk_token: options.unkToken,
      pad_token: options.padToken,
    };
    const defined = Object.fromEntries(Object.entries(tokens).filter(([, v]) => v !== undefined));
    return parsed.render({
      ...options.variables,
      ...defined,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
    });
  } catch (e) {
    throw new UserError(`the chat template failed: ${oneLine(e)}`, label);
  }
}

/**
 * The chat template of a tokenizer_config.json: `chat_template` when it is a string, or the entry called `name`
 * ("default") of its list form [{name, template}]; undefined when there is none. A malformed one: UserError.
 */
export function chatTemplateOf(
  tokenizerConfig: Record<string, unknown>,
  name = "default",
  label?: string,
): string | undefined {
  const value = tokenizerConfig.chat_template;
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return name === "default" ? value : undefined;
  const list = Array.isArray(value) ? (value as { name?: unknown; template?: unknown }[]) : undefined;
  if (!list || !list.every((t) => t && typeof t.name === "string" && typeof t.template === "string")) {
    throw new UserError("chat_template is neither a string nor a list of {name, template}", label);
  }
  return list.find((t) => t.name === name)?.template as string | undefined;
}

/** bos_token etc. of a tokenizer_config.json (strings or {content} objects) as ChatOptions. */
export function chatTokensOf(tokenizerConfig: Record<string, unknown>): ChatOptions {
  const text = (v: unknown) =>
    typeof v === "string"
      ? v
      : typeof (v as { content?: unknown } | null)?.content === "string"
        ? (v as { content: string }).content
        : undefined;
  return {
    bosToken: text(tokenizerConfig.bos_token),
    eosToken: text(tokenizerConfig.eos_token),
    unkToken: text(tokenizerConfig.unk_token),
    padToken: text(tokenizerConfig.pad_token),
  };
}

function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e)
    .replace(/\s+/g, " ")
    .trim();
}
