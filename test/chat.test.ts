// Chat templates: real models' templates (from their tokenizer_config.json) rendered to the exact prompt text,
// written out by hand from the template's definition.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chatTemplateOf, chatTokensOf, renderChat, type ChatMessage } from "../src/tokenizer/chat.js";
import { UserError } from "../src/errors.js";

// meta-llama/Meta-Llama-3-8B-Instruct
const LLAMA3 =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + " +
  "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}" +
  "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}" +
  "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

// mistralai/Mistral-7B-Instruct-v0.1
const MISTRAL =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}" +
  "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

// Qwen/Qwen2.5-7B-Instruct (ChatML, with its tool-calling branches; "\" + newline continues a line)
const QWEN25 = `{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided\
 with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within\
 <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\":\
 <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role ==\
 "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
`;

const chat: ChatMessage[] = [
  { role: "user", content: "Hello, how are you?" },
  { role: "assistant", content: "I'm doing great. How can I help you today?" },
  { role: "user", content: "I'd like to show off how chat templating works!" },
];

test("Llama-3-Instruct: headers, trimmed contents, BOS once, the assistant header on request", () => {
  const messages = [{ role: "system", content: "  You are terse. " }, chat[0]];
  const expected =
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
    "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|>";
  assert.equal(renderChat(LLAMA3, messages, { bosToken: "<|begin_of_text|>" }), expected);
  assert.equal(
    renderChat(LLAMA3, messages, { bosToken: "<|begin_of_text|>", addGenerationPrompt: true }),
    expected + "<|start_header_id|>assistant<|end_header_id|>\n\n",
  );
});

test("Mistral-Instruct: [INST] turns, EOS after the assistant, alternation enforced", () => {
  assert.equal(
    renderChat(MISTRAL, chat, { bosToken: "<s>", eosToken: "</s>" }),
    "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> " +
      "[INST] I'd like to show off how chat templating works! [/INST]",
  );
  assert.throws(
    () => renderChat(MISTRAL, [{ role: "system", content: "x" }], { label: "tokenizer_config.json" }),
    (e: unknown) =>
      e instanceof UserError &&
      e.file === "tokenizer_config.json" &&
      e.message.includes("Conversation roles must alternate user/assistant/user/assistant/..."),
  );
});

test("Qwen2.5 ChatML: the default system prompt, a given one, the generation prompt", () => {
  assert.equal(
    renderChat(QWEN25, chat, { addGenerationPrompt: true }),
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
      "<|im_start|>user\nHello, how are you?<|im_end|>\n" +
      "<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n" +
      "<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n" +
      "<|im_start|>assistant\n",
  );
  assert.equal(
    renderChat(QWEN25, [{ role: "system", content: "Be brief." }, chat[0]]),
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n",
  );
});

test("special tokens the tokenizer lacks stay undefined; extra variables reach the template", () => {
  const t = "{% if bos_token is defined %}[{{ bos_token }}]{% else %}none{% endif %}{{ date_string }}";
  assert.equal(renderChat(t, [], {}), "none");
  assert.equal(renderChat(t, [], { bosToken: "<s>", variables: { date_string: " 1 Dec" } }), "[<s>] 1 Dec");
});

test("a template that does not parse: a one-line UserError naming its source", () => {
  assert.throws(
    () => renderChat("{% if %}", chat, { label: "model/tokenizer_config.json" }),
    (e: unknown) =>
      e instanceof UserError &&
      e.file === "model/tokenizer_config.json" &&
      e.message.includes("cannot parse the chat template") &&
      !e.message.includes("\n"),
  );
});

test("chatTemplateOf: a string, the named entry of the list form, none, or an error", () => {
  assert.equal(chatTemplateOf({ chat_template: MISTRAL }), MISTRAL);
  assert.equal(chatTemplateOf({ chat_template: MISTRAL }, "tool_use"), undefined);
  const list = [
    { name: "default", template: "D" },
    { name: "tool_use", template: "T" },
  ];
  assert.equal(chatTemplateOf({ chat_template: list }), "D");
  assert.equal(chatTemplateOf({ chat_template: list }, "tool_use"), "T");
  assert.equal(chatTemplateOf({}), undefined);
  assert.throws(
    () => chatTemplateOf({ chat_template: [{ name: "default" }] }, "default", "cfg.json"),
    (e: unknown) => e instanceof UserError && e.file === "cfg.json",
  );
});

test("chatTokensOf: token strings and {content} objects of tokenizer_config.json", () => {
  const config = { bos_token: { content: "<s>", special: true }, eos_token: "</s>", pad_token: null };
  const tokens = { bosToken: "<s>", eosToken: "</s>", unkToken: undefined, padToken: undefined };
  assert.deepEqual(chatTokensOf(config), tokens);
  assert.equal(
    renderChat(MISTRAL, chat.slice(0, 2), chatTokensOf(config)),
    "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> ",
  );
});
